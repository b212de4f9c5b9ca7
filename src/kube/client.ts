/**
 * @module
 * The Kubernetes API client: a thin REST client over Deno's fetch with one pooled, TLS-verified
 * connection set. `kubeconfig.ts` loads the configuration (kubeconfig files, in-cluster
 * service-account files, exec and token-file authentication); requests go through fetch because
 * client-node 1.x opens a new TLS connection per request and has no watch timeout
 * (docs/runtime.md). Errors are {@linkcode KubeApiError}s carrying the Status reason.
 */
import { KubeApiError } from "../errors.ts";
import { withDeadline } from "../deadline.ts";
import { createDenoHttpClient } from "../http/transport.ts";
import { type KubeList, type KubeObject, resourcePath, type ResourceType } from "./resources.ts";

export { type KubeConnectionOptions, type KubeEnvironment, loadKubeConnection } from "./kubeconfig.ts";

/** A patch body and how to apply it. */
export type PatchType = "merge" | "json" | "strategic" | "apply";

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

/** One watch event. */
export interface WatchEvent<T = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

/** Options of list and watch calls. */
export interface ListOptions {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  limit?: number | undefined;
  continue?: string | undefined;
  resourceVersion?: string | undefined;
}

/** Options of watch calls. */
export interface WatchOptions extends ListOptions {
  /** Server-side end of the stream. @default 300 */
  timeoutSeconds?: number;
  /** Ask for BOOKMARK events. @default true */
  allowWatchBookmarks?: boolean;
  /** Ends the stream. */
  signal?: AbortSignal | undefined;
}

/** Called after every request (metrics). */
export type KubeCallObserver = (
  call: { verb: string; resource: string; status: number; durationMs: number },
) => void;

/** What the operator needs to reach the API server. */
export interface KubeConnection {
  /** `https://host:port`, no trailing slash. */
  server: string;
  caPem?: string | undefined;
  clientCertPem?: string | undefined;
  clientKeyPem?: string | undefined;
  /** Returns the current `Authorization` header value, if any. */
  authorization: () => Promise<string | undefined>;
  /** Namespace of the in-cluster service account or kubeconfig context. */
  namespace?: string | undefined;
  /** Loaded from the pod's service-account files (not from a kubeconfig). */
  inCluster?: boolean;
}

/** A connection from a server URL, CA and bearer token (tests, the test world). */
export function tokenConnection(server: string, caPem: string | undefined, token: string): KubeConnection {
  return {
    server: server.replace(/\/+$/, ""),
    caPem,
    authorization: () => Promise.resolve(`Bearer ${token}`),
  };
}

function statusMessage(body: unknown, fallback: string): { message: string; reason: string } {
  if (body && typeof body === "object" && (body as { kind?: string }).kind === "Status") {
    const s = body as { message?: string; reason?: string };
    return { message: s.message ?? fallback, reason: s.reason ?? "" };
  }
  return { message: fallback, reason: "" };
}

/** Options for {@linkcode KubeClient}. */
export interface KubeClientOptions {
  /** Per-request timeout for non-watch calls. @default 30_000 */
  timeoutMs?: number;
  onCall?: KubeCallObserver;
  /** User-Agent header. @default "quay-bridge" */
  userAgent?: string;
}

/** A Kubernetes REST client. */
export class KubeClient {
  readonly connection: KubeConnection;
  readonly #http: Deno.HttpClient;
  readonly #options: KubeClientOptions;

  constructor(connection: KubeConnection, options: KubeClientOptions = {}) {
    this.connection = connection;
    this.#options = options;
    const tls = connection.clientCertPem && connection.clientKeyPem
      ? { cert: connection.clientCertPem, key: connection.clientKeyPem }
      : {};
    // Through the process's proxy unless NO_PROXY matches the API server (client-node ignores both).
    this.#http = createDenoHttpClient(connection.server, {
      caCerts: connection.caPem ? [connection.caPem] : [],
      ...tls,
    }).client;
  }

  /** Closes pooled connections. */
  close(): void {
    this.#http.close();
  }

  /** Fetches one object; `undefined` when it does not exist. */
  async get<T extends KubeObject>(
    type: ResourceType,
    name: string,
    options: { namespace?: string | undefined } = {},
  ): Promise<T | undefined> {
    const r = await this.#request("GET", resourcePath(type, { ...options, name }), {
      verb: "get",
      type,
      accept404: true,
    });
    return r as T | undefined;
  }

  /** Lists one page. */
  async list<T extends KubeObject>(type: ResourceType, options: ListOptions = {}): Promise<KubeList<T>> {
    const query = new URLSearchParams();
    if (options.labelSelector) query.set("labelSelector", options.labelSelector);
    if (options.fieldSelector) query.set("fieldSelector", options.fieldSelector);
    if (options.limit) query.set("limit", String(options.limit));
    if (options.continue) query.set("continue", options.continue);
    // The API server refuses a resourceVersion together with a continue token.
    if (options.resourceVersion !== undefined && !options.continue) {
      query.set("resourceVersion", options.resourceVersion);
    }
    const path = resourcePath(type, { namespace: options.namespace }) + (query.size ? `?${query}` : "");
    return await this.#request("GET", path, { verb: "list", type }) as KubeList<T>;
  }

  /** Creates an object. */
  async create<T extends KubeObject>(
    type: ResourceType,
    object: T,
    options: { namespace?: string | undefined; dryRun?: boolean } = {},
  ): Promise<T> {
    const namespace = options.namespace ?? object.metadata.namespace;
    const path = resourcePath(type, { namespace }) + (options.dryRun ? "?dryRun=All" : "");
    return await this.#request("POST", path, { verb: "create", type, body: object }) as T;
  }

  /** Replaces an object (optimistic concurrency through `metadata.resourceVersion`). */
  async update<T extends KubeObject>(
    type: ResourceType,
    object: T,
    options: { subresource?: "status" } = {},
  ): Promise<T> {
    const path = resourcePath(type, {
      namespace: object.metadata.namespace,
      name: object.metadata.name,
      subresource: options.subresource,
    });
    return await this.#request("PUT", path, {
      verb: options.subresource ? "update/status" : "update",
      type,
      body: object,
    }) as T;
  }

  /** Patches an object. `apply` is server-side apply under `fieldManager`. */
  async patch<T extends KubeObject>(
    type: ResourceType,
    name: string,
    patch: unknown,
    options: {
      patchType: PatchType;
      namespace?: string | undefined;
      subresource?: string | undefined;
      fieldManager?: string | undefined;
      force?: boolean | undefined;
    },
  ): Promise<T> {
    const query = new URLSearchParams();
    if (options.fieldManager) query.set("fieldManager", options.fieldManager);
    if (options.force) query.set("force", "true");
    const path =
      resourcePath(type, { namespace: options.namespace, name, subresource: options.subresource }) +
      (query.size ? `?${query}` : "");
    return await this.#request("PATCH", path, {
      verb: options.subresource ? `patch/${options.subresource}` : "patch",
      type,
      body: patch,
      contentType: PATCH_CONTENT_TYPES[options.patchType],
    }) as T;
  }

  /** Deletes an object; `false` when it was already gone. */
  async delete(
    type: ResourceType,
    name: string,
    options: { namespace?: string | undefined; uid?: string | undefined } = {},
  ): Promise<boolean> {
    const body = options.uid
      ? { kind: "DeleteOptions", apiVersion: "v1", preconditions: { uid: options.uid } }
      : undefined;
    const r = await this.#request("DELETE", resourcePath(type, { namespace: options.namespace, name }), {
      verb: "delete",
      type,
      body,
      accept404: true,
    });
    return r !== undefined;
  }

  /** Sends a request to any path (discovery, reviews); JSON in and out. */
  async raw(method: string, path: string, body?: unknown): Promise<unknown> {
    return await this.#request(method, path, { verb: method.toLowerCase(), body, accept404: true });
  }

  /**
   * Watches a collection. Yields events until the server ends the stream (timeout) or `signal`
   * aborts. A 410 answer — HTTP or in-stream — is thrown as a {@linkcode KubeApiError} with status 410.
   */
  async *watch<T extends KubeObject>(
    type: ResourceType,
    options: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<T>> {
    const query = new URLSearchParams({ watch: "1" });
    if (options.labelSelector) query.set("labelSelector", options.labelSelector);
    if (options.fieldSelector) query.set("fieldSelector", options.fieldSelector);
    if (options.resourceVersion !== undefined) query.set("resourceVersion", options.resourceVersion);
    query.set("timeoutSeconds", String(options.timeoutSeconds ?? 300));
    if (options.allowWatchBookmarks ?? true) query.set("allowWatchBookmarks", "true");
    const path = resourcePath(type, { namespace: options.namespace }) + `?${query}`;
    const started = performance.now();
    let response: Response;
    try {
      response = await fetch(this.connection.server + path, {
        headers: await this.#headers(),
        signal: options.signal,
        client: this.#http,
      });
    } catch (error) {
      this.#observe("watch", type, 0, started);
      if (options.signal?.aborted) return;
      throw new KubeApiError(`Cannot watch ${type.plural}: ${(error as Error).message}`, {
        status: 0,
        cause: error,
      });
    }
    this.#observe("watch", type, response.status, started);
    if (!response.ok) {
      const body = await response.json().catch(() => undefined);
      const s = statusMessage(body, `Watch of ${type.plural} failed with ${response.status}`);
      throw new KubeApiError(s.message, { status: response.status, statusReason: s.reason });
    }
    if (!response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      while (true) {
        let chunk: ReadableStreamReadResult<string>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (options.signal?.aborted) return;
          throw new KubeApiError(`Watch of ${type.plural} broke: ${(error as Error).message}`, {
            status: 0,
            cause: error,
          });
        }
        if (chunk.done) return;
        buffer += chunk.value;
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (!line) continue;
          const event = JSON.parse(line) as WatchEvent<T>;
          if (event.type === "ERROR") {
            const status = event.object as unknown as { code?: number; message?: string; reason?: string };
            throw new KubeApiError(status.message ?? `Watch of ${type.plural} ended with an error`, {
              status: status.code ?? 500,
              statusReason: status.reason ?? "",
            });
          }
          yield event;
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  async #headers(contentType?: string): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      Accept: "application/json",
      "User-Agent": this.#options.userAgent ?? "quay-bridge",
    };
    const auth = await this.connection.authorization();
    if (auth) headers.Authorization = auth;
    if (contentType) headers["Content-Type"] = contentType;
    return headers;
  }

  #observe(verb: string, type: ResourceType | undefined, status: number, started: number): void {
    this.#options.onCall?.({
      verb,
      resource: type ? (type.group ? `${type.plural}.${type.group}` : type.plural) : "raw",
      status,
      durationMs: performance.now() - started,
    });
  }

  async #request(
    method: string,
    path: string,
    options: { verb: string; type?: ResourceType; body?: unknown; contentType?: string; accept404?: boolean },
  ): Promise<unknown> {
    const started = performance.now();
    let response: Response;
    const headers = await this.#headers(
      options.body === undefined ? undefined : options.contentType ?? "application/json",
    );
    let text: string;
    try {
      // The deadline covers the body too, and its timer ends with the call (`deadline.ts`).
      [response, text] = await withDeadline(this.#options.timeoutMs ?? 30_000, undefined, async (signal) => {
        const answer = await fetch(this.connection.server + path, {
          method,
          headers,
          body: options.body === undefined ? undefined : JSON.stringify(options.body),
          signal,
          client: this.#http,
        });
        return [answer, await answer.text().catch(() => "")] as const;
      });
    } catch (error) {
      this.#observe(options.verb, options.type, 0, started);
      throw new KubeApiError(
        `Cannot reach the Kubernetes API (${method} ${path}): ${(error as Error).message}`,
        {
          status: 0,
          cause: error,
        },
      );
    }
    this.#observe(options.verb, options.type, response.status, started);
    let body: unknown = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (response.status === 404 && options.accept404) return undefined;
    if (!response.ok) {
      const s = statusMessage(body, `${method} ${path} failed with ${response.status}`);
      throw new KubeApiError(s.message, { status: response.status, statusReason: s.reason });
    }
    return body;
  }
}

/** Convenience for list-all with pagination. */
export async function listAll<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  options: Omit<ListOptions, "continue" | "limit"> & { pageSize?: number } = {},
): Promise<KubeList<T>> {
  const items: T[] = [];
  let token: string | undefined;
  let resourceVersion: string | undefined;
  do {
    const page: KubeList<T> = await client.list<T>(type, {
      ...options,
      limit: options.pageSize ?? 500,
      continue: token,
    });
    items.push(...page.items);
    token = page.metadata.continue || undefined;
    resourceVersion = page.metadata.resourceVersion;
  } while (token);
  return { items, metadata: { resourceVersion } };
}
