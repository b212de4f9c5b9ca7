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
 */
import { formatQuayDate, jsonResponse, notFound, unauthorized } from "./http_util.ts";
import type { ApiContext, ApiHandler } from "./api.ts";
import type { RouteDef } from "./router.ts";
import type { Identity, QuayState } from "./state.ts";

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

  /** The two listing routes. */
  routes(): RouteDef<ApiHandler>[] {
    return [
      { method: "GET", template: "/api/v1/superuser/logs", handler: (ctx) => this.#list(ctx, undefined) },
      {
        method: "GET",
        template: "/api/v1/organization/{org}/logs",
        handler: (ctx) => this.#list(ctx, ctx.params.org ?? ""),
      },
    ];
  }

  #list(ctx: ApiContext, org: string | undefined): Response {
    const state: QuayState = ctx.state;
    if (org === undefined) {
      if (!state.isSuperuser(ctx.identity)) throw unauthorized();
    } else {
      if (!state.orgs.has(org)) throw notFound();
      if (!state.isOrgAdmin(ctx.identity, org) && !state.isSuperuser(ctx.identity)) throw unauthorized();
    }
    const q = ctx.url.searchParams;
    const start = parseDay(q.get("starttime")) ?? Date.now() - 86_400_000;
    const end = (parseDay(q.get("endtime")) ?? Date.UTC(
      new Date().getUTCFullYear(),
      new Date().getUTCMonth(),
      new Date().getUTCDate(),
    )) + 86_400_000;
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
