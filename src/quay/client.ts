/**
 * @module
 * The Quay REST client: the narrow set of calls quay-bridge makes (see `QUAY-API.md`), each
 * returning typed data or throwing {@linkcode QuayApiError}. It verifies TLS unless told otherwise,
 * caps concurrent requests, bounds each request with a timeout, and retries transient failures
 * (network errors, 429, 5xx) with exponential backoff and jitter, honouring `Retry-After`. The
 * token is read through a function on every request, so a rotated token is used at once; it never
 * appears in errors or logs.
 */
import { backoffDelay, QuayApiError } from "../errors.ts";
import type { QuayRole } from "../integration_spec.ts";
import {
  createFetchTransport,
  createInsecureTransport,
  type HttpTransport,
  TransportError,
} from "../http/transport.ts";
import { sleepUnlessAborted } from "../sleep.ts";

/** A robot account. `token` is present when asked for. */
export interface QuayRobot {
  readonly name: string;
  readonly token?: string;
  readonly description?: string;
}

/** A default permission (prototype) of an organization. */
export interface QuayPrototype {
  readonly id: string;
  readonly role: QuayRole;
  readonly delegate: { readonly name: string; readonly kind: string; readonly is_robot?: boolean };
}

/** A repository as listed. */
export interface QuayRepository {
  readonly namespace: string;
  readonly name: string;
  readonly description?: string | null;
}

/** A repository notification as Quay lists it. */
export interface QuayNotification {
  readonly uuid: string;
  readonly title: string | null;
  readonly event: string;
  readonly method: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly event_config: Readonly<Record<string, unknown>>;
  /** Failed deliveries in a row; Quay stops delivering at 3. */
  readonly number_of_failures: number;
}

/** What {@linkcode QuayClient.createRepositoryNotification} sends. */
export interface NewQuayNotification {
  /** e.g. `repo_push`. */
  readonly event: string;
  /** e.g. `webhook`. */
  readonly method: string;
  /** For `webhook`: `{ url }`. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly eventConfig?: Readonly<Record<string, unknown>>;
  readonly title?: string;
}

/** The authenticated user. */
export interface QuayUser {
  readonly username: string;
  readonly organizations?: readonly { name: string }[];
}

/** Called after every HTTP exchange (metrics). `status` is 0 for transport errors. */
export type QuayCallObserver = (call: { route: string; status: number; durationMs: number }) => void;

/** Options for {@linkcode QuayClient}. */
export interface QuayClientOptions {
  /** `https://host[:port]`. */
  baseUrl: string;
  /** Returns the OAuth token to send; read on every request. */
  token: () => string;
  /** Skip certificate verification. @default false */
  insecure?: boolean;
  /** PEM CA certificates trusted besides the system store. */
  caBundle?: string | undefined;
  /** Per-request timeout. @default 10_000 */
  timeoutMs?: number;
  /** Attempts per call for transient failures. @default 4 */
  maxAttempts?: number;
  /** First retry delay. @default 250 */
  retryBaseMs?: number;
  /** Longest wait honoured from a `Retry-After` header or backoff. @default 30_000 */
  maxRetryDelayMs?: number;
  /** Concurrent requests at most. @default 8 */
  concurrency?: number;
  /** Observer of each exchange. */
  onCall?: QuayCallObserver;
  /** A transport to use instead of the default (tests). */
  transport?: HttpTransport;
  /** Aborts waits and in-flight requests (shutdown). */
  signal?: AbortSignal;
}

interface CallSpec {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  route: string;
  body?: unknown;
  /** Statuses returned to the caller rather than thrown. */
  accept?: readonly number[];
}

/** A small counting semaphore. */
class Semaphore {
  #free: number;
  #waiters: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}

const enc = encodeURIComponent;

/** `true` once the call succeeded; `false` for Quay's 400 "No repository notification found". */
async function noneFoundAsFalse(call: Promise<unknown>): Promise<boolean> {
  try {
    await call;
    return true;
  } catch (error) {
    if (
      error instanceof QuayApiError && error.status === 400 &&
      /no repository notification found/i.test(error.message)
    ) {
      return false;
    }
    throw error;
  }
}

/** A Quay API client for one Quay instance and token. */
export class QuayClient {
  readonly #options: QuayClientOptions;
  readonly #transport: HttpTransport;
  readonly #ownsTransport: boolean;
  readonly #slots: Semaphore;

  constructor(options: QuayClientOptions) {
    this.#options = options;
    this.#ownsTransport = options.transport === undefined;
    this.#transport = options.transport ??
      (options.insecure
        ? createInsecureTransport()
        : createFetchTransport({ caCerts: options.caBundle ? [options.caBundle] : [] }));
    this.#slots = new Semaphore(options.concurrency ?? 8);
  }

  /** Releases pooled connections. */
  close(): void {
    if (this.#ownsTransport) this.#transport.close();
  }

  /** `GET /user/`: who the token belongs to. */
  async getUser(): Promise<QuayUser> {
    return (await this.#call({ method: "GET", path: "/api/v1/user/", route: "GET /api/v1/user/" }))
      .body as QuayUser;
  }

  /** `GET /organization/{org}`; `undefined` when it does not exist. */
  async getOrganization(org: string): Promise<{ name: string } | undefined> {
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/organization/${enc(org)}`,
      route: "GET /api/v1/organization/{org}",
      accept: [404],
    });
    return r.status === 404 ? undefined : r.body as { name: string };
  }

  /** `POST /organization/`; `"exists"` when a user or organization already has the name. */
  async createOrganization(org: string, email: string): Promise<"created" | "exists"> {
    const r = await this.#call({
      method: "POST",
      path: "/api/v1/organization/",
      route: "POST /api/v1/organization/",
      body: { name: org, email },
      accept: [400],
    });
    if (r.status === 400) {
      if (/already exists/i.test(r.detail)) return "exists";
      throw this.#error(r.status, "POST /api/v1/organization/", r.detail, r.errorType);
    }
    return "created";
  }

  /** `DELETE /organization/{org}`; `false` when it was already gone. */
  async deleteOrganization(org: string): Promise<boolean> {
    const r = await this.#call({
      method: "DELETE",
      path: `/api/v1/organization/${enc(org)}`,
      route: "DELETE /api/v1/organization/{org}",
      accept: [404],
    });
    return r.status !== 404;
  }

  /** `GET /organization/{org}/robots` with tokens; `undefined` when the organization does not exist. */
  async listRobots(org: string): Promise<QuayRobot[] | undefined> {
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/organization/${enc(org)}/robots?token=true&permissions=false`,
      route: "GET /api/v1/organization/{org}/robots",
      accept: [404],
    });
    if (r.status === 404) return undefined;
    return ((r.body as { robots?: QuayRobot[] }).robots ?? []);
  }

  /** `GET /organization/{org}/robots/{short}`; `undefined` for an unknown robot (Quay answers 400). */
  async getRobot(org: string, shortName: string): Promise<QuayRobot | undefined> {
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/organization/${enc(org)}/robots/${enc(shortName)}`,
      route: "GET /api/v1/organization/{org}/robots/{robot}",
      accept: [400, 404],
    });
    return r.status === 400 || r.status === 404 ? undefined : r.body as QuayRobot;
  }

  /**
   * `PUT /organization/{org}/robots/{short}`: creates a robot and returns it with its token. A robot
   * that already exists (Quay answers 400 "Existing robot") is read and returned instead.
   */
  async createRobot(org: string, shortName: string, description: string): Promise<QuayRobot> {
    const route = "PUT /api/v1/organization/{org}/robots/{robot}";
    const r = await this.#call({
      method: "PUT",
      path: `/api/v1/organization/${enc(org)}/robots/${enc(shortName)}`,
      route,
      body: { description },
      accept: [400],
    });
    if (r.status === 400) {
      const existing = /existing robot/i.test(r.detail) ? await this.getRobot(org, shortName) : undefined;
      if (existing) return existing;
      throw this.#error(r.status, route, r.detail, r.errorType);
    }
    return r.body as QuayRobot;
  }

  /**
   * `POST /organization/{org}/robots/{short}/regenerate`: a new token for the robot, returned with it.
   * Quay invalidates the old token at once. An unknown robot or organization is a 400.
   */
  async regenerateRobotToken(org: string, shortName: string): Promise<QuayRobot> {
    const r = await this.#call({
      method: "POST",
      path: `/api/v1/organization/${enc(org)}/robots/${enc(shortName)}/regenerate`,
      route: "POST /api/v1/organization/{org}/robots/{robot}/regenerate",
    });
    return r.body as QuayRobot;
  }

  /** `GET /organization/{org}/prototypes`; `undefined` when the organization does not exist. */
  async listPrototypes(org: string): Promise<QuayPrototype[] | undefined> {
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/organization/${enc(org)}/prototypes`,
      route: "GET /api/v1/organization/{org}/prototypes",
      accept: [404],
    });
    if (r.status === 404) return undefined;
    return (r.body as { prototypes?: QuayPrototype[] }).prototypes ?? [];
  }

  /** `POST /organization/{org}/prototypes`: gives `robot` the role on repositories created from now on. */
  async createPrototype(org: string, robot: string, role: QuayRole): Promise<QuayPrototype> {
    const r = await this.#call({
      method: "POST",
      path: `/api/v1/organization/${enc(org)}/prototypes`,
      route: "POST /api/v1/organization/{org}/prototypes",
      body: { role, delegate: { kind: "user", name: robot } },
    });
    return r.body as QuayPrototype;
  }

  /** `PUT /organization/{org}/prototypes/{id}`: changes a default permission's role. */
  async updatePrototype(org: string, id: string, role: QuayRole): Promise<void> {
    await this.#call({
      method: "PUT",
      path: `/api/v1/organization/${enc(org)}/prototypes/${enc(id)}`,
      route: "PUT /api/v1/organization/{org}/prototypes/{id}",
      body: { role },
    });
  }

  /** `GET /repository?namespace={org}`, every page. */
  async listRepositories(org: string): Promise<QuayRepository[]> {
    const out: QuayRepository[] = [];
    let next: string | undefined;
    do {
      const query = `namespace=${enc(org)}` + (next ? `&next_page=${enc(next)}` : "");
      const r = await this.#call({
        method: "GET",
        path: `/api/v1/repository?${query}`,
        route: "GET /api/v1/repository",
      });
      const body = r.body as { repositories?: QuayRepository[]; next_page?: string };
      out.push(...(body.repositories ?? []));
      next = body.next_page || undefined;
    } while (next);
    return out;
  }

  /** `POST /repository`: a private image repository; `"exists"` when it already exists. */
  async createRepository(org: string, name: string, description: string): Promise<"created" | "exists"> {
    const r = await this.#call({
      method: "POST",
      path: "/api/v1/repository",
      route: "POST /api/v1/repository",
      body: { namespace: org, repository: name, visibility: "private", description, repo_kind: "image" },
      accept: [400],
    });
    if (r.status === 400) {
      if (/already exists/i.test(r.detail)) return "exists";
      throw this.#error(r.status, "POST /api/v1/repository", r.detail, r.errorType);
    }
    return "created";
  }

  /** `DELETE /repository/{org}/{repo}`; `false` when it was already gone. */
  async deleteRepository(org: string, name: string): Promise<boolean> {
    const r = await this.#call({
      method: "DELETE",
      path: `/api/v1/repository/${enc(org)}/${enc(name)}`,
      route: "DELETE /api/v1/repository/{org}/{repo}",
      accept: [404],
    });
    return r.status !== 404;
  }

  /** `PUT /repository/{org}/{repo}/permissions/user/{robot}`: grants on a repository that predates the prototypes. */
  async setRepositoryPermission(org: string, repo: string, user: string, role: QuayRole): Promise<void> {
    await this.#call({
      method: "PUT",
      path: `/api/v1/repository/${enc(org)}/${enc(repo)}/permissions/user/${enc(user)}`,
      route: "PUT /api/v1/repository/{org}/{repo}/permissions/user/{user}",
      body: { role },
    });
  }

  // ---- repository notifications (src/notifications/) -------------------------------------------

  /**
   * `GET /repository/{org}/{repo}/notification/`. Quay answers an empty list (not 404) for a
   * repository that does not exist.
   */
  async listRepositoryNotifications(org: string, repo: string): Promise<QuayNotification[]> {
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/repository/${enc(org)}/${enc(repo)}/notification/`,
      route: "GET /api/v1/repository/{org}/{repo}/notification/",
    });
    return (r.body as { notifications?: QuayNotification[] }).notifications ?? [];
  }

  /** `POST /repository/{org}/{repo}/notification/`: the created notification (with its uuid). */
  async createRepositoryNotification(
    org: string,
    repo: string,
    spec: NewQuayNotification,
  ): Promise<QuayNotification> {
    const r = await this.#call({
      method: "POST",
      path: `/api/v1/repository/${enc(org)}/${enc(repo)}/notification/`,
      route: "POST /api/v1/repository/{org}/{repo}/notification/",
      body: {
        event: spec.event,
        method: spec.method,
        config: spec.config,
        eventConfig: spec.eventConfig ?? {},
        ...(spec.title === undefined ? {} : { title: spec.title }),
      },
    });
    return r.body as QuayNotification;
  }

  /** `DELETE /repository/{org}/{repo}/notification/{uuid}`; `false` when there was none (Quay answers 400). */
  async deleteRepositoryNotification(org: string, repo: string, uuid: string): Promise<boolean> {
    return await noneFoundAsFalse(this.#call({
      method: "DELETE",
      path: `/api/v1/repository/${enc(org)}/${enc(repo)}/notification/${enc(uuid)}`,
      route: "DELETE /api/v1/repository/{org}/{repo}/notification/{uuid}",
    }));
  }

  /**
   * `POST /repository/{org}/{repo}/notification/{uuid}`: resets the failure count. Quay stops
   * delivering a notification after 3 failed deliveries until this is called.
   */
  async resetRepositoryNotificationFailures(org: string, repo: string, uuid: string): Promise<boolean> {
    return await noneFoundAsFalse(this.#call({
      method: "POST",
      path: `/api/v1/repository/${enc(org)}/${enc(repo)}/notification/${enc(uuid)}`,
      route: "POST /api/v1/repository/{org}/{repo}/notification/{uuid}",
    }));
  }

  #error(
    status: number,
    route: string,
    detail: string,
    errorType?: string,
    retryAfter?: number,
  ): QuayApiError {
    const what = status === 0 ? "Cannot reach Quay" : `Quay answered ${status}`;
    return new QuayApiError(`${what} for ${route}${detail ? `: ${detail}` : ""}`, {
      status,
      route,
      errorType,
      retryAfterSeconds: retryAfter,
    });
  }

  async #call(
    spec: CallSpec,
  ): Promise<{ status: number; body: unknown; detail: string; errorType?: string }> {
    const maxAttempts = this.#options.maxAttempts ?? 4;
    const maxDelay = this.#options.maxRetryDelayMs ?? 30_000;
    for (let attempt = 1;; attempt++) {
      let outcome: { status: number; body: unknown; detail: string; errorType?: string } | QuayApiError;
      await this.#slots.acquire();
      try {
        outcome = await this.#exchange(spec);
      } finally {
        this.#slots.release();
      }
      if (!(outcome instanceof QuayApiError)) return outcome;
      if (outcome.retry !== "transient" || attempt >= maxAttempts || this.#options.signal?.aborted) {
        throw outcome;
      }
      const backoff = backoffDelay(attempt, { baseMs: this.#options.retryBaseMs ?? 250, maxMs: maxDelay });
      const asked = outcome.retryAfterSeconds === undefined ? 0 : outcome.retryAfterSeconds * 1000;
      await sleepUnlessAborted(Math.min(maxDelay, Math.max(backoff, asked)), this.#options.signal);
    }
  }

  async #exchange(
    spec: CallSpec,
  ): Promise<{ status: number; body: unknown; detail: string; errorType?: string } | QuayApiError> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.#options.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (spec.body !== undefined) headers["Content-Type"] = "application/json";
    const timeout = AbortSignal.timeout(this.#options.timeoutMs ?? 10_000);
    const signal = this.#options.signal ? AbortSignal.any([timeout, this.#options.signal]) : timeout;
    const started = performance.now();
    let status = 0;
    try {
      const response = await this.#transport.send({
        method: spec.method,
        url: this.#options.baseUrl + spec.path,
        headers,
        body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
        signal,
      });
      status = response.status;
      let body: unknown = undefined;
      let parsed = true;
      if (response.text !== "") {
        try {
          body = JSON.parse(response.text);
        } catch {
          parsed = false;
        }
      }
      const errorBody = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
      const detail = String(errorBody.detail ?? errorBody.error_message ?? errorBody.message ?? "");
      const errorType = typeof errorBody.error_type === "string" ? errorBody.error_type : undefined;
      if (status >= 200 && status < 300) {
        // A 2xx with an unparsable body is a proxy in the way, not Quay.
        if (!parsed) return this.#error(502, spec.route, "Unparsable response body");
        return { status, body, detail, errorType };
      }
      if (spec.accept?.includes(status) && parsed) return { status, body, detail, errorType };
      const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      // A non-JSON error body (an HTML page from a proxy) says nothing about Quay; keep its status.
      return this.#error(status, spec.route, parsed ? detail : "Non-JSON error body", errorType, retryAfter);
    } catch (error) {
      if (!(error instanceof TransportError)) throw error;
      const reason = error.timedOut && !this.#options.signal?.aborted
        ? `No answer within ${this.#options.timeoutMs ?? 10_000} ms${
          error.proxy ? ` through the proxy ${error.proxy}` : ""
        }`
        : error.message;
      const err = this.#error(0, spec.route, reason);
      return err;
    } finally {
      this.#options.onCall?.({ route: spec.route, status, durationMs: performance.now() - started });
    }
  }
}
