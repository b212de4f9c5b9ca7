/**
 * @module
 * Follows Quay's audit log so drift made by hand in Quay is repaired within a poll interval without
 * re-reading every organization: each QuayIntegration's super-user log (`GET /superuser/logs`,
 * newest first, 20 entries a page) is read every `--audit-interval` from a cursor, and the
 * organizations named by entries that can break a namespace's sync (a robot, repository, default
 * permission or the organization deleted, a robot token regenerated, a prototype's role changed)
 * are handed to the operator, which marks their mirrors stale and requeues their namespaces.
 *
 * Nothing changed costs one call per integration per interval. The cursor (the time of the newest
 * entry read) is kept in a Secret in the operator's namespace, so a restarted operator reads only
 * what happened while it was away — and may then trust what the cluster shows instead of re-reading
 * every organization (`namespace_controller.ts`). A token without super-user rights (403), or a
 * Quay whose log search is not configured, cannot be followed: that integration falls back to the
 * plain resync (`--resync`), and its status and log say so.
 */
import { KubeApiError, messageOf, QuayApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { type KubeObject, SECRETS } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import type { QuayClient, QuayLogEntry } from "../quay/client.ts";
import { sleepUnlessAborted } from "../sleep.ts";

/**
 * Log kinds (`LogEntryKind` in Quay's `initdb.py`) after which an organization's mirror may be
 * wrong. Creations are not among them: whatever someone else creates cannot break a sync.
 */
export const DRIFT_KINDS: ReadonlySet<string> = new Set([
  "org_delete",
  "org_change_name",
  "delete_robot",
  "regenerate_robot_token",
  "delete_repo",
  "delete_prototype_permission",
  "modify_prototype_permission",
]);

/** Where the log was read up to: the time of its newest entry and the entries of that second. */
export interface AuditCursor {
  /** Quay's time of the newest entry read (ms since epoch, whole seconds). */
  readonly at: number;
  /** Fingerprints of the entries read at `at`, which a later page shows again. */
  readonly seen: readonly string[];
}

/** What one poll found. */
export interface AuditScan {
  /** Organizations to re-read. */
  readonly organizations: ReadonlySet<string>;
  readonly cursor: AuditCursor;
  /** False when the page budget ran out before the cursor was reached (a gap: re-read everything). */
  readonly complete: boolean;
  /** Pages read (Quay calls). */
  readonly pages: number;
}

/** The Quay call a poll makes. */
export type AuditPort = Pick<QuayClient, "listSuperuserLogs">;

function fingerprint(entry: QuayLogEntry): string {
  return `${entry.kind}|${entry.datetime}|${entry.namespace?.name ?? ""}|${
    JSON.stringify(entry.metadata ?? {})
  }`;
}

/**
 * The organization an entry is about. The name in its metadata comes first: Quay renames an
 * organization it deletes (to a random name, until it is collected) and lists its entries under
 * that name; a renamed organization's entry names the old one in `old_name`.
 */
export function organizationOf(entry: QuayLogEntry): string | undefined {
  for (const field of ["old_name", "namespace"]) {
    const named = entry.metadata?.[field];
    if (typeof named === "string" && named !== "") return named;
  }
  return entry.namespace?.name || undefined;
}

/** `MM/DD/YYYY` of a UTC day, as Quay's log endpoints take them. */
export function quayDay(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(d.getUTCMonth() + 1)}/${two(d.getUTCDate())}/${d.getUTCFullYear()}`;
}

const DAY_MS = 86_400_000;

/**
 * Reads the log from `cursor` up to now, newest first, page by page until an entry older than the
 * cursor (at most `maxPages`). Without a cursor only the first page is read: it sets the cursor.
 */
export async function pollAuditLog(
  port: AuditPort,
  cursor: AuditCursor | undefined,
  options: { readonly now: number; readonly maxPages?: number },
): Promise<AuditScan> {
  // 20 entries a page: 20,000 entries, what a burst of about 2,000 new projects logs.
  const maxPages = options.maxPages ?? 1_000;
  const organizations = new Set<string>();
  const seen = new Set(cursor?.seen ?? []);
  let newest: { at: number; seen: string[] } | undefined;
  let nextPage: string | undefined;
  let pages = 0;
  let reached = false;
  // The day of the cursor (a day earlier without one) to tomorrow: Quay's days are UTC, its clock may differ.
  const startDay = quayDay((cursor?.at ?? options.now) - (cursor ? 0 : DAY_MS));
  const endDay = quayDay(options.now + DAY_MS);
  do {
    const page = await port.listSuperuserLogs({ startDay, endDay, nextPage });
    pages++;
    if (page.unavailable) throw new AuditUnavailableError("Quay's log search is not configured");
    for (const entry of page.logs) {
      const at = Date.parse(entry.datetime);
      if (Number.isNaN(at)) continue;
      const print = fingerprint(entry);
      if (!newest || at > newest.at) newest = { at, seen: [print] };
      else if (at === newest.at) newest.seen.push(print);
      if (!cursor) continue;
      if (at < cursor.at) {
        reached = true;
        break;
      }
      if (at === cursor.at && seen.has(print)) {
        // Read last time; what follows it (same second, lower id) was read then too.
        reached = true;
        break;
      }
      const organization = organizationOf(entry);
      if (organization && DRIFT_KINDS.has(entry.kind)) organizations.add(organization);
    }
    nextPage = page.nextPage;
    if (!cursor) reached = true;
  } while (!reached && nextPage && pages < maxPages);
  const complete = reached || !nextPage;
  let next: AuditCursor = newest ?? cursor ?? { at: options.now - 60_000, seen: [] };
  // Entries of the cursor's own second keep their fingerprints when no newer entry came.
  if (cursor && next.at === cursor.at) {
    next = { at: cursor.at, seen: [...new Set([...cursor.seen, ...next.seen])] };
  }
  return { organizations, cursor: next, complete, pages };
}

/** The audit log cannot be read with this integration's token or on this Quay. */
export class AuditUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditUnavailableError";
  }
}

/** How an integration's audit log is followed. */
export type AuditState =
  /** Read up to a cursor; `trusted` once the read covered everything since the stored cursor. */
  | { readonly kind: "following"; readonly trusted: boolean; readonly cursor: AuditCursor }
  /** Cannot be read (403, search not configured): the plain resync applies. */
  | { readonly kind: "unavailable"; readonly reason: string }
  /** Not read yet. */
  | { readonly kind: "pending" };

/** Keeps the cursors across restarts. */
export interface CursorStore {
  load(): Promise<Map<string, AuditCursor>>;
  save(cursors: ReadonlyMap<string, AuditCursor>): Promise<void>;
}

/** Options of {@linkcode QuayAudit}. */
export interface QuayAuditOptions {
  /** The integrations to follow, with their Quay clients (valid integrations only). */
  readonly integrations: () => readonly { readonly key: string; readonly client: AuditPort }[];
  /** Organizations named by new entries, per integration; `"all"` after a gap. */
  readonly onDrift: (key: string, organizations: ReadonlySet<string> | "all") => void;
  /** Told whenever an integration's state changes. */
  readonly onState?: (key: string, state: AuditState) => void;
  readonly store: CursorStore | undefined;
  /** True while drift of the integration is yet to be repaired: its cursor is not stored meanwhile. */
  readonly pending?: (key: string) => boolean;
  readonly logger: Logger;
  readonly intervalMs: number;
  /** A stored cursor older than this is not trusted (the resync of a followed integration). */
  readonly trustMs: number;
  /** Store the cursors at most this often. @default 60_000 */
  readonly saveEveryMs?: number;
  readonly now: () => number;
}

/** Follows the audit logs of the valid integrations while this replica leads. */
export class QuayAudit {
  readonly #o: QuayAuditOptions;
  readonly #states = new Map<string, AuditState>();
  #stored: Map<string, AuditCursor> | undefined;
  #savedAt = 0;
  #dirty = false;

  constructor(options: QuayAuditOptions) {
    this.#o = options;
  }

  /** The state of an integration's audit log. */
  state(key: string): AuditState {
    return this.#states.get(key) ?? { kind: "pending" };
  }

  /** One round over every integration: read what is new, hand over the drift, store the cursors. */
  async poll(): Promise<void> {
    if (!this.#stored) {
      try {
        this.#stored = await this.#o.store?.load() ?? new Map();
      } catch (error) {
        this.#o.logger.warn("audit cursors not loaded; every organization is read once", {
          error: messageOf(error),
        });
        this.#stored = new Map();
      }
    }
    const now = this.#o.now();
    await Promise.all(
      this.#o.integrations().map(async ({ key, client }) => {
        const previous = this.#states.get(key);
        let cursor: AuditCursor | undefined;
        let trusted = false;
        if (previous?.kind === "following") {
          cursor = previous.cursor;
          trusted = previous.trusted;
        } else {
          const stored = this.#stored?.get(key);
          if (stored && now - stored.at < this.#o.trustMs) {
            cursor = stored;
            trusted = true;
          }
        }
        try {
          const scan = await pollAuditLog(client, cursor, { now });
          if (!scan.complete) this.#o.onDrift(key, "all");
          else if (scan.organizations.size > 0) this.#o.onDrift(key, scan.organizations);
          if (scan.organizations.size > 0 || !scan.complete) {
            this.#o.logger.info("quay audit log: re-reading organizations changed in Quay", {
              integration: key,
              organizations: scan.complete ? [...scan.organizations].slice(0, 20) : "all",
            });
          }
          if (cursor === undefined || scan.cursor.at !== cursor.at) this.#dirty = true;
          this.#set(key, { kind: "following", trusted: trusted && scan.complete, cursor: scan.cursor });
        } catch (error) {
          // 403: not a super-user's token; 404: super-users turned off (FEATURE_SUPER_USERS). A
          // rejected token (401) is the credentials' problem, reported there: try again next round.
          const denied = error instanceof QuayApiError && (error.status === 403 || error.status === 404);
          if (denied || error instanceof AuditUnavailableError) {
            if (previous?.kind !== "unavailable") {
              this.#o.logger.warn(
                "quay audit log unavailable: drift made in Quay is found by the plain resync only",
                { integration: key, error: messageOf(error) },
              );
            }
            this.#set(key, { kind: "unavailable", reason: messageOf(error) });
            return;
          }
          // Quay unreachable or the token rejected: keep the cursor, try again next round.
          this.#o.logger.debug("quay audit log not read", { integration: key, error: messageOf(error) });
        }
      }),
    );
    if (this.#dirty && now - this.#savedAt >= (this.#o.saveEveryMs ?? 60_000)) await this.save();
  }

  /** Stores the cursors now. */
  async save(): Promise<void> {
    if (!this.#o.store || !this.#dirty) return;
    const cursors = new Map(this.#stored ?? []);
    let held = false;
    for (const [key, state] of this.#states) {
      if (state.kind !== "following") continue;
      if (this.#o.pending?.(key)) held = true;
      else cursors.set(key, state.cursor);
    }
    try {
      await this.#o.store.save(cursors);
      this.#stored = cursors;
      this.#dirty = held;
      this.#savedAt = this.#o.now();
    } catch (error) {
      this.#o.logger.warn("audit cursors not stored", { error: messageOf(error) });
    }
  }

  /** Polls every interval until `signal` aborts, then stores the cursors. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleepUnlessAborted(this.#o.intervalMs, signal);
      if (signal.aborted) break;
      await this.poll();
    }
    await this.save();
  }

  #set(key: string, state: AuditState): void {
    const before = this.#states.get(key);
    this.#states.set(key, state);
    if (before?.kind !== state.kind) this.#o.onState?.(key, state);
  }
}

/** The name of the Secret the cursors are kept in (in the operator's namespace). */
export const AUDIT_CURSOR_SECRET = "quay-bridge-audit-cursor";

/**
 * Keeps the cursors in a Secret of the operator's namespace: the operator may already read and
 * write Secrets there (the webhook certificate), so following the log needs no further permission.
 */
export function secretCursorStore(kube: KubeClient, namespace: string): CursorStore {
  let resourceVersion: string | undefined;
  return {
    async load() {
      const secret = await kube.get(SECRETS, AUDIT_CURSOR_SECRET, { namespace });
      resourceVersion = secret?.metadata.resourceVersion;
      const raw = (secret?.data as Record<string, string> | undefined)?.cursors;
      const out = new Map<string, AuditCursor>();
      if (!raw) return out;
      const parsed = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(raw))) as Record<
        string,
        unknown
      >;
      for (const [key, value] of Object.entries(parsed)) {
        const v = value as { at?: unknown; seen?: unknown };
        if (typeof v.at === "number" && Array.isArray(v.seen)) {
          out.set(key, { at: v.at, seen: v.seen.filter((s): s is string => typeof s === "string") });
        }
      }
      return out;
    },
    async save(cursors) {
      const data = {
        cursors: new TextEncoder().encode(JSON.stringify(Object.fromEntries(cursors))).toBase64(),
      };
      const object: KubeObject = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name: AUDIT_CURSOR_SECRET,
          namespace,
          ...(resourceVersion ? { resourceVersion } : {}),
        },
        type: "Opaque",
        data,
      };
      try {
        const written = resourceVersion
          ? await kube.update(SECRETS, object)
          : await kube.create(SECRETS, object);
        resourceVersion = written.metadata.resourceVersion;
      } catch (error) {
        // Someone else wrote it (a previous leader): take its version and write again next time.
        if (error instanceof KubeApiError && (error.status === 409 || error.status === 404)) {
          resourceVersion = (await kube.get(SECRETS, AUDIT_CURSOR_SECRET, { namespace }))?.metadata
            .resourceVersion;
        }
        throw error;
      }
    },
  };
}

/**
 * After a gap in the audit log every mirror of an integration (keys starting with `prefix`) must be
 * read again, but not all at once: each falls due at a random point within `windowMs` (its
 * `observedAt` moved back so that it is `resyncMs` old then; a mirror already older keeps its age).
 * Returns when each is due, for the caller to requeue its namespace.
 */
export function spreadRereads(
  mirrors: ReadonlyMap<string, { observedAt: number }>,
  prefix: string,
  options: { now: number; windowMs: number; resyncMs: number; random: () => number },
): { mirror: string; delayMs: number }[] {
  const due: { mirror: string; delayMs: number }[] = [];
  for (const [mirror, known] of mirrors) {
    if (!mirror.startsWith(prefix)) continue;
    const delayMs = options.random() * options.windowMs;
    known.observedAt = Math.min(known.observedAt, options.now + delayMs - options.resyncMs);
    due.push({ mirror, delayMs });
  }
  return due;
}
