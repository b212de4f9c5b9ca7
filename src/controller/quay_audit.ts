/**
 * @module
 * Follows Quay's audit log so drift made by hand in Quay is repaired within a poll interval without
 * re-reading every organization: each QuayIntegration's super-user log (`GET /superuser/logs`,
 * newest first, 20 entries a page) is read every `--audit-interval` from a cursor, and the
 * organizations named by entries that can break a namespace's sync (a robot, repository, default
 * permission or the organization deleted, a robot token regenerated, a prototype's role changed)
 * are handed to the operator, which marks their mirrors stale and requeues their namespaces.
 *
 * Nothing changed costs one call per integration per interval: Quay's counts per kind and day
 * (`GET /superuser/aggregatelogs`, `audit_counts.ts`) show whether any entry of a counted kind
 * (drift, and `push_repo`) was logged since the last poll, and pages are read only until the new
 * ones are found — not through the operator's own creations or every image pull. A Quay without the
 * counts (403, 404, search not configured) is paged to the cursor as before, and the log says so
 * once. Tags pushed to managed repositories (`push_repo`) are handed over to be imported into their
 * ImageStreams, so a push made anywhere arrives within a poll interval even without notifications.
 *
 * The cursor (the time of the newest entry read, with the counts) is kept in a Secret in the
 * operator's namespace (`audit_cursor_store.ts`), so a restarted operator reads only what happened while it was away — and may
 * then trust what the cluster shows instead of re-reading every organization
 * (`namespace_controller.ts`). A token without super-user rights (403), or a Quay whose log search is
 * not configured, cannot be followed: that integration falls back to the plain resync (`--resync`),
 * and its status and log say so.
 */
import { messageOf, QuayApiError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { QuayClient, QuayLogEntry } from "../quay/client.ts";
import { sleepUnlessAborted } from "../sleep.ts";
import {
  countRange,
  type CountSnapshot,
  DAY_MS,
  foundEnough,
  growth,
  keepSnapshot,
  surplusAfter,
  tally,
} from "./audit_counts.ts";

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

/** The kinds whose counts a poll compares: drift, and pushes (imported into their ImageStreams). */
export const COUNTED_KINDS: ReadonlySet<string> = new Set([...DRIFT_KINDS, "push_repo"]);

/** Where the log was read up to: the time of its newest entry and the entries of that second. */
export interface AuditCursor {
  /** Quay's time of the newest entry read (ms since epoch, whole seconds). */
  readonly at: number;
  /** Fingerprints of the entries read at `at`, which a later page shows again. */
  readonly seen: readonly string[];
  /**
   * Quay's counts of {@linkcode COUNTED_KINDS} when the log was last known handled up to them
   * (`audit_counts.ts`); absent when the aggregate endpoint is not used.
   */
  readonly counts?: CountSnapshot;
  /**
   * This operator's time of the last poll that covered everything counted (ms): the cursor's age
   * for trusting it after a restart, since `at` stays put while nothing counted is logged.
   */
  readonly checkedAt?: number;
}

/** A tag pushed to a repository, from a `push_repo` entry. */
export interface AuditPush {
  readonly organization: string;
  readonly repository: string;
  readonly tag: string;
}

/** What one poll found. */
export interface AuditScan {
  /** Organizations to re-read. */
  readonly organizations: ReadonlySet<string>;
  /** Tags pushed, newest first, each once. */
  readonly pushes: readonly AuditPush[];
  readonly cursor: AuditCursor;
  /** False when the page budget ran out before the cursor was reached (a gap: re-read everything). */
  readonly complete: boolean;
  /** Pages read. */
  readonly pages: number;
  /** Quay calls made (pages and counts). */
  readonly calls: number;
  /** Why the counts were not used, when the aggregate endpoint failed or is not served. */
  readonly countsUnavailable?: string;
}

/** The Quay calls a poll makes; without `aggregateSuperuserLogs` every poll pages to the cursor. */
export type AuditPort =
  & Pick<QuayClient, "listSuperuserLogs">
  & Partial<Pick<QuayClient, "aggregateSuperuserLogs">>;

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

/** The tag a `push_repo` entry pushed (Quay's v2 registry logs `repo`, `namespace`, `tag`). */
export function pushOf(entry: QuayLogEntry): AuditPush | undefined {
  if (entry.kind !== "push_repo") return undefined;
  const organization = organizationOf(entry);
  const repository = entry.metadata?.repo;
  const tag = entry.metadata?.tag;
  if (!organization || typeof repository !== "string" || typeof tag !== "string") return undefined;
  if (repository === "" || tag === "") return undefined;
  return { organization, repository, tag };
}

/** `MM/DD/YYYY` of a UTC day, as Quay's log endpoints take them. */
export function quayDay(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(d.getUTCMonth() + 1)}/${two(d.getUTCDate())}/${d.getUTCFullYear()}`;
}

/** Why the counts cannot be used, or undefined when the error is a passing one (try again next round). */
function countsRefusal(error: unknown): string | undefined {
  if (!(error instanceof QuayApiError)) return undefined;
  // Unreachable, a rejected token, throttled or overloaded: the whole poll waits for the next round.
  if (error.status === 0 || error.status === 401 || error.status === 429 || error.status === 503) {
    return undefined;
  }
  return messageOf(error);
}

/**
 * Reads the log from `cursor` up to now, newest first, page by page until an entry older than the
 * cursor (at most `maxPages`). Without a cursor only the first page is read: it sets the cursor.
 *
 * With the counts (`options.counts`, default on when the port has them), Quay's counts of
 * {@linkcode COUNTED_KINDS} come first: when none grew since the cursor's, no page is read; when
 * they grew by d, pages are read only until d new counted entries are found (`audit_counts.ts`).
 */
export async function pollAuditLog(
  port: AuditPort,
  cursor: AuditCursor | undefined,
  options: { readonly now: number; readonly maxPages?: number; readonly counts?: boolean },
): Promise<AuditScan> {
  // 20 entries a page: 20,000 entries, what a burst of about 2,000 new projects logs.
  const maxPages = options.maxPages ?? 1_000;
  const organizations = new Set<string>();
  const pushes = new Map<string, AuditPush>();
  const seen = new Set(cursor?.seen ?? []);
  let newest: { at: number; seen: string[] } | undefined;
  let nextPage: string | undefined;
  let pages = 0;
  let calls = 0;
  let reached = false;

  // Counts first: how many counted entries are new (Infinity: unknown, read to the cursor).
  const aggregate = options.counts === false ? undefined : port.aggregateSuperuserLogs?.bind(port);
  let wanted = Infinity;
  let countsUnavailable: string | undefined;
  const range = countRange(cursor?.counts, options.now);
  const readCounts = async (): Promise<CountSnapshot | undefined> => {
    if (!aggregate) return undefined;
    calls++;
    try {
      const answer = await aggregate({ startDay: quayDay(range.from), endDay: quayDay(range.to) });
      if (answer.unavailable) {
        countsUnavailable = "Quay's log search is not configured";
        return undefined;
      }
      return tally(answer.counts, range, COUNTED_KINDS);
    } catch (error) {
      countsUnavailable = countsRefusal(error);
      if (countsUnavailable === undefined) throw error;
      return undefined;
    }
  };
  const snapshot = await readCounts();
  if (snapshot && cursor && range.comparable) wanted = growth(cursor.counts, snapshot);
  if (cursor && wanted === 0 && snapshot) {
    return {
      organizations,
      pushes: [],
      cursor: { ...cursor, counts: keepSnapshot(snapshot, options.now, 0), checkedAt: options.now },
      complete: true,
      pages,
      calls,
    };
  }

  let found = 0;
  let after = 0;
  let enough = false;
  // With a known number wanted, older days cannot hold new counted entries (they predate the
  // previous counts); otherwise the day of the cursor (a day earlier without one) to tomorrow:
  // Quay's days are UTC, its clock may differ.
  const startDay = cursor && Number.isFinite(wanted)
    ? quayDay(Math.max(cursor.at, range.from))
    : quayDay((cursor?.at ?? options.now) - (cursor ? 0 : DAY_MS));
  const endDay = quayDay(options.now + DAY_MS);
  do {
    const page = await port.listSuperuserLogs({ startDay, endDay, nextPage });
    pages++;
    calls++;
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
      if (COUNTED_KINDS.has(entry.kind)) found++;
      const organization = organizationOf(entry);
      if (organization && DRIFT_KINDS.has(entry.kind)) organizations.add(organization);
      const push = pushOf(entry);
      const pushKey = push && `${push.organization}/${push.repository}:${push.tag}`;
      if (push && pushKey && !pushes.has(pushKey)) pushes.set(pushKey, push);
    }
    nextPage = page.nextPage;
    if (!cursor) reached = true;
    if (!reached && nextPage && snapshot && foundEnough(found, wanted, after)) {
      // Found as many as counted, but some may be newer than the counts: ask again how many were
      // logged since, and stop only if the rest still covers what was wanted.
      const again = await readCounts();
      after = again ? growth(snapshot, again) : Infinity;
      enough = foundEnough(found, wanted, after);
    }
  } while (!reached && !enough && nextPage && pages < maxPages);
  const complete = reached || enough || !nextPage;
  let next: AuditCursor = newest ?? cursor ?? { at: options.now - 60_000, seen: [] };
  // Entries of the cursor's own second keep their fingerprints when no newer entry came.
  if (cursor && next.at === cursor.at) {
    next = { at: cursor.at, seen: [...new Set([...cursor.seen, ...next.seen])] };
  }
  next = snapshot
    ? {
      ...next,
      counts: keepSnapshot(snapshot, options.now, complete ? surplusAfter(found, wanted) : 0),
      checkedAt: options.now,
    }
    : { at: next.at, seen: next.seen, checkedAt: options.now };
  return {
    organizations,
    pushes: [...pushes.values()],
    cursor: next,
    complete,
    pages,
    calls,
    ...(countsUnavailable ? { countsUnavailable } : {}),
  };
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
  /** Tags pushed to Quay, named by new `push_repo` entries, per integration (newest first). */
  readonly onPush?: (key: string, pushes: readonly AuditPush[]) => void;
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
  /** Until when an integration's counts are not asked for (the aggregate endpoint refused). */
  readonly #countsOff = new Map<string, number>();
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
          if (stored && now - (stored.checkedAt ?? stored.at) < this.#o.trustMs) {
            cursor = stored;
            trusted = true;
          }
        }
        try {
          const counts = (this.#countsOff.get(key) ?? 0) <= now;
          const scan = await pollAuditLog(client, cursor, { now, counts });
          if (scan.countsUnavailable && counts && client.aggregateSuperuserLogs) {
            // Asked again in an hour: a Quay upgraded or reconfigured meanwhile is used.
            if (!this.#countsOff.has(key)) {
              this.#o.logger.warn(
                "quay audit log counts unavailable: every poll pages through the log to its cursor",
                { integration: key, error: scan.countsUnavailable },
              );
            }
            this.#countsOff.set(key, now + 3_600_000);
          }
          if (!scan.complete) this.#o.onDrift(key, "all");
          else if (scan.organizations.size > 0) this.#o.onDrift(key, scan.organizations);
          if (scan.organizations.size > 0 || !scan.complete) {
            this.#o.logger.info("quay audit log: re-reading organizations changed in Quay", {
              integration: key,
              organizations: scan.complete ? [...scan.organizations].slice(0, 20) : "all",
            });
          }
          if (scan.pushes.length > 0) this.#o.onPush?.(key, scan.pushes);
          if (this.#changed(key, cursor, scan.cursor, now)) this.#dirty = true;
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

  /**
   * Whether the stored cursor should be written: it moved, or the counts changed, or the stored one
   * is half-way to untrusted (its `checkedAt` is refreshed without a write on every idle poll).
   */
  #changed(key: string, before: AuditCursor | undefined, after: AuditCursor, now: number): boolean {
    if (before === undefined || before.at !== after.at) return true;
    if (countsText(before.counts) !== countsText(after.counts)) return true;
    const stored = this.#stored?.get(key);
    return stored === undefined || now - (stored.checkedAt ?? stored.at) > this.#o.trustMs / 2;
  }

  #set(key: string, state: AuditState): void {
    const before = this.#states.get(key);
    this.#states.set(key, state);
    if (before?.kind !== state.kind) this.#o.onState?.(key, state);
  }
}

/** A snapshot as text that does not depend on the order Quay listed the counts in. */
function countsText(counts: CountSnapshot | undefined): string {
  if (!counts) return "";
  const sorted = Object.entries(counts.counts).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  return JSON.stringify([counts.from, counts.to, counts.surplus, sorted]);
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
