/**
 * @module
 * A narrow Kubernetes HTTP client for the OpenShift behaviours: JSON verbs and a watch stream over
 * `fetch` with a bearer token and the server's CA. It deliberately imports nothing from `src/`, so
 * the behaviours exercise the wire as any outside client does, against the in-process world or a
 * real kube-apiserver alike.
 */

/** Where and as whom to reach an API server. */
export interface KubeAccess {
  /** `https://host:port` */
  url: string;
  /** Bearer token. */
  token: string;
  /** PEM of the CA that signed the server's certificate. */
  caPem: string;
}

/** Any Kubernetes object, loosely typed: behaviours read only the fields they need. */
export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  // deno-lint-ignore no-explicit-any
  [key: string]: any;
};

/** One event of a watch stream. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: KubeObject & { code?: number; reason?: string };
}

/** The server answered with a non-success status. */
export class KubeError extends Error {
  override name = "KubeError";
  /** HTTP status (0 when the server could not be reached). */
  readonly status: number;
  /** `reason` of the Status body (`Conflict`, `NotFound`, `AlreadyExists`, ...). */
  readonly reason: string;
  /** The server's own `message` (without the method and path this error's message starts with). */
  readonly serverMessage: string;

  constructor(
    message: string,
    options: { status: number; reason?: string; serverMessage?: string; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.reason = options.reason ?? "";
    this.serverMessage = options.serverMessage ?? message;
  }
}

/** Options of one request. */
export interface RequestOptions {
  body?: unknown;
  /** @default "application/json" */
  contentType?: string;
  signal?: AbortSignal;
}

/** The API path of a namespaced or cluster-scoped resource (`group` "" is the core group). */
export function resourcePath(
  target: { group: string; version: string; resource: string },
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  const base = target.group === "" ? `/api/${target.version}` : `/apis/${target.group}/${target.version}`;
  let path = namespace ? `${base}/namespaces/${namespace}/${target.resource}` : `${base}/${target.resource}`;
  if (name) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}

/** A client for one server and identity; {@linkcode close} releases its connections. */
export class KubeClient {
  readonly access: KubeAccess;
  readonly #http: Deno.HttpClient;

  constructor(access: KubeAccess) {
    this.access = access;
    this.#http = Deno.createHttpClient({ caCerts: [access.caPem] });
  }

  /** Sends a request; throws {@linkcode KubeError} unless the answer is 2xx. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<KubeObject> {
    const headers = new Headers({ authorization: `Bearer ${this.access.token}`, accept: "application/json" });
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers.set("content-type", options.contentType ?? "application/json");
    }
    let response: Response;
    try {
      response = await fetch(this.access.url + path, {
        method,
        headers,
        body,
        client: this.#http,
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new KubeError(`${method} ${path}: ${(error as Error).message}`, { status: 0, cause: error });
    }
    const text = await response.text();
    let parsed: KubeObject | undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const message = typeof parsed?.message === "string" ? parsed.message : text.slice(0, 300);
      throw new KubeError(`${method} ${path}: ${response.status} ${message}`, {
        status: response.status,
        reason: typeof parsed?.reason === "string" ? parsed.reason : "",
        serverMessage: message,
      });
    }
    return parsed ?? { metadata: { name: "" } };
  }

  /** GET; `undefined` when the object does not exist. */
  async get(path: string, signal?: AbortSignal): Promise<KubeObject | undefined> {
    try {
      return await this.request("GET", path, { signal });
    } catch (error) {
      if (error instanceof KubeError && error.status === 404) return undefined;
      throw error;
    }
  }

  create(path: string, object: unknown, signal?: AbortSignal): Promise<KubeObject> {
    return this.request("POST", path, { body: object, signal });
  }

  replace(path: string, object: unknown, signal?: AbortSignal): Promise<KubeObject> {
    return this.request("PUT", path, { body: object, signal });
  }

  mergePatch(path: string, patch: unknown, signal?: AbortSignal): Promise<KubeObject> {
    return this.request("PATCH", path, {
      body: patch,
      contentType: "application/merge-patch+json",
      signal,
    });
  }

  /**
   * Writes an object's status: through `/status` where the server has the subresource, else (a CRD
   * without it, which answers 404 there) by replacing the whole object, which then carries status.
   */
  async replaceStatus(objectPath: string, object: KubeObject, signal?: AbortSignal): Promise<KubeObject> {
    try {
      return await this.replace(`${objectPath}/status`, object, signal);
    } catch (error) {
      if (error instanceof KubeError && error.status === 404) {
        return await this.replace(objectPath, object, signal);
      }
      throw error;
    }
  }

  /** Streams watch events from `resourceVersion` until the server ends the stream or `signal` aborts. */
  async *watch(path: string, resourceVersion: string, signal: AbortSignal): AsyncGenerator<WatchEvent> {
    const sep = path.includes("?") ? "&" : "?";
    const url = `${this.access.url}${path}${sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=300` +
      `&resourceVersion=${encodeURIComponent(resourceVersion)}`;
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${this.access.token}`, accept: "application/json" },
      client: this.#http,
      signal,
    });
    if (!response.ok || !response.body) {
      const text = await response.text().catch(() => "");
      throw new KubeError(`watch ${path}: ${response.status} ${text.slice(0, 200)}`, {
        status: response.status,
      });
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line) yield JSON.parse(line) as WatchEvent;
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  close(): void {
    this.#http.close();
  }
}
