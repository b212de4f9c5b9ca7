/**
 * @module
 * The subset of Kubernetes JSONPath that CRD printer columns and selectable fields use:
 * `.a.b`, `['a.b']`, `[0]`, `[*]`, and filters `[?(@.type=="Ready")]` (also `!=`, and bare `@.x`).
 * No npm JSONPath library is in the import map, and this grammar is a dozen rules.
 */
import { isObject } from "./validation.ts";

type Step =
  | { kind: "field"; name: string }
  | { kind: "index"; index: number }
  | { kind: "all" }
  | { kind: "filter"; path: string[]; op: "==" | "!=" | "exists"; value?: unknown };

/** Raised for a JSONPath this evaluator does not understand. */
export class JsonPathError extends Error {
  override name = "JsonPathError";
}

function parseLiteral(text: string): unknown {
  const t = text.trim();
  if (/^".*"$/.test(t) || /^'.*'$/.test(t)) return t.slice(1, -1);
  if (t === "true" || t === "false") return t === "true";
  if (!Number.isNaN(Number(t))) return Number(t);
  return t;
}

/** Parses `.a.b[?(@.x=="y")].c` (optionally wrapped in `{}`). */
export function parseJsonPath(path: string): Step[] {
  let p = path.trim();
  if (p.startsWith("{") && p.endsWith("}")) p = p.slice(1, -1).trim();
  if (p.startsWith("$")) p = p.slice(1);
  const steps: Step[] = [];
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === ".") {
      i++;
      let name = "";
      while (i < p.length && p[i] !== "." && p[i] !== "[") name += p[i++];
      if (name === "*") steps.push({ kind: "all" });
      else if (name) steps.push({ kind: "field", name });
    } else if (c === "[") {
      const end = findClose(p, i);
      const inner = p.slice(i + 1, end).trim();
      i = end + 1;
      if (inner === "*") steps.push({ kind: "all" });
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: "index", index: Number(inner) });
      else if (/^'.*'$/.test(inner) || /^".*"$/.test(inner)) {
        steps.push({ kind: "field", name: inner.slice(1, -1) });
      } else if (inner.startsWith("?(") && inner.endsWith(")")) {
        const expr = inner.slice(2, -1).trim();
        const m = /^@((?:\.[A-Za-z0-9_-]+)+)\s*(==|!=)\s*(.+)$/.exec(expr);
        if (m) {
          steps.push({
            kind: "filter",
            path: (m[1] as string).slice(1).split("."),
            op: m[2] as "==" | "!=",
            value: parseLiteral(m[3] as string),
          });
        } else if (/^@((?:\.[A-Za-z0-9_-]+)+)$/.test(expr)) {
          steps.push({ kind: "filter", path: expr.slice(2).split("."), op: "exists" });
        } else {
          throw new JsonPathError(`unsupported filter: ${inner}`);
        }
      } else {
        throw new JsonPathError(`unsupported subscript: [${inner}]`);
      }
    } else {
      throw new JsonPathError(`unexpected character ${JSON.stringify(c)} in ${JSON.stringify(path)}`);
    }
  }
  return steps;
}

function findClose(p: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < p.length; i++) {
    const c = p[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "[" || c === "(") depth++;
    else if (c === "]" || c === ")") {
      depth--;
      if (depth === 0 && c === "]") return i;
    }
  }
  throw new JsonPathError(`unterminated subscript in ${JSON.stringify(p)}`);
}

/** Every value the path selects in `root`. */
export function evaluateJsonPath(steps: Step[], root: unknown): unknown[] {
  let current: unknown[] = [root];
  for (const step of steps) {
    const next: unknown[] = [];
    for (const value of current) {
      switch (step.kind) {
        case "field":
          if (isObject(value) && value[step.name] !== undefined) next.push(value[step.name]);
          break;
        case "index":
          if (Array.isArray(value)) {
            const v = value[step.index < 0 ? value.length + step.index : step.index];
            if (v !== undefined) next.push(v);
          }
          break;
        case "all":
          if (Array.isArray(value)) next.push(...value);
          else if (isObject(value)) next.push(...Object.values(value));
          break;
        case "filter":
          if (Array.isArray(value)) {
            for (const item of value) {
              let v: unknown = item;
              for (const key of step.path) v = isObject(v) ? v[key] : undefined;
              if (step.op === "exists" ? v !== undefined : (step.op === "==") === (v === step.value)) {
                next.push(item);
              }
            }
          }
          break;
      }
    }
    current = next;
  }
  return current;
}
