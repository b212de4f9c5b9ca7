/**
 * @module
 * The Quay REST client: the narrow set of calls quay-bridge makes, each returning typed data or
 * throwing {@linkcode QuayApiError}. It verifies TLS unless told otherwise, caps concurrent
 * requests and bounds each request with a timeout. It retries only what is cheap
 * to retry at once (a quick 5xx, a dropped connection: up to 3 attempts within about a second); a
 * timeout or a longer `Retry-After` is thrown at once with `retryAfterSeconds`, and the caller's
 * work queue decides when to try again, so long waits never stack.
 *
 * What real Quay answers shapes the error classification (reasons in {@linkcode QuayReason}):
 * - A bad, expired or revoked token is treated as anonymous, not refused: writes answer 403
 *   `{"error": "CSRF token was invalid or missing."}`, `GET /organization/{org}` answers the public
 *   view and `GET /repository?namespace=` an empty list. Both become `TokenInvalid`, and no answer
 *   that could be anonymous is trusted without proof that the token was accepted.
 * - A deleted organization's name stays taken until Quay's namespace GC has run (about a minute):
 *   `400 "Username is not available"` is transient (`OrganizationNameNotFree`), not a refusal.
 * - Writes into a missing organization or repository answer 500 with an HTML page; the client
 *   checks the parent and reports `OrganizationNotFound`/`RepositoryNotFound` instead.
 * - The robot list of a missing organization is `200 []` and `DELETE` of a missing repository is
 *   204; the client confirms before it reports "missing" or "deleted".
 *
 * A 429 (or 503) with `Retry-After` pauses every call of the client until then, and the client
 * paces itself with an additive-increase, multiplicative-decrease rate ({@linkcode AdaptiveRate}),
 * so many workers behind one client do not keep hammering a rate-limited Quay. The token is read
 * through a function on every request, so a rotated token is used at once; it never appears in
 * errors or logs.
 */
import { backoffDelay, QuayApiError, type RetryClass } from "../errors.ts";
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

/**
 * One audit log entry as Quay lists it. `namespace` is the organization's current name: a deleted
 * organization is renamed until it is collected, then `namespace` is absent; `metadata.namespace`
 * (organization and repository entries) keeps the name of the time.
 */
export interface QuayLogEntry {
  readonly kind: string;
  /** RFC 2822, whole seconds (`Wed, 02 Dec 2026 06:08:46 -0000`). */
  readonly datetime: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly namespace?: { readonly kind?: string; readonly name?: string };
}

/** One page of the audit log. */
export interface QuayLogPage {
  readonly logs: readonly QuayLogEntry[];
  readonly nextPage: string | undefined;
  /** Quay's log search is not configured (`search_unavailable`). */
  readonly unavailable: boolean;
}

/** The authenticated user. */
export interface QuayUser {
  readonly username: string;
  readonly organizations?: readonly { name: string }[];
}

/** An organization as `GET /organization/{org}` shows it to an administrator. */
export interface QuayOrganization {
  readonly name: string;
  readonly is_admin?: boolean;
}

/**
 * Reasons of the {@linkcode QuayApiError}s this client classifies beyond the HTTP status (the
 * others come from `errors.ts`). What a caller should do with each:
 */
export const QuayReason = {
  /** Quay did not accept the token (401, or the anonymous answers above). Terminal until a new token. */
  TokenInvalid: "TokenInvalid",
  /** The token works but does not administer the organization. Terminal. */
  OrganizationNotAdministered: "OrganizationNotAdministered",
  /** The name of a deleted organization is not free yet (Quay's namespace GC). Transient, `retryAfterSeconds` set. */
  OrganizationNameNotFree: "OrganizationNameNotFree",
  /** The organization is gone: forget what is known of it and read Quay again. Transient. */
  OrganizationNotFound: "OrganizationNotFound",
  /** The repository is gone: forget it and read Quay again. Transient. */
  RepositoryNotFound: "RepositoryNotFound",
  /** A name Quay's database cannot store (robot `org+short` beyond 255 characters). Terminal. */
  NameTooLong: "NameTooLong",
} as const;

/** How long a deleted organization's name is expected to stay taken before the next try. */
const NAME_NOT_FREE_RETRY_SECONDS = 20;
/** An answer that could be anonymous is trusted when the token was accepted this recently. */
const TOKEN_PROOF_MS = 10_000;

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
  /**
   * Attempts per call for transient failures that are cheap to retry at once: a 5xx or a dropped
   * connection answered quickly. Timeouts and any `Retry-After` longer than `maxRetryDelayMs` are
   * never waited out here: they are thrown at once, and the work queue, which retries whole
   * reconciles, decides when to try again (so waits never stack). @default 3
   */
  maxAttempts?: number;
  /** First retry delay. @default 200 */
  retryBaseMs?: number;
  /** Longest wait between attempts of one call; a longer `Retry-After` is thrown instead. @default 1_000 */
  maxRetryDelayMs?: number;
  /** Concurrent requests at most. @default 8 */
  concurrency?: number;
  /** Observer of each exchange. */
  onCall?: QuayCallObserver;
  /** A transport to use instead of the default (tests). */
  transport?: HttpTransport;
  /** Aborts waits and in-flight requests (shutdown). */
  signal?: AbortSignal;
  /** Clock for pacing (tests). @default performance.now */
  now?: () => number;
}

interface CallSpec {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  route: string;
  body?: unknown;
  /** Statuses returned to the caller rather than thrown. */
  accept?: readonly number[];
}

interface CallResult {
  status: number;
  body: unknown;
  detail: string;
  errorType?: string;
  /** The body was HTML or otherwise not JSON. */
  parsed: boolean;
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

/**
 * Request pacing after a rate limit: unlimited until Quay first answers 429, then a rate that
 * halves at every 429 (once per burst of answers to requests sent before the cut) and grows by
 * {@linkcode AdaptiveRate.increasePerSecond} requests/s per second of accepted requests, as TCP's
 * congestion control does. A `Retry-After` stops every request until it has passed.
 */
export class AdaptiveRate {
  /** Lowest rate it falls to, requests/s. */
  static readonly minRate = 0.2;
  /** Additive increase, requests/s gained per second of accepted requests. */
  static readonly increasePerSecond = 0.2;
  /** Above this the pacing is switched off again. */
  static readonly maxRate = 1_000;

  readonly #now: () => number;
  #rate = Infinity;
  #nextSlot = 0;
  #pausedUntil = 0;
  #lastCut = -Infinity;
  #accepted: number[] = [];

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Current rate in requests/s (`Infinity` when not pacing). */
  get rate(): number {
    return this.#rate;
  }

  /** Milliseconds to wait before the next request may go; reserves its slot when it is 0. */
  reserve(): number {
    const now = this.#now();
    const start = Math.max(now, this.#pausedUntil, Number.isFinite(this.#rate) ? this.#nextSlot : 0);
    if (start > now) return start - now;
    if (Number.isFinite(this.#rate)) this.#nextSlot = now + 1000 / this.#rate;
    return 0;
  }

  /** Records an answer to a request sent at `sentAt`. */
  answered(sentAt: number, status: number, retryAfterSeconds: number | undefined): void {
    const now = this.#now();
    if (status === 429 || (status === 503 && retryAfterSeconds !== undefined)) {
      this.#pausedUntil = Math.max(this.#pausedUntil, now + 1000 * (retryAfterSeconds ?? 1));
      if (status === 429 && sentAt >= this.#lastCut) {
        // Quay's own rate is unknown: start from what it accepted in the last second.
        this.#accepted = this.#accepted.filter((t) => t > now - 1000);
        const base = Number.isFinite(this.#rate) ? this.#rate : Math.max(1, this.#accepted.length);
        this.#rate = Math.max(AdaptiveRate.minRate, base / 2);
        this.#lastCut = now;
      }
      return;
    }
    // Only answers Quay served count as room to grow; failures and server errors do not.
    if (status === 0 || status >= 500) return;
    if (!Number.isFinite(this.#rate)) {
      this.#accepted.push(now);
      if (this.#accepted.length > 64) this.#accepted.shift();
      return;
    }
    this.#rate += AdaptiveRate.increasePerSecond / this.#rate;
    if (this.#rate > AdaptiveRate.maxRate) this.#rate = Infinity;
  }
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}

/** Quay's error text: problem bodies use `detail`/`error_message`, Flask aborts `message`, the CSRF check `error`. */
function errorDetail(body: unknown): string {
  if (!body || typeof body !== "object") return "";
  const b = body as Record<string, unknown>;
  for (const key of ["detail", "error_message", "message", "error"]) {
    const value = b[key];
    if (typeof value === "string" && value !== "") return value.trim();
    if (value && typeof value === "object") return JSON.stringify(value);
  }
  return "";
}

const CSRF_REFUSAL = /CSRF token/i;
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
  readonly #pace: AdaptiveRate;
  readonly #now: () => number;
  /** Transport errors that were not timeouts (connection closed, reset, refused). */
  readonly #stale = new WeakSet<QuayApiError>();
  /** Requests that got no answer in time: retrying at once would only double the wait. */
  readonly #timeouts = new WeakSet<QuayApiError>();
  /** The token Quay last accepted on an authenticated-only route, and when. */
  #proof: { token: string; at: number } | undefined;

  constructor(options: QuayClientOptions) {
    this.#options = options;
    this.#ownsTransport = options.transport === undefined;
    this.#transport = options.transport ??
      (options.insecure
        ? createInsecureTransport()
        : createFetchTransport({ caCerts: options.caBundle ? [options.caBundle] : [] }));
    this.#slots = new Semaphore(options.concurrency ?? 8);
    this.#now = options.now ?? (() => performance.now());
    this.#pace = new AdaptiveRate(this.#now);
  }

  /** Releases pooled connections. */
  close(): void {
    if (this.#ownsTransport) this.#transport.close();
  }

  /** The current pacing rate in requests/s (`Infinity` until Quay rate-limits this client). */
  get rate(): number {
    return this.#pace.rate;
  }

  /** `GET /user/`: who the token belongs to. Throws `TokenInvalid` when Quay does not accept the token. */
  async getUser(): Promise<QuayUser> {
    return (await this.#call({ method: "GET", path: "/api/v1/user/", route: "GET /api/v1/user/" }, true))
      .body as QuayUser;
  }

  /**
   * `GET /organization/{org}`; `undefined` when it does not exist (a 404 is the same for every
   * caller). Quay shows an organization to anyone, so a view without `is_admin` is checked against
   * `GET /user/`: a refused token throws `TokenInvalid`, a valid one that does not administer the
   * organization throws `OrganizationNotAdministered`. A super user (with full access) is admin of
   * every organization.
   */
  async getOrganization(org: string): Promise<QuayOrganization | undefined> {
    const route = "GET /api/v1/organization/{org}";
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/organization/${enc(org)}`,
      route,
      accept: [404],
    });
    if (r.status === 404) return undefined;
    const view = r.body as QuayOrganization;
    if (view.is_admin === true) {
      this.#accepted();
      return view;
    }
    await this.getUser();
    throw this.#error(
      403,
      route,
      `The token does not administer organization ${org} (its user is no owner, or it lacks the org:admin scope)`,
      {
        reason: QuayReason.OrganizationNotAdministered,
        retry: "terminal",
      },
    );
  }

  /** Whether the organization exists (`GET /organization/{org}`), without judging the token. */
  async organizationExists(org: string): Promise<boolean> {
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/organization/${enc(org)}`,
      route: "GET /api/v1/organization/{org}",
      accept: [404],
    });
    return r.status !== 404;
  }

  /**
   * `POST /organization/`; `"exists"` when a user or organization already has the name. The name
   * of an organization deleted less than about a minute ago throws a transient
   * `OrganizationNameNotFree` error with `retryAfterSeconds`.
   */
  async createOrganization(org: string, email: string): Promise<"created" | "exists"> {
    const route = "POST /api/v1/organization/";
    const r = await this.#call({
      method: "POST",
      path: "/api/v1/organization/",
      route,
      body: { name: org, email },
      accept: [400],
    }, true);
    if (r.status === 400) {
      if (/already exists/i.test(r.detail)) return "exists";
      if (/not available/i.test(r.detail)) {
        throw this.#error(
          400,
          route,
          `${r.detail} (the name of a deleted organization is freed by Quay's namespace garbage collection)`,
          {
            errorType: r.errorType,
            reason: QuayReason.OrganizationNameNotFree,
            retry: "transient",
            retryAfter: NAME_NOT_FREE_RETRY_SECONDS,
          },
        );
      }
      throw this.#error(r.status, route, r.detail, { errorType: r.errorType });
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
    }, true);
    return r.status !== 404;
  }

  /**
   * `GET /organization/{org}/robots` with tokens; `undefined` when the organization does not exist.
   * Quay answers a super user's list of a missing organization with `200 []`, so an empty list is
   * confirmed against the organization itself (operator-managed organizations always have robots,
   * so this costs a call only for new or foreign ones).
   */
  async listRobots(org: string): Promise<QuayRobot[] | undefined> {
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/organization/${enc(org)}/robots?token=true&permissions=false`,
      route: "GET /api/v1/organization/{org}/robots",
      accept: [404],
    }, true);
    if (r.status === 404) return undefined;
    const robots = (r.body as { robots?: QuayRobot[] }).robots ?? [];
    if (robots.length === 0 && !await this.organizationExists(org)) return undefined;
    return robots;
  }

  /**
   * `GET /organization/{org}/robots/{short}`; `undefined` for an unknown robot (Quay answers 400).
   * A missing organization (400 "Organization does not exist") throws `OrganizationNotFound`.
   */
  async getRobot(org: string, shortName: string): Promise<QuayRobot | undefined> {
    const route = "GET /api/v1/organization/{org}/robots/{robot}";
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/organization/${enc(org)}/robots/${enc(shortName)}`,
      route,
      accept: [400, 404],
    }, true);
    if (r.status === 400 && /organization does not exist/i.test(r.detail)) throw this.#orgMissing(route, org);
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
    }, true);
    if (r.status === 400) {
      if (/organization does not exist/i.test(r.detail)) throw this.#orgMissing(route, org);
      const existing = /existing robot/i.test(r.detail) ? await this.getRobot(org, shortName) : undefined;
      if (existing) return existing;
      if (/value too long/i.test(r.detail)) {
        throw this.#error(400, route, `Robot name ${org}+${shortName} is too long for Quay (${r.detail})`, {
          reason: QuayReason.NameTooLong,
        });
      }
      throw this.#error(r.status, route, r.detail, { errorType: r.errorType });
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
    }, true);
    if (r.status === 404) return undefined;
    return (r.body as { prototypes?: QuayPrototype[] }).prototypes ?? [];
  }

  /** `POST /organization/{org}/prototypes`: gives `robot` the role on repositories created from now on. */
  async createPrototype(org: string, robot: string, role: QuayRole): Promise<QuayPrototype> {
    const route = "POST /api/v1/organization/{org}/prototypes";
    const r = await this.#call({
      method: "POST",
      path: `/api/v1/organization/${enc(org)}/prototypes`,
      route,
      body: { role, delegate: { kind: "user", name: robot } },
      accept: [404],
    }, true);
    if (r.status === 404) throw this.#orgMissing(route, org);
    return r.body as QuayPrototype;
  }

  /** `PUT /organization/{org}/prototypes/{id}`: changes a default permission's role. */
  async updatePrototype(org: string, id: string, role: QuayRole): Promise<void> {
    const route = "PUT /api/v1/organization/{org}/prototypes/{id}";
    const r = await this.#call({
      method: "PUT",
      path: `/api/v1/organization/${enc(org)}/prototypes/${enc(id)}`,
      route,
      body: { role },
      accept: [404],
    }, true);
    if (r.status === 404) {
      if (!await this.organizationExists(org)) throw this.#orgMissing(route, org);
      throw this.#error(404, route, `Default permission ${id} of ${org} is gone`, { retry: "transient" });
    }
  }

  /**
   * `GET /repository?namespace={org}`, every page. Quay lists an anonymous caller's view (public
   * repositories only) for a refused token, so an empty list is trusted only when the token was
   * accepted on an authenticated-only route within the last 10 s (otherwise `GET /user/` is asked,
   * which throws `TokenInvalid` for a refused token).
   */
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
    if (out.length === 0 && !this.#tokenRecentlyAccepted()) await this.getUser();
    return out;
  }

  /**
   * `POST /repository`: a private image repository; `"exists"` when it already exists. A missing
   * organization (Quay fails with a 500 HTML page) throws `OrganizationNotFound`.
   */
  async createRepository(org: string, name: string, description: string): Promise<"created" | "exists"> {
    const route = "POST /api/v1/repository";
    const r = await this.#call({
      method: "POST",
      path: "/api/v1/repository",
      route,
      body: { namespace: org, repository: name, visibility: "private", description, repo_kind: "image" },
      accept: [400, 500],
    }, true);
    if (r.status === 500) throw await this.#serverErrorOrMissingParent(r, route, org);
    if (r.status === 400) {
      if (/already exists/i.test(r.detail)) return "exists";
      throw this.#error(r.status, route, r.detail, { errorType: r.errorType });
    }
    return "created";
  }

  /**
   * `DELETE /repository/{org}/{repo}`; `false` when it was already gone. Quay answers 204 for a
   * repository that does not exist (and 500 in a missing organization), so the repository is read
   * first: `true` means this call deleted it.
   */
  async deleteRepository(org: string, name: string): Promise<boolean> {
    if (!await this.repositoryExists(org, name)) return false;
    const route = "DELETE /api/v1/repository/{org}/{repo}";
    const r = await this.#call({
      method: "DELETE",
      path: `/api/v1/repository/${enc(org)}/${enc(name)}`,
      route,
      accept: [404, 500],
    }, true);
    if (r.status === 500) {
      // Gone between the read and the delete (with its organization) is "already gone".
      if (!await this.repositoryExists(org, name)) return false;
      throw this.#error(500, route, r.parsed ? r.detail : "Non-JSON error body");
    }
    return r.status !== 404;
  }

  /** `GET /repository/{org}/{repo}`: whether the repository exists (404 also for a missing organization). */
  async repositoryExists(org: string, name: string): Promise<boolean> {
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/repository/${enc(org)}/${enc(name)}?includeStats=false&includeTags=false`,
      route: "GET /api/v1/repository/{org}/{repo}",
      accept: [404],
    });
    return r.status !== 404;
  }

  /**
   * `PUT /repository/{org}/{repo}/permissions/user/{robot}`: grants on a repository that predates the
   * prototypes. A missing repository or organization (Quay fails with a 500 HTML page) throws
   * `RepositoryNotFound` or `OrganizationNotFound`.
   */
  async setRepositoryPermission(org: string, repo: string, user: string, role: QuayRole): Promise<void> {
    const route = "PUT /api/v1/repository/{org}/{repo}/permissions/user/{user}";
    const r = await this.#call({
      method: "PUT",
      path: `/api/v1/repository/${enc(org)}/${enc(repo)}/permissions/user/${enc(user)}`,
      route,
      body: { role },
      accept: [500],
    }, true);
    if (r.status === 500) throw await this.#serverErrorOrMissingParent(r, route, org, repo);
  }

  /** A 500 on a write: Quay's answer for a missing organization or repository, else a server error. */
  async #serverErrorOrMissingParent(
    r: CallResult,
    route: string,
    org: string,
    repo?: string,
  ): Promise<QuayApiError> {
    // Quay's own failures are JSON; the bare HTML page is Flask's answer to an exception, which is
    // what a write into a missing organization or repository raises.
    if (r.parsed) return this.#error(r.status, route, r.detail, { errorType: r.errorType });
    if (!await this.organizationExists(org)) return this.#orgMissing(route, org);
    if (repo !== undefined && !await this.repositoryExists(org, repo)) {
      return this.#error(404, route, `Repository ${org}/${repo} does not exist`, {
        reason: QuayReason.RepositoryNotFound,
        retry: "transient",
      });
    }
    return this.#error(r.status, route, r.parsed ? r.detail : "Non-JSON error body", {
      errorType: r.errorType,
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

  #orgMissing(route: string, org: string): QuayApiError {
    return this.#error(404, route, `Organization ${org} does not exist`, {
      reason: QuayReason.OrganizationNotFound,
      retry: "transient",
    });
  }

  #accepted(): void {
    this.#proof = { token: this.#options.token(), at: this.#now() };
  }

  #tokenRecentlyAccepted(): boolean {
    const proof = this.#proof;
    return proof !== undefined && proof.token === this.#options.token() &&
      this.#now() - proof.at < TOKEN_PROOF_MS;
  }

  /**
   * `GET /superuser/logs`: one page of the audit log of the whole registry, newest first (20 entries
   * a page). `starttime`/`endtime` are UTC days (`MM/DD/YYYY`, both inclusive); `nextPage` is the
   * opaque `next_page` of the previous page. Only a super-user's token may read it (403 otherwise).
   */
  async listSuperuserLogs(
    options: { startDay: string; endDay: string; nextPage?: string | undefined },
  ): Promise<QuayLogPage> {
    const query = `starttime=${enc(options.startDay)}&endtime=${enc(options.endDay)}` +
      (options.nextPage ? `&next_page=${enc(options.nextPage)}` : "");
    const r = await this.#call({
      method: "GET",
      path: `/api/v1/superuser/logs?${query}`,
      route: "GET /api/v1/superuser/logs",
    });
    const body = (r.body ?? {}) as {
      logs?: QuayLogEntry[];
      next_page?: string;
      search_unavailable?: boolean;
    };
    return {
      logs: Array.isArray(body.logs) ? body.logs : [],
      nextPage: body.next_page || undefined,
      unavailable: body.search_unavailable === true,
    };
  }

  #error(
    status: number,
    route: string,
    detail: string,
    more: {
      errorType?: string | undefined;
      retryAfter?: number | undefined;
      retry?: RetryClass;
      reason?: string;
    } = {},
  ): QuayApiError {
    const what = status === 0 ? "Cannot reach Quay" : `Quay answered ${status}`;
    return new QuayApiError(`${what} for ${route}${detail ? `: ${detail}` : ""}`, {
      status,
      route,
      errorType: more.errorType,
      retryAfterSeconds: more.retryAfter,
      retry: more.retry,
      reason: more.reason,
    });
  }

  /**
   * One call. `authenticatedOnly` marks routes Quay never serves to an anonymous caller (they
   * answer 401 or the CSRF 403 to a refused token), so their success proves the token.
   */
  async #call(spec: CallSpec, authenticatedOnly = false): Promise<CallResult> {
    const maxAttempts = Math.max(1, this.#options.maxAttempts ?? 3);
    const maxDelay = this.#options.maxRetryDelayMs ?? 1_000;
    for (let attempt = 1;; attempt++) {
      let outcome: CallResult | QuayApiError;
      await this.#slots.acquire();
      try {
        await this.#paced();
        outcome = await this.#exchange(spec);
        // A pooled connection the server closed as the request went out: nothing reached Quay, so
        // an idempotent request goes again at once, on a fresh connection (not an attempt).
        if (outcome instanceof QuayApiError && this.#stale.has(outcome) && spec.method !== "POST") {
          outcome = await this.#exchange(spec);
        }
      } finally {
        this.#slots.release();
      }
      if (!(outcome instanceof QuayApiError)) {
        if (authenticatedOnly && outcome.status < 400) this.#accepted();
        return outcome;
      }
      const asked = outcome.retryAfterSeconds === undefined ? 0 : outcome.retryAfterSeconds * 1000;
      if (
        outcome.retry !== "transient" || attempt >= maxAttempts || this.#options.signal?.aborted ||
        this.#timeouts.has(outcome) || asked > maxDelay
      ) {
        throw outcome;
      }
      const backoff = backoffDelay(attempt, { baseMs: this.#options.retryBaseMs ?? 200, maxMs: maxDelay });
      await sleepUnlessAborted(Math.max(backoff, asked), this.#options.signal);
    }
  }

  /** Waits until the pacing allows the next request (a `Retry-After` pause, the adapted rate). */
  async #paced(): Promise<void> {
    for (;;) {
      const wait = this.#pace.reserve();
      if (wait <= 0 || this.#options.signal?.aborted) return;
      await sleepUnlessAborted(wait, this.#options.signal);
    }
  }

  async #exchange(spec: CallSpec): Promise<CallResult | QuayApiError> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.#options.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (spec.body !== undefined) headers["Content-Type"] = "application/json";
    const timeout = AbortSignal.timeout(this.#options.timeoutMs ?? 10_000);
    const signal = this.#options.signal ? AbortSignal.any([timeout, this.#options.signal]) : timeout;
    const started = performance.now();
    const sentAt = this.#now();
    let status = 0;
    let retryAfter: number | undefined;
    try {
      const response = await this.#transport.send({
        method: spec.method,
        url: this.#options.baseUrl + spec.path,
        headers,
        body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
        signal,
      });
      status = response.status;
      retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      let body: unknown = undefined;
      let parsed = true;
      if (response.text !== "") {
        try {
          body = JSON.parse(response.text);
        } catch {
          parsed = false;
        }
      }
      const detail = errorDetail(body);
      const errorBody = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
      const errorType = typeof errorBody.error_type === "string" ? errorBody.error_type : undefined;
      if (status >= 200 && status < 300) {
        // A 2xx with an unparsable body is a proxy in the way, not Quay.
        if (!parsed) return this.#error(502, spec.route, "Unparsable response body");
        return { status, body, detail, errorType, parsed };
      }
      // Quay treats a token it does not accept as no token: 401, or the CSRF check of a write.
      if (status === 401 || (status === 403 && CSRF_REFUSAL.test(detail))) {
        return this.#error(status, spec.route, `Quay did not accept the token (${detail || "no detail"})`, {
          errorType,
          reason: QuayReason.TokenInvalid,
          retry: "terminal",
        });
      }
      if (spec.accept?.includes(status) && (parsed || status === 500)) {
        return { status, body, detail, errorType, parsed };
      }
      // A non-JSON error body (an HTML page from a proxy) says nothing about Quay; keep its status.
      return this.#error(status, spec.route, parsed ? detail : "Non-JSON error body", {
        errorType,
        retryAfter,
      });
    } catch (error) {
      if (!(error instanceof TransportError)) throw error;
      const reason = error.timedOut && !this.#options.signal?.aborted
        ? `No answer within ${this.#options.timeoutMs ?? 10_000} ms${
          error.proxy ? ` through the proxy ${error.proxy}` : ""
        }`
        : error.message;
      const failure = this.#error(0, spec.route, reason);
      if (error.timedOut) this.#timeouts.add(failure);
      else this.#stale.add(failure);
      return failure;
    } finally {
      this.#pace.answered(sentAt, status, retryAfter);
      this.#options.onCall?.({ route: spec.route, status, durationMs: performance.now() - started });
    }
  }
}
