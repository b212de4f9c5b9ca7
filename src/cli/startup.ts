/**
 * @module
 * Start-up failures as one line that names the cause and the fix. Everything that can go wrong
 * before the operator runs — a busy or forbidden port, an unreadable kubeconfig or certificate
 * directory, a missing Deno permission — is turned into a {@linkcode StartupError} naming the flag or
 * file to change, so the process ends with exit code 2 and that line instead of a stack trace.
 */
import { messageOf } from "../errors.ts";

/** A failure before the operator runs; `main.ts`/`run` print it as one line and exit with code 2. */
export class StartupError extends Error {
  /** What to do about it, naming the flag, file or permission. */
  readonly fix: string;
  constructor(message: string, fix: string, options?: { cause?: unknown }) {
    super(oneLine(message), options);
    this.name = "StartupError";
    this.fix = oneLine(fix);
  }
}

/** The exit code of every start-up failure (as for usage errors). */
export const STARTUP_EXIT_CODE = 2;

/** Collapses a message to one line (multi-line messages from libraries would break the one-line rule). */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** A missing Deno permission, whatever the step: Deno's message names the `--allow-*` flag. */
export function permissionFailure(error: unknown): StartupError | undefined {
  if (!(error instanceof Deno.errors.NotCapable)) return undefined;
  const flag = /--allow-[a-z]+/.exec(error.message)?.[0] ?? "the --allow-* flag";
  return new StartupError(
    `missing Deno permission: ${error.message}`,
    `grant ${flag} (as "deno task run" and the Containerfile do)`,
    { cause: error },
  );
}

/** Listening on `host:port`, set by `portFlag`/`hostFlag`, failed. */
export function listenFailure(
  error: unknown,
  where: { host: string; port: number; portFlag: string; hostFlag: string; what: string },
): StartupError {
  const permission = permissionFailure(error);
  if (permission) return permission;
  const address = `${where.host}:${where.port}`;
  if (error instanceof Deno.errors.AddrInUse) {
    return new StartupError(
      `the ${where.what} cannot listen on ${address}: the port is already in use`,
      `stop what listens there or choose another port with ${where.portFlag}`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new StartupError(
      `the ${where.what} may not listen on ${address}: ports below 1024 need privileges`,
      `choose a port from 1024 with ${where.portFlag}`,
      { cause: error },
    );
  }
  if (
    error instanceof Deno.errors.AddrNotAvailable || /address not available|resolve/i.test(messageOf(error))
  ) {
    return new StartupError(
      `the ${where.what} cannot listen on ${address}: ${where.host} is not an address of this machine`,
      `set ${where.hostFlag} to one of this machine's addresses, or 0.0.0.0`,
      { cause: error },
    );
  }
  return new StartupError(
    `the ${where.what} cannot listen on ${address}: ${messageOf(error)}`,
    `check ${where.hostFlag} and ${where.portFlag}`,
    { cause: error },
  );
}

/**
 * Binds and releases `host:port` to learn early (before the caches sync) whether a server can
 * listen there; a failure is a {@linkcode StartupError} naming the flags.
 */
export function probeListen(where: Parameters<typeof listenFailure>[1]): void {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: where.host, port: where.port });
  } catch (error) {
    throw listenFailure(error, where);
  }
  listener.close();
}

/** Loading the Kubernetes configuration failed. */
export function kubeconfigFailure(error: unknown, kubeconfig: string | undefined): StartupError {
  const permission = permissionFailure(error);
  if (permission) return permission;
  if (kubeconfig) {
    return new StartupError(
      `cannot load the kubeconfig ${kubeconfig}: ${fileProblem(kubeconfig) ?? messageOf(error)}`,
      "give a readable kubeconfig file with --kubeconfig (or KUBECONFIG)",
      { cause: error },
    );
  }
  return new StartupError(
    `cannot load the Kubernetes configuration (no --kubeconfig, KUBECONFIG or in-cluster service account): ${
      messageOf(error)
    }`,
    "give a kubeconfig file with --kubeconfig (or KUBECONFIG), or run in a pod",
    { cause: error },
  );
}

/** What is wrong with a file that could not be loaded, in plain words, when the file system says. */
function fileProblem(path: string): string | undefined {
  try {
    const info = Deno.statSync(path);
    if (info.isDirectory) return "it is a directory";
    Deno.readTextFileSync(path);
    return undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "no such file";
    if (error instanceof Deno.errors.PermissionDenied) return "not readable (permission denied)";
    return undefined;
  }
}

/** The webhook's certificate directory cannot be served. */
export function certDirFailure(error: unknown, dir: string): StartupError {
  const permission = permissionFailure(error);
  if (permission) return permission;
  return new StartupError(
    `the webhook cannot serve from the certificate directory ${dir}: ${messageOf(error)}`,
    "mount the serving certificate there, point --webhook-cert-dir (or WEBHOOK_CERT_DIR) at it, " +
      "or use --webhook-mode=self-managed",
    { cause: error },
  );
}
