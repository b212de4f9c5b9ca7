/**
 * @module
 * The audit log call of the Quay client (used by `src/controller/quay_audit.ts`): one page of the
 * registry's log, over one {@linkcode QuayExchange}.
 */
import type { QuayExchange } from "./exchange.ts";

const enc = encodeURIComponent;

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

/**
 * `GET /superuser/logs`: one page of the audit log of the whole registry, newest first (20 entries
 * a page). `starttime`/`endtime` are UTC days (`MM/DD/YYYY`, both inclusive); `nextPage` is the
 * opaque `next_page` of the previous page. Only a super-user's token may read it (403 otherwise).
 */
export async function listSuperuserLogs(
  http: QuayExchange,
  options: { startDay: string; endDay: string; nextPage?: string | undefined },
): Promise<QuayLogPage> {
  const query = `starttime=${enc(options.startDay)}&endtime=${enc(options.endDay)}` +
    (options.nextPage ? `&next_page=${enc(options.nextPage)}` : "");
  const r = await http.call({
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

/** How many entries of one kind Quay logged on one day. */
export interface QuayLogCount {
  readonly kind: string;
  readonly count: number;
  /**
   * RFC 2822: midnight of the entry's UTC day in the Quay server's time zone, printed in UTC (so a
   * server east of UTC prints the evening before).
   */
  readonly datetime: string;
}

/** The counts of the audit log, per kind and day. */
export interface QuayLogCounts {
  readonly counts: readonly QuayLogCount[];
  /** Quay's log search is not configured (`search_unavailable`). */
  readonly unavailable: boolean;
}

/**
 * `GET /superuser/aggregatelogs`: how many entries of each kind the whole registry logged on each
 * UTC day from `startDay` to `endDay` (both inclusive, `MM/DD/YYYY`; at most a month apart, or
 * Quay fails). One call, however many entries: Quay counts them in its database. Only a
 * super-user's token may read it (403 otherwise).
 */
export async function aggregateSuperuserLogs(
  http: QuayExchange,
  options: { startDay: string; endDay: string },
): Promise<QuayLogCounts> {
  const r = await http.call({
    method: "GET",
    path: `/api/v1/superuser/aggregatelogs?starttime=${enc(options.startDay)}&endtime=${enc(options.endDay)}`,
    route: "GET /api/v1/superuser/aggregatelogs",
  });
  const body = (r.body ?? {}) as { aggregated?: unknown; search_unavailable?: boolean };
  const counts: QuayLogCount[] = [];
  for (const item of Array.isArray(body.aggregated) ? body.aggregated : []) {
    const c = item as { kind?: unknown; count?: unknown; datetime?: unknown };
    if (typeof c.kind === "string" && typeof c.count === "number" && typeof c.datetime === "string") {
      counts.push({ kind: c.kind, count: c.count, datetime: c.datetime });
    }
  }
  return { counts, unavailable: body.search_unavailable === true };
}
