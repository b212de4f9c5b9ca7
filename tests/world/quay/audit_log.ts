/**
 * @module
 * The audit log of the test world's Quay, as `data/logs_model` keeps it and `endpoints/api/logs.py`
 * and `superuser.py` list it: every successful API change is recorded with Quay's kind
 * (`LogEntryKind` of `initdb.py`), and `GET /api/v1/superuser/logs` and
 * `GET /api/v1/organization/{org}/logs` list the entries newest first, 20 a page, between UTC days
 * (`starttime`/`endtime` as `MM/DD/YYYY`, the end day inclusive), with an opaque `next_page`.
 *
 * As on the real server (checked against Quay 3.x): an entry's `namespace` appears in the
 * super-user listing while its organization exists (Quay renames a deleted organization to a random
 * name until it is collected and lists its entries under that name; here it is collected at once,
 * so they have none); `metadata.namespace` keeps the name for `org_delete`, `delete_repo`,
 * `create_repo` and `org_create`;
 * the organization listing has no `namespace`; only a super-user may read the super-user log (403).
 *
 * `GET /api/v1/superuser/aggregatelogs` counts the entries per kind and UTC day over the same range
 * (`SuperUserAggregateLogs`, `get_aggregated_log_counts`: `{"aggregated": [{kind, count,
 * datetime}]}`, the datetime midnight of the day — this world's zone is UTC), super-users only
 * (403), at most a month (Quay fails longer ranges). The registry logs `push_repo` for a manifest
 * put by tag and `pull_repo` for a manifest read (`endpoints/v2/manifest.py`, `util/audit.py`:
 * metadata `repo`, `namespace` and `tag` or `manifest_digest`).
 */
import { formatQuayDate, jsonResponse, notFound, requiresAuthentication, unauthorized } from "./http_util.ts";
import type { ApiContext, ApiHandler } from "./api.ts";
import type { RouteDef } from "./router.ts";
import { ANONYMOUS, type Identity, type QuayState } from "./state.ts";

interface Entry {
  readonly id: number;
  readonly kind: string;
  /** ms since epoch, whole seconds as Quay stores them. */
  readonly at: number;
  readonly org: string;
  readonly metadata: Record<string, unknown>;
  readonly performer: string;
}

const PAGE = 20;

/** Which change a successful API call made, by route. */
const KINDS: Record<string, string> = {
  "POST /api/v1/organization/": "org_create",
  "DELETE /api/v1/organization/{org}": "org_delete",
  "PUT /api/v1/organization/{org}/robots/{robot}": "create_robot",
  "DELETE /api/v1/organization/{org}/robots/{robot}": "delete_robot",
  "POST /api/v1/organization/{org}/robots/{robot}/regenerate": "regenerate_robot_token",
  "POST /api/v1/organization/{org}/prototypes": "create_prototype_permission",
  "PUT /api/v1/organization/{org}/prototypes/{id}": "modify_prototype_permission",
  "DELETE /api/v1/organization/{org}/prototypes/{id}": "delete_prototype_permission",
  "POST /api/v1/repository": "create_repo",
  "DELETE /api/v1/repository/{org}/{repo}": "delete_repo",
  "PUT /api/v1/repository/{org}/{repo}/permissions/user/{user}": "change_repo_permission",
};

/** Routes whose organization is in the request body. */
export const AUDITED_BODY_ROUTES: ReadonlySet<string> = new Set([
  "POST /api/v1/organization/",
  "POST /api/v1/repository",
]);

function parseDay(value: string | null): number | undefined {
  const m = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(value ?? "");
  if (!m) return undefined;
  return Date.UTC(Number(m[3]), Number(m[1]) - 1, Number(m[2]));
}

/** The audit log: recorded by the front of the world, listed by two API routes. */
export class AuditLog {
  readonly #entries: Entry[] = [];
  #next = 1;

  /** Records what a successful call changed (`route` is `"METHOD template"`). */
  record(
    route: string,
    params: Record<string, string>,
    body: Record<string, unknown> | undefined,
    identity: Identity,
    status: number,
  ): void {
    const kind = KINDS[route];
    if (!kind || status < 200 || status >= 300) return;
    let org = params.org ?? "";
    const metadata: Record<string, unknown> = {};
    if (kind === "org_create") {
      org = String(body?.name ?? "");
      metadata.namespace = org;
    } else if (kind === "org_delete") {
      metadata.namespace = org;
    } else if (kind === "create_repo") {
      org = String(body?.namespace ?? "");
      metadata.repo = String(body?.repository ?? "");
      metadata.namespace = org;
    } else if (kind === "delete_repo") {
      metadata.repo = params.repo;
      metadata.namespace = org;
    } else if (kind.includes("robot")) {
      metadata.robot = params.robot;
    } else if (kind.includes("prototype")) {
      if (params.id) metadata.prototypeid = params.id;
    } else {
      metadata.repo = params.repo;
      metadata.username = params.user;
    }
    if (org === "") return;
    this.#entries.push({
      id: this.#next++,
      kind,
      at: Math.floor(Date.now() / 1000) * 1000,
      org,
      metadata,
      performer: identity.name,
    });
  }

  /**
   * Records what a successful registry call did: `push_repo` for a manifest put by tag,
   * `pull_repo` for a manifest read (GET or HEAD, which Flask serves by the GET view).
   */
  recordRegistry(route: string, params: Record<string, string>, status: number): void {
    if (status < 200 || status >= 300) return;
    const name = params.name ?? "";
    const slash = name.indexOf("/");
    if (slash <= 0) return;
    const org = name.slice(0, slash);
    const reference = params.reference ?? "";
    const byDigest = reference.startsWith("sha256:");
    const metadata: Record<string, unknown> = { repo: name.slice(slash + 1), namespace: org };
    let kind: string;
    if (route === "PUT /v2/{name}/manifests/{reference}") {
      if (byDigest) return;
      kind = "push_repo";
      metadata.tag = reference;
    } else if (
      route === "GET /v2/{name}/manifests/{reference}" || route === "HEAD /v2/{name}/manifests/{reference}"
    ) {
      kind = "pull_repo";
      if (byDigest) metadata.manifest_digest = reference;
      else metadata.tag = reference;
    } else return;
    this.#entries.push({
      id: this.#next++,
      kind,
      at: Math.floor(Date.now() / 1000) * 1000,
      org,
      metadata,
      performer: "registry",
    });
  }

  /** The listing routes and the counts. */
  routes(): RouteDef<ApiHandler>[] {
    return [
      { method: "GET", template: "/api/v1/superuser/aggregatelogs", handler: (ctx) => this.#aggregate(ctx) },
      { method: "GET", template: "/api/v1/superuser/logs", handler: (ctx) => this.#list(ctx, undefined) },
      {
        method: "GET",
        template: "/api/v1/organization/{org}/logs",
        handler: (ctx) => this.#list(ctx, ctx.params.org ?? ""),
      },
    ];
  }

  #range(ctx: ApiContext): { start: number; end: number } {
    const q = ctx.url.searchParams;
    const start = parseDay(q.get("starttime")) ?? Date.now() - 86_400_000;
    const end = (parseDay(q.get("endtime")) ?? Date.UTC(
      new Date().getUTCFullYear(),
      new Date().getUTCMonth(),
      new Date().getUTCDate(),
    )) + 86_400_000;
    return { start, end };
  }

  #aggregate(ctx: ApiContext): Response {
    // `require_fresh_login`, then `allow_if_any_superuser`: Quay's `Unauthorized()`, 401 for no user.
    if (ctx.identity === ANONYMOUS) throw requiresAuthentication();
    if (!ctx.state.isSuperuser(ctx.identity)) throw unauthorized();
    const { start, end } = this.#range(ctx);
    // Quay's InvalidLogsDateRangeError is not caught by the endpoint: a 500.
    if (end - start > 31 * 86_400_000) return jsonResponse({ message: "Internal Server Error" }, 500);
    const counts = new Map<string, { kind: string; day: number; count: number }>();
    for (const e of this.#entries) {
      if (e.at < start || e.at >= end) continue;
      const day = Math.floor(e.at / 86_400_000) * 86_400_000;
      const key = `${e.kind}|${day}`;
      const known = counts.get(key);
      if (known) known.count++;
      else counts.set(key, { kind: e.kind, day, count: 1 });
    }
    return jsonResponse({
      aggregated: [...counts.values()].map((c) => ({
        kind: c.kind,
        count: c.count,
        datetime: formatQuayDate(new Date(c.day)),
      })),
    });
  }

  #list(ctx: ApiContext, org: string | undefined): Response {
    const state: QuayState = ctx.state;
    if (org === undefined) {
      if (ctx.identity === ANONYMOUS) throw requiresAuthentication();
      if (!state.isSuperuser(ctx.identity)) throw unauthorized();
    } else {
      if (!state.orgs.has(org)) throw notFound();
      if (!state.isOrgAdmin(ctx.identity, org) && !state.isSuperuser(ctx.identity)) throw unauthorized();
    }
    const q = ctx.url.searchParams;
    const { start, end } = this.#range(ctx);
    let offset = 0;
    const token = q.get("next_page");
    if (token) {
      try {
        offset = Number(JSON.parse(atob(token)).offset) || 0;
      } catch {
        offset = 0;
      }
    }
    const matching = this.#entries
      .filter((e) => e.at >= start && e.at < end && (org === undefined || e.org === org))
      .sort((a, b) => b.at - a.at || b.id - a.id);
    const page = matching.slice(offset, offset + PAGE);
    const body: Record<string, unknown> = {
      start_time: formatQuayDate(new Date(start)),
      end_time: formatQuayDate(new Date(end)),
      logs: page.map((e) => {
        const view: Record<string, unknown> = {
          kind: e.kind,
          metadata: e.metadata,
          ip: "127.0.0.1",
          datetime: formatQuayDate(new Date(e.at)),
          performer: { kind: "user", name: e.performer, is_robot: false },
        };
        if (org === undefined && state.orgs.has(e.org)) view.namespace = { kind: "org", name: e.org };
        return view;
      }),
    };
    if (offset + PAGE < matching.length) body.next_page = btoa(JSON.stringify({ offset: offset + PAGE }));
    return jsonResponse(body);
  }
}
