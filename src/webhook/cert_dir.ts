/**
 * @module
 * Serving certificates from a mounted directory, reloaded when the files change. The names are
 * those of a `kubernetes.io/tls` Secret (`tls.crt`/`tls.key`, what the OpenShift service CA and
 * cert-manager write) or of the upstream operator's OLM mount (`apiserver.crt`/`apiserver.key`).
 * Changes are seen through a directory watch (a Secret volume update swaps the `..data` symlink,
 * an event on the directory) with a periodic re-read as a safety net; a half-written or mismatched
 * pair is never served, the old one stays until a good pair appears.
 */
import { join } from "node:path";
import { messageOf } from "../errors.ts";
import { silentLogger } from "../log.ts";
import { CertificateError, serveWebhook, type WebhookServer, type WebhookServerOptions } from "./server.ts";

/** Accepted file name pairs, in order of preference. */
export const CERTIFICATE_FILE_NAMES: readonly { readonly cert: string; readonly key: string }[] = [
  { cert: "tls.crt", key: "tls.key" },
  { cert: "apiserver.crt", key: "apiserver.key" },
];

/** A certificate pair read from disk. */
export interface CertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Reads the first complete pair of {@linkcode CERTIFICATE_FILE_NAMES} in `dir`. Throws
 * {@linkcode CertificateError} when there is none.
 */
export async function readCertificateDirectory(dir: string): Promise<CertificateFiles> {
  for (const names of CERTIFICATE_FILE_NAMES) {
    const certFile = join(dir, names.cert);
    const keyFile = join(dir, names.key);
    let certPem: string | undefined;
    let keyPem: string | undefined;
    try {
      [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
    } catch (cause) {
      throw new CertificateError(`cannot read ${certFile} or ${keyFile}: ${messageOf(cause)}`, { cause });
    }
    if (certPem !== undefined && keyPem !== undefined) return { certFile, keyFile, certPem, keyPem };
  }
  const expected = CERTIFICATE_FILE_NAMES.map((n) => `${n.cert}/${n.key}`).join(" or ");
  throw new CertificateError(`no serving certificate in ${dir}: expected ${expected}`);
}

/** Options for {@linkcode serveWebhookFromDirectory}. */
export interface DirectoryServerOptions extends Omit<WebhookServerOptions, "certPem" | "keyPem"> {
  /** The directory holding the pair (the upstream default is `/apiserver.local.config/certificates`). */
  certDir: string;
  /** Re-read interval, the safety net under the directory watch. @default 30_000 */
  pollIntervalMs?: number;
  /** Quiet time after a change event before re-reading, so both files of an update land. @default 200 */
  debounceMs?: number;
}

/**
 * Serves over HTTPS with the pair in `certDir` and rotates to a new pair whenever the files change.
 * `close()` also stops watching.
 */
export async function serveWebhookFromDirectory(options: DirectoryServerOptions): Promise<WebhookServer> {
  const logger = options.logger ?? silentLogger;
  const { certDir } = options;
  const initial = await readCertificateDirectory(certDir);
  const server = serveWebhook({ ...options, certPem: initial.certPem, keyPem: initial.keyPem });
  let lastSeen = initial.certPem + "\0" + initial.keyPem;
  let closed = false;
  let reloading: Promise<void> = Promise.resolve();

  async function reloadNow(): Promise<void> {
    if (closed) return;
    let files: CertificateFiles;
    try {
      files = await readCertificateDirectory(certDir);
    } catch (error) {
      logger.warn("webhook certificate unreadable, keeping the served one", {
        certDir,
        error: messageOf(error),
      });
      return;
    }
    const seen = files.certPem + "\0" + files.keyPem;
    if (seen === lastSeen || closed) return;
    lastSeen = seen;
    try {
      await server.rotate(files.certPem, files.keyPem);
    } catch (error) {
      // A Secret update may land the certificate before the key: the next event retries.
      logger.warn("webhook certificate not usable yet, keeping the served one", {
        certFile: files.certFile,
        error: messageOf(error),
      });
    }
  }

  function reload(): void {
    reloading = reloading.then(reloadNow);
  }

  const debounceMs = options.debounceMs ?? 200;
  let debounce: ReturnType<typeof setTimeout> | undefined;
  function changed(): void {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      reload();
    }, debounceMs);
  }

  let watcher: Deno.FsWatcher | undefined;
  let watching: Promise<void> = Promise.resolve();
  try {
    watcher = Deno.watchFs(certDir, { recursive: false });
    const events = watcher;
    watching = (async () => {
      try {
        for await (const _ of events) changed();
      } catch (error) {
        if (!closed) {
          logger.warn("webhook certificate watch failed, polling only", { error: messageOf(error) });
        }
      }
    })();
  } catch (error) {
    logger.warn("webhook certificate watch unavailable, polling only", { certDir, error: messageOf(error) });
  }
  const poll = setInterval(reload, options.pollIntervalMs ?? 30_000);

  return {
    addr: server.addr,
    seamlessRotation: server.seamlessRotation,
    get certificate() {
      return server.certificate;
    },
    rotate: (certPem, keyPem) => server.rotate(certPem, keyPem),
    async close() {
      if (!closed) {
        closed = true;
        clearInterval(poll);
        clearTimeout(debounce);
        watcher?.close();
        await watching;
        await reloading;
      }
      await server.close();
    },
  };
}
