/**
 * @module
 * Repository notifications of the test world's Quay, as `endpoints/api/repositorynotification.py`
 * serves them and `workers/notificationworker` delivers them: list, create, get, delete, reset the
 * failure count and queue a test of a notification; a tag pushed to the registry queues a
 * `repo_push` event for every notification of the repository, and a worker delivers queued events
 * asynchronously (polling, like Quay's), POSTing the event data as JSON to a `webhook`'s URL.
 *
 * Quay's rules kept: webhook URLs must be http(s) and their host not `localhost` or `127.0.0.1`
 * (checked at creation and again at delivery); a non-2xx answer or a failed connection counts a
 * failure and the event is retried later; a notification with 3 failures in a row is no longer
 * delivered until its count is reset; deleting a repository deletes its notifications.
 *
 * Differences, in the direction of plainer answers: creating on a repository that does not exist is
 * 404 and an unknown event or method is 400 (Quay fails with a 500); a schema error's detail is only
 * the first line of jsonschema's message; `get` looks the uuid up within the repository.
 */
import {
  emptyResponse,
  invalidRequest,
  jsonResponse,
  notFound,
  repositoryNotFound,
  unauthorized,
} from "./http_util.ts";
import type { ApiHandler } from "./api.ts";
import type { RouteDef } from "./router.ts";
import type { QuayState, RepositoryRecord } from "./state.ts";

/** Events and methods Quay knows (the ones the world can deliver are `repo_push` and `webhook`). */
const EVENTS = new Set([
  "repo_push",
  "build_queued",
  "build_start",
  "build_success",
  "build_failure",
  "build_cancelled",
  "vulnerability_found",
  "repo_mirror_sync_started",
  "repo_mirror_sync_success",
  "repo_mirror_sync_failed",
  "repo_image_expiry",
]);
const METHODS = new Set(["webhook", "email", "quay_notification", "slack", "flowdock", "hipchat"]);
const HOSTNAME_BLACKLIST = new Set(["localhost", "127.0.0.1"]);
/** `get_enabled_notification`: fewer than this many failures. */
const MAX_FAILURES = 3;
/** Queue item retries (`WorkQueue.put`'s default `retries_remaining`). */
const RETRIES = 5;

/** One stored notification. */
export interface NotificationRecord {
  readonly uuid: string;
  readonly title: string | null;
  readonly event: string;
  readonly method: string;
  readonly config: Record<string, unknown>;
  readonly eventConfig: Record<string, unknown>;
  numberOfFailures: number;
}

/** Delivery settings of a world. */
export interface NotificationDeliveryOptions {
  /** How often the worker polls its queue. Quay's: 10 s. @default 100 */
  pollMs?: number;
  /** Delay before a failed event is tried again. Quay's: 30 s. @default 1000 */
  retryAfterMs?: number;
  /** CA certificates trusted for https webhooks besides the system store (Quay: `REQUESTS_CA_BUNDLE`). */
  caCerts?: readonly string[];
  /** Per-delivery timeout. Quay's `NOTIFICATION_SEND_TIMEOUT`: 10 s. @default 10_000 */
  timeoutMs?: number;
}

/** One delivery attempt, for tests. */
export interface DeliveryRecord {
  readonly uuid: string;
  readonly url: string;
  /** HTTP status, or 0 when no answer came. */
  readonly status: number;
  readonly at: number;
}

interface Job {
  readonly uuid: string;
  readonly repository: RepositoryRecord;
  readonly eventData: Record<string, unknown>;
  retriesLeft: number;
  notBefore: number;
}

/** The notifications of one world: storage, queue and worker. */
export class NotificationHub {
  readonly #byRepository = new WeakMap<RepositoryRecord, NotificationRecord[]>();
  readonly #queue: Job[] = [];
  readonly #options: Required<Omit<NotificationDeliveryOptions, "caCerts">> & { caCerts: string[] };
  readonly #deliveries: DeliveryRecord[] = [];
  readonly #abort = new AbortController();
  #client: Deno.HttpClient | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #working: Promise<void> | undefined;
  #closed = false;

  readonly #state: QuayState;

  constructor(state: QuayState, options: NotificationDeliveryOptions = {}) {
    this.#state = state;
    this.#options = {
      pollMs: options.pollMs ?? 100,
      retryAfterMs: options.retryAfterMs ?? 1000,
      timeoutMs: options.timeoutMs ?? 10_000,
      caCerts: [...(options.caCerts ?? [])],
    };
  }

  /** Trusts `pem` for https webhooks from now on (Quay: a CA added to `REQUESTS_CA_BUNDLE`). */
  trust(pem: string): void {
    this.#options.caCerts = [...this.#options.caCerts, pem];
    this.#client?.close();
    this.#client = undefined;
  }

  /** The notifications of a repository (live array). */
  of(repo: RepositoryRecord): NotificationRecord[] {
    let list = this.#byRepository.get(repo);
    if (!list) {
      list = [];
      this.#byRepository.set(repo, list);
    }
    return list;
  }

  /** Every delivery attempt so far. */
  deliveries(): readonly DeliveryRecord[] {
    return this.#deliveries;
  }

  /** `spawn_notification`: queues the event for every notification of `event` on the repository. */
  spawn(repo: RepositoryRecord, event: string, extra: Record<string, unknown>, host: string): void {
    if (this.#closed) return;
    const eventData = repositoryEventData(repo, host, extra);
    for (const n of this.of(repo)) {
      if (n.event !== event) continue;
      this.#queue.push({ uuid: n.uuid, repository: repo, eventData, retriesLeft: RETRIES, notBefore: 0 });
    }
    this.#schedule();
  }

  /** `queue_test_notification`: the event's sample data for one notification. */
  queueTest(repo: RepositoryRecord, n: NotificationRecord, host: string): void {
    if (this.#closed) return;
    const sample = n.event === "repo_push" ? { updated_tags: ["latest", "foo"], pruned_image_count: 3 } : {};
    this.#queue.push({
      uuid: n.uuid,
      repository: repo,
      eventData: repositoryEventData(repo, host, sample),
      retriesLeft: RETRIES,
      notBefore: 0,
    });
    this.#schedule();
  }

  /** Stops the worker; deliveries in flight are aborted. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await this.#working;
    this.#client?.close();
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== undefined || this.#working || this.#queue.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#working = this.#work().finally(() => {
        this.#working = undefined;
        this.#schedule();
      });
    }, this.#options.pollMs);
  }

  async #work(): Promise<void> {
    const now = Date.now();
    const due = this.#queue.filter((j) => j.notBefore <= now);
    if (due.length === 0) return;
    for (const job of due) this.#queue.splice(this.#queue.indexOf(job), 1);
    for (const job of due) {
      if (this.#closed) return;
      // A deleted repository takes its notifications with it.
      const current = this.#state.getRepository(job.repository.namespace, job.repository.name);
      if (current !== job.repository) continue;
      const n = this.of(job.repository).find((x) => x.uuid === job.uuid);
      // get_enabled_notification: deleted or disabled notifications drop the job.
      if (!n || n.numberOfFailures >= MAX_FAILURES) continue;
      if (n.method !== "webhook") continue;
      const ok = await this.#post(n, job.eventData);
      if (ok) {
        n.numberOfFailures = 0;
      } else {
        n.numberOfFailures++;
        if (job.retriesLeft > 0) {
          job.retriesLeft--;
          job.notBefore = Date.now() + this.#options.retryAfterMs;
          this.#queue.push(job);
        }
      }
    }
  }

  async #post(n: NotificationRecord, payload: Record<string, unknown>): Promise<boolean> {
    const url = typeof n.config.url === "string" ? n.config.url : "";
    if (webhookUrlProblem(url)) return true; // WebhookMethod.perform returns quietly.
    this.#client ??= Deno.createHttpClient({ caCerts: [...this.#options.caCerts] });
    let status = 0;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "python-requests/2.32.3" },
        body: JSON.stringify(payload),
        client: this.#client,
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#options.timeoutMs)]),
      });
      status = response.status;
      await response.body?.cancel();
    } catch {
      status = 0;
    }
    this.#deliveries.push({ uuid: n.uuid, url, status, at: Date.now() });
    return status >= 200 && status < 300;
  }
}

/** `build_repository_event_data`. */
function repositoryEventData(
  repo: RepositoryRecord,
  host: string,
  extra: Record<string, unknown>,
): Record<string, unknown> {
  const full = `${repo.namespace}/${repo.name}`;
  return {
    repository: full,
    namespace: repo.namespace,
    name: repo.name,
    docker_url: `${host}/${full}`,
    homepage: `https://${host}/repository/${full}`,
    ...extra,
  };
}

/** `WebhookMethod.validate`'s URL rules; the problem, or `undefined` when the URL is acceptable. */
function webhookUrlProblem(url: string): string | undefined {
  if (!url) return "Missing webhook URL";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "Invalid webhook URL";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "Invalid webhook URL";
  if (HOSTNAME_BLACKLIST.has(parsed.hostname.toLowerCase())) return "Invalid webhook URL";
  return undefined;
}

const hubs = new WeakMap<QuayState, NotificationHub>();

/** The hub of a world's state (created with `options` on first use). */
export function notificationHub(state: QuayState, options?: NotificationDeliveryOptions): NotificationHub {
  let hub = hubs.get(state);
  if (!hub) {
    hub = new NotificationHub(state, options);
    hubs.set(state, hub);
  }
  return hub;
}

/** Called by the registry when a tag was pushed: `spawn_notification(repo, "repo_push", …)`. */
export function spawnRepoPush(state: QuayState, repo: RepositoryRecord, tag: string, host: string): void {
  hubs.get(state)?.spawn(repo, "repo_push", { updated_tags: [tag] }, host);
}

function view(n: NotificationRecord): Record<string, unknown> {
  return {
    uuid: n.uuid,
    title: n.title,
    event: n.event,
    method: n.method,
    config: n.config,
    event_config: n.eventConfig,
    number_of_failures: n.numberOfFailures,
  };
}

type Ctx = Parameters<ApiHandler>[0];

/** `require_repo_admin(allow_for_superuser=True)`: the repository's path parameters. */
function requireRepoAdmin(ctx: Ctx): { ns: string; name: string } {
  const ns = ctx.params.org ?? "";
  const name = ctx.params.repo ?? "";
  const admin = ctx.state.repositoryRole(ctx.identity, ns, name) >= 3 ||
    ctx.state.isFullAccessSuperuser(ctx.identity);
  if (!admin) throw unauthorized();
  return { ns, name };
}

function noneFound(ns: string, name: string, uuid: string) {
  return invalidRequest(`No repository notification found for: ${ns}, ${name}, ${uuid}`);
}

const OBJECT_FIELDS = ["config", "eventConfig"] as const;
const STRING_FIELDS = ["event", "method", "title"] as const;

/** `NotificationCreateRequest`'s schema, first line of the message. */
function schemaProblem(body: unknown): string | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return `${JSON.stringify(body)} is not of type 'object'`;
  }
  const b = body as Record<string, unknown>;
  for (const field of ["event", "method", "config", "eventConfig"]) {
    if (!(field in b)) return `'${field}' is a required property`;
  }
  for (const field of STRING_FIELDS) {
    if (field in b && typeof b[field] !== "string") {
      return `${JSON.stringify(b[field])} is not of type 'string'`;
    }
  }
  for (const field of OBJECT_FIELDS) {
    const v = b[field];
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      return `${JSON.stringify(v)} is not of type 'object'`;
    }
  }
  return undefined;
}

function listNotifications(ctx: Ctx): Response {
  const { ns, name } = requireRepoAdmin(ctx);
  const repo = ctx.state.getRepository(ns, name);
  const list = repo ? notificationHub(ctx.state).of(repo) : [];
  return jsonResponse({ notifications: list.map(view) });
}

async function createNotification(ctx: Ctx): Promise<Response> {
  const { ns, name } = requireRepoAdmin(ctx);
  let body: unknown;
  try {
    body = JSON.parse(await ctx.req.text());
  } catch {
    throw invalidRequest("Missing JSON body");
  }
  const problem = schemaProblem(body);
  if (problem) throw invalidRequest(problem);
  const b = body as Record<string, unknown>;
  const method = String(b.method);
  const event = String(b.event);
  if (!METHODS.has(method)) throw invalidRequest(`Unable to find method: ${method}`);
  const config = b.config as Record<string, unknown>;
  if (method === "webhook") {
    const urlProblem = webhookUrlProblem(typeof config.url === "string" ? config.url : "");
    if (urlProblem) throw invalidRequest(urlProblem);
  }
  const repo = ctx.state.getRepository(ns, name);
  if (!repo) throw repositoryNotFound(ns, name);
  if (!EVENTS.has(event)) throw invalidRequest(`Unable to find event: ${event}`);
  const record: NotificationRecord = {
    uuid: crypto.randomUUID(),
    title: typeof b.title === "string" ? b.title : null,
    event,
    method,
    config: structuredClone(config),
    eventConfig: structuredClone(b.eventConfig as Record<string, unknown>),
    numberOfFailures: 0,
  };
  notificationHub(ctx.state).of(repo).push(record);
  return jsonResponse(view(record), 201);
}

function findNotification(
  ctx: Ctx,
): { repo?: RepositoryRecord; n?: NotificationRecord; ns: string; name: string } {
  const { ns, name } = requireRepoAdmin(ctx);
  const repo = ctx.state.getRepository(ns, name);
  const uuid = ctx.params.uuid ?? "";
  const n = repo ? notificationHub(ctx.state).of(repo).find((x) => x.uuid === uuid) : undefined;
  return { repo, n, ns, name };
}

function getNotification(ctx: Ctx): Response {
  const { n } = findNotification(ctx);
  if (!n) throw notFound();
  return jsonResponse(view(n));
}

function deleteNotification(ctx: Ctx): Response {
  const { repo, n, ns, name } = findNotification(ctx);
  if (!repo || !n) throw noneFound(ns, name, ctx.params.uuid ?? "");
  const list = notificationHub(ctx.state).of(repo);
  list.splice(list.indexOf(n), 1);
  return emptyResponse(204);
}

function resetFailures(ctx: Ctx): Response {
  const { n, ns, name } = findNotification(ctx);
  if (!n) throw noneFound(ns, name, ctx.params.uuid ?? "");
  n.numberOfFailures = 0;
  return emptyResponse(204);
}

function testNotification(ctx: Ctx): Response {
  const { repo, n, ns, name } = findNotification(ctx);
  if (!repo || !n) throw noneFound(ns, name, ctx.params.uuid ?? "");
  notificationHub(ctx.state).queueTest(repo, n, ctx.host);
  return jsonResponse({});
}

/** The notification routes, in Quay's paths. */
export function notificationRoutes(): RouteDef<ApiHandler>[] {
  const base = "/api/v1/repository/{org}/{repo}/notification";
  return [
    { method: "GET", template: `${base}/`, handler: listNotifications },
    { method: "POST", template: `${base}/`, handler: createNotification },
    { method: "GET", template: `${base}/{uuid}`, handler: getNotification },
    { method: "DELETE", template: `${base}/{uuid}`, handler: deleteNotification },
    { method: "POST", template: `${base}/{uuid}`, handler: resetFailures },
    { method: "POST", template: `${base}/{uuid}/test`, handler: testNotification },
  ];
}
