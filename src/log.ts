/**
 * @module
 * Structured JSON-lines logging. The only module that touches `console`: every line is one JSON
 * object with `time`, `level`, a constant `msg` and key/value fields. Values under keys that look
 * like secrets are redacted so a token can never reach the log by accident.
 */

/** Severity levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /token|password|secret_value|authorization|dockerconfigjson|^auth$/i;

/** Key/value fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** A structured logger; `with` returns a child that adds fields to every line. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  with(fields: LogFields): Logger;
}

/** Where log lines go; tests capture them, production writes to stdout/stderr. */
export type LogSink = (line: string, level: LogLevel) => void;

function consoleSink(line: string, level: LogLevel): void {
  // This module is the one place allowed to write to the console.
  // deno-lint-ignore no-console
  if (level === "error" || level === "warn") console.error(line);
  // deno-lint-ignore no-console
  else console.log(line);
}

function normalise(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { message: value.message, name: value.name };
    const status = (value as { status?: unknown }).status;
    if (status !== undefined) out.status = status;
    if (value.cause !== undefined) out.cause = normalise(value.cause);
    return out;
  }
  return value;
}

function redact(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = SECRET_KEY.test(key) && value !== undefined ? "[redacted]" : normalise(value);
  }
  return out;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Lines below this level are dropped. @default "info" */
  level?: LogLevel;
  /** Destination of the lines. @default stdout (info, debug) and stderr (warn, error) */
  sink?: LogSink;
  /** Fields added to every line. */
  fields?: LogFields;
}

/** Creates a JSON-lines logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = LEVELS[options.level ?? "info"];
  const sink = options.sink ?? consoleSink;
  const base = redact(options.fields ?? {});
  function emit(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LEVELS[level] < min) return;
    const line = { time: new Date().toISOString(), level, msg, ...base, ...(fields ? redact(fields) : {}) };
    sink(JSON.stringify(line), level);
  }
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    with: (fields) => createLogger({ ...options, fields: { ...options.fields, ...fields } }),
  };
}

/** A logger that drops everything (tests, embedded worlds). */
export const silentLogger: Logger = createLogger({ sink: () => {} });
