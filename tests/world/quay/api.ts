/**
 * @module
 * The REST API (`/api/v1`) of the test world's Quay: user, organizations, robots, default
 * permissions, repositories, repository user permissions and tags, as `endpoints/api/*.py` answers
 * them. Each handler checks in Quay's order (schema before permission where Quay's decorators
 * validate first), so status codes and bodies match the real server for the same request.
 *
 * A missing or refused token is an anonymous caller ({@linkcode ANONYMOUS}), as on Quay: it reads
 * public data and the public view of an organization, gets 401 where a user is required, and its
 * writes never reach a handler (the CSRF check, see `mod.ts`). Writes into a missing organization
 * or repository fail with Flask's HTML 500 page, as Quay's do. `tests/realquay/parity_test.ts`
 * holds these answers to a real Quay.
 *
 * Deliberate difference: listing repositories requires `repo:read` (Quay only filters by permission).
 */
import {
  ApiProblem,
  DataModelError,
  emptyResponse,
  flaskServerError,
  formatQuayDate,
  invalidRequest,
  jsonResponse,
  notFound,
  requiresAuthentication,
  unauthorized,
} from "./http_util.ts";
import type { RouteDef } from "./router.ts";
import { type SchemaName, validateSchema } from "./schema.ts";
import {
  ANONYMOUS,
  type Identity,
  InvalidRobotError,
  type OrgRecord,
  type PrototypeRecord,
  type QuayState,
  randomString,
  REPOSITORY_NAME_REGEX,
  type RepositoryRecord,
  type RobotRecord,
  type Role,
} from "./state.ts";

/** What an API handler gets. */
export interface ApiContext {
  readonly req: Request;
  readonly url: URL;
  readonly params: Record<string, string>;
  /** The caller; {@linkcode ANONYMOUS} without an accepted token (reads only). */
  readonly identity: Identity;
  readonly state: QuayState;
  /** `host:port` of this Quay. */
  readonly host: string;
}

/** An API handler. */
export type ApiHandler = (ctx: ApiContext) => Response | Promise<Response>;

const MAX_API_BODY = 8 * 1024 * 1024;
const ROBOT_MAX_SIZE = 1024 * 1024;
const DEFAULT_TAG_EXPIRATION_S = 1209600;

/** Turns a thrown error into Quay's answer; `undefined` for errors that are not Quay's. */
export function apiErrorResponse(error: unknown, host: string): Response | undefined {
  if (error instanceof ApiProblem) return jsonResponse(error.toBody(host), error.status);
  if (error instanceof DataModelError) return jsonResponse({ message: error.message }, 400);
  if (error instanceof FlaskError) return jsonResponse({ message: error.body }, error.status);
  return undefined;
}

/** A Flask/flask-restful abort: `{"message": …}` with any status. */
class FlaskError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    super(typeof body === "string" ? body : JSON.stringify(body));
    this.name = "FlaskError";
    this.status = status;
    this.body = body;
  }
}

function isJsonContentType(req: Request): boolean {
  const type = (req.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const length = Number(req.headers.get("content-length") ?? "0");
  if (length > limit) throw invalidRequest("Request body too large");
  const bytes = new Uint8Array(await req.arrayBuffer());
  if (bytes.byteLength > limit) throw invalidRequest("Request body too large");
  return bytes;
}

/**
 * Flask's `request.get_json`: `undefined` when the body is not declared JSON. A declared but broken
 * body is a 400 unless `silent` (then `undefined`, as `get_json(silent=True)` gives `None`).
 */
async function getJson(
  req: Request,
  options: { silent: boolean; limit?: number },
): Promise<{ value: unknown } | undefined> {
  const bytes = await readBody(req, options.limit ?? MAX_API_BODY);
  if (!isJsonContentType(req)) return undefined;
  try {
    return { value: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) };
  } catch (error) {
    if (options.silent) return undefined;
    throw new FlaskError(400, `Failed to decode JSON object: ${(error as Error).message}`);
  }
}

/** `validate_json_request(schema)`: the validated body (required unless `optional`). */
async function validatedJson(
  ctx: ApiContext,
  schema: SchemaName,
  options: { optional?: boolean; limit?: number } = {},
): Promise<Record<string, unknown> | undefined> {
  const parsed = await getJson(ctx.req, { silent: options.optional ?? false, limit: options.limit });
  if (parsed === undefined || parsed.value === null) {
    if (options.optional) return undefined;
    throw invalidRequest("Missing JSON body");
  }
  const issue = validateSchema(schema, parsed.value);
  if (issue) throw invalidRequest(issue);
  return parsed.value as Record<string, unknown>;
}

/** `util.parsing.truthy_bool` with a default for an absent parameter. */
function truthy(url: URL, name: string, fallback: boolean): boolean {
  const value = url.searchParams.get(name);
  if (value === null) return fallback;
  return !["false", "False", "FALSE", "0", "", "null", "no"].includes(value);
}

/** An integer query parameter, as flask-restful's `type=int` parses it. */
function intParam(url: URL, name: string, fallback: number): number {
  const value = url.searchParams.get(name);
  if (value === null) return fallback;
  if (!/^\s*[-+]?\d+\s*$/.test(value)) {
    throw new FlaskError(400, { [name]: `invalid literal for int() with base 10: '${value}'` });
  }
  return Number.parseInt(value, 10);
}

function fnvHex(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    h1 = Math.imul(h1 ^ text.charCodeAt(i), 16777619) >>> 0;
    h2 = Math.imul(h2 ^ text.charCodeAt(i), 2246822519) >>> 0;
  }
  return (h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0")).repeat(2);
}

function avatar(name: string, kind: "user" | "robot" | "org" | "team"): Record<string, string> {
  const hash = fnvHex(name);
  return { name, hash, color: `#${hash.slice(0, 6)}`, kind };
}

/** A 204: Flask-RESTful declares even an empty answer JSON. */
function noContent(): Response {
  return emptyResponse(204, { "content-type": "application/json" });
}

/** Quay's `Unauthorized()`: 401 for no user, 403 otherwise. */
function deny(ctx: ApiContext): ApiProblem {
  return ctx.identity !== ANONYMOUS ? unauthorized() : requiresAuthentication();
}

function fullSuper(ctx: ApiContext): boolean {
  return ctx.state.isFullAccessSuperuser(ctx.identity);
}

function orgAdminOrFullSuper(ctx: ApiContext, org: string): boolean {
  return ctx.state.isOrgAdmin(ctx.identity, org) || fullSuper(ctx);
}

function userDelegateView(state: QuayState, org: OrgRecord, name: string): Record<string, unknown> {
  const robot = name.includes("+");
  return {
    name,
    is_robot: robot,
    kind: "user",
    is_org_member: state.isMemberName(org, name),
    avatar: avatar(name, robot ? "robot" : "user"),
  };
}

function prototypeView(state: QuayState, org: OrgRecord, p: PrototypeRecord): Record<string, unknown> {
  return {
    activating_user: p.activatingUser ? userDelegateView(state, org, p.activatingUser) : null,
    delegate: p.delegate.kind === "user"
      ? userDelegateView(state, org, p.delegate.name)
      : { name: p.delegate.name, kind: "team", avatar: avatar(p.delegate.name, "team") },
    role: p.role,
    id: p.id,
  };
}

function robotView(
  robot: RobotRecord,
  options: { token: boolean; metadata: boolean },
): Record<string, unknown> {
  const view: Record<string, unknown> = {
    name: robot.name,
    created: formatQuayDate(robot.created),
    last_accessed: robot.lastAccessed ? formatQuayDate(robot.lastAccessed) : null,
    description: robot.description,
  };
  if (options.token) view.token = robot.token;
  if (options.metadata) view.unstructured_metadata = robot.metadata;
  return view;
}

function layersSize(repo: RepositoryRecord, digest: string): number {
  return repo.manifests.get(digest)?.layersSize ?? 0;
}

function liveTags(repo: RepositoryRecord): RepositoryRecord["tags"] {
  return repo.tags.filter((t) => t.endTs === null).sort((a, b) => b.startTs - a.startTs || b.id - a.id);
}

// ---- user -------------------------------------------------------------------------------------

function getUser(ctx: ApiContext): Response {
  const { state, identity } = ctx;
  const user = state.users.get(identity.name);
  if (!user || state.userRole(identity) < 1) throw requiresAuthentication({ session_required: false });
  const organizations = [...state.orgs.values()]
    .filter((org) => org.owners.has(user.name))
    .map((org) => ({
      name: org.name,
      avatar: avatar(org.name, "org"),
      can_create_repo: state.canCreateRepository(identity, org.name),
      public: false,
      is_org_admin: state.isOrgAdmin(identity, org.name),
      preferred_namespace: false,
    }));
  return jsonResponse({
    anonymous: false,
    username: user.name,
    avatar: avatar(user.name, "user"),
    can_create_repo: true,
    is_me: true,
    verified: true,
    email: user.email,
    logins: [],
    invoice_email: false,
    invoice_email_address: null,
    preferred_namespace: false,
    tag_expiration_s: DEFAULT_TAG_EXPIRATION_S,
    prompts: [],
    company: null,
    family_name: null,
    given_name: null,
    location: null,
    is_free_account: true,
    has_password_set: true,
    super_user: state.isSuperuser(identity),
    organizations,
  });
}

// ---- organizations ----------------------------------------------------------------------------

async function createOrganization(ctx: ApiContext): Promise<Response> {
  const { state, identity } = ctx;
  if (state.userRole(identity) < 2) throw deny(ctx);
  if (state.options.superuserOrgCreationOnly && !state.isSuperuser(identity)) throw deny(ctx);
  const body = await validatedJson(ctx, "NewOrg") ?? {};
  const name = String(body.name);
  const email = typeof body.email === "string" ? body.email : undefined;
  if (state.namespaceExists(name)) {
    throw invalidRequest("A user or organization with this name already exists");
  }
  // A deleted organization's row (DeletedNamespace) holds the name until the namespace GC runs.
  if (state.nameAwaitsCollection(name)) throw invalidRequest("Username is not available");
  if (state.options.requireOrgEmail && !email) throw invalidRequest("Email address is required");
  try {
    state.createOrganization(name, email, identity.name);
  } catch (error) {
    if (error instanceof DataModelError) throw invalidRequest(error.message);
    throw error;
  }
  return jsonResponse("Created", 201);
}

function getOrganization(ctx: ApiContext): Response {
  const { state, identity } = ctx;
  const org = state.orgs.get(ctx.params.org ?? "");
  if (!org) throw notFound();
  const superView = fullSuper(ctx);
  // `org_view` grants a full-access superuser effective admin and member status.
  const isAdmin = state.isOrgAdmin(identity, org.name) || superView;
  const isMember = state.isOrgMember(identity, org.name) || superView;
  const view: Record<string, unknown> = {
    name: org.name,
    email: isAdmin || superView ? org.email : "",
    // Organizations are rows of Quay's user table; their avatar data says so.
    avatar: avatar(org.name, "user"),
    is_admin: isAdmin,
    is_member: isMember,
  };
  if (isMember || superView) {
    view.teams = {
      owners: {
        name: "owners",
        description: "",
        role: "admin",
        avatar: avatar("owners", "team"),
        can_view: true,
        repo_count: 0,
        member_count: org.owners.size,
        is_synced: false,
      },
    };
    view.ordered_teams = ["owners"];
  }
  if (isAdmin) {
    view.invoice_email = false;
    view.invoice_email_address = null;
    view.tag_expiration_s = DEFAULT_TAG_EXPIRATION_S;
    view.is_free_account = true;
  }
  return jsonResponse(view);
}

function deleteOrganization(ctx: ApiContext): Response {
  const name = ctx.params.org ?? "";
  if (!orgAdminOrFullSuper(ctx, name)) throw deny(ctx);
  if (!ctx.state.orgs.has(name)) throw notFound();
  ctx.state.deleteOrganization(name);
  return noContent();
}

// ---- robots -----------------------------------------------------------------------------------

function listRobots(ctx: ApiContext): Response {
  const { state, identity, url } = ctx;
  const name = ctx.params.org ?? "";
  if (!(state.isOrgMember(identity, name) || fullSuper(ctx))) throw deny(ctx);
  const admin = orgAdminOrFullSuper(ctx, name);
  const includeToken = admin && truthy(url, "token", true);
  const includePermissions = admin && truthy(url, "permissions", false);
  const limitParam = url.searchParams.get("limit");
  const limit = limitParam === null ? undefined : intParam(url, "limit", 0);
  const org = state.orgs.get(name);
  let robots = org ? state.listRobots(org) : [];
  if (limit !== undefined) robots = robots.slice(0, Math.max(0, limit));
  return jsonResponse({
    robots: robots.map((robot) => {
      const view = robotView(robot, { token: includeToken, metadata: false });
      if (!includePermissions) return view;
      return {
        ...view,
        teams: [],
        repositories: state.robotPermissions(robot.name).map((p) => p.repo.name),
      };
    }),
  });
}

function getRobot(ctx: ApiContext): Response {
  const orgName = ctx.params.org ?? "";
  if (!orgAdminOrFullSuper(ctx, orgName)) throw deny(ctx);
  const org = ctx.state.getOrganization(orgName);
  const robot = ctx.state.getRobot(org, ctx.params.robot ?? "");
  return jsonResponse(robotView(robot, { token: true, metadata: true }));
}

async function createRobot(ctx: ApiContext): Promise<Response> {
  const orgName = ctx.params.org ?? "";
  // max_json_size and validate_json_request(optional=True) run before the permission check.
  const data = await validatedJson(ctx, "CreateRobot", { optional: true, limit: ROBOT_MAX_SIZE }) ?? {};
  if (!orgAdminOrFullSuper(ctx, orgName)) throw deny(ctx);
  const org = ctx.state.getOrganization(orgName);
  try {
    const robot = ctx.state.createRobot(
      org,
      ctx.params.robot ?? "",
      typeof data.description === "string" ? data.description : "",
      (data.unstructured_metadata as Record<string, unknown> | undefined) ?? {},
    );
    // The answer echoes the request's metadata (`null` when it had none), not the stored `{}`.
    return jsonResponse({
      ...robotView(robot, { token: true, metadata: true }),
      unstructured_metadata: data.unstructured_metadata ?? null,
    }, 201);
  } catch (error) {
    if (error instanceof InvalidRobotError) throw invalidRequest(error.message);
    throw error;
  }
}

function deleteRobot(ctx: ApiContext): Response {
  const orgName = ctx.params.org ?? "";
  if (!orgAdminOrFullSuper(ctx, orgName)) throw deny(ctx);
  const org = ctx.state.orgs.get(orgName);
  const short = ctx.params.robot ?? "";
  if (!org) throw new InvalidRobotError(`Could not find robot with username: ${orgName}+${short}`);
  ctx.state.deleteRobot(org, short);
  return noContent();
}

function regenerateRobot(ctx: ApiContext): Response {
  const orgName = ctx.params.org ?? "";
  if (!orgAdminOrFullSuper(ctx, orgName)) throw deny(ctx);
  const org = ctx.state.getOrganization(orgName);
  const robot = ctx.state.getRobot(org, ctx.params.robot ?? "");
  robot.token = randomString(64);
  return jsonResponse(robotView(robot, { token: true, metadata: false }));
}

// ---- prototypes -------------------------------------------------------------------------------

function listPrototypes(ctx: ApiContext): Response {
  const name = ctx.params.org ?? "";
  const superRead = ctx.state.options.superuserFullAccess && ctx.state.isSuperuser(ctx.identity);
  if (!(ctx.state.isOrgAdmin(ctx.identity, name) || superRead)) throw deny(ctx);
  const org = ctx.state.orgs.get(name);
  if (!org) throw notFound();
  return jsonResponse({ prototypes: org.prototypes.map((p) => prototypeView(ctx.state, org, p)) });
}

async function createPrototype(ctx: ApiContext): Promise<Response> {
  const { state } = ctx;
  const body = await validatedJson(ctx, "NewPrototype") ?? {};
  const name = ctx.params.org ?? "";
  if (!orgAdminOrFullSuper(ctx, name)) throw deny(ctx);
  const org = state.orgs.get(name);
  if (!org) throw notFound();
  const activating = body.activating_user as { name?: unknown } | undefined;
  const activatingName = activating && typeof activating.name === "string" && activating.name
    ? activating.name
    : null;
  const delegate = body.delegate as { kind: "user" | "team"; name: string };
  const delegateUser = delegate.kind === "user" && delegate.name
    ? state.lookupUser(delegate.name)
    : undefined;
  const delegateTeam = delegate.kind === "team" && delegate.name === "owners" ? "owners" : undefined;
  if (activatingName && !state.lookupUser(activatingName)) throw invalidRequest("Unknown activating user");
  if (!delegateUser && !delegateTeam) throw invalidRequest("Missing delegate user or team");
  const prototype = state.addPrototype(
    org,
    body.role as Role,
    { kind: delegate.kind, name: delegate.name },
    activatingName,
  );
  return jsonResponse(prototypeView(state, org, prototype));
}

async function updatePrototype(ctx: ApiContext): Promise<Response> {
  const body = await validatedJson(ctx, "PrototypeUpdate") ?? {};
  const name = ctx.params.org ?? "";
  if (!orgAdminOrFullSuper(ctx, name)) throw deny(ctx);
  const org = ctx.state.orgs.get(name);
  if (!org) throw notFound();
  const prototype = org.prototypes.find((p) => p.id === ctx.params.id);
  if (!prototype) throw notFound();
  prototype.role = body.role as Role;
  return jsonResponse(prototypeView(ctx.state, org, prototype));
}

function deletePrototype(ctx: ApiContext): Response {
  const name = ctx.params.org ?? "";
  if (!orgAdminOrFullSuper(ctx, name)) throw deny(ctx);
  const org = ctx.state.orgs.get(name);
  if (!org) throw notFound();
  const index = org.prototypes.findIndex((p) => p.id === ctx.params.id);
  if (index < 0) throw notFound();
  org.prototypes.splice(index, 1);
  return noContent();
}

// ---- repositories -----------------------------------------------------------------------------

async function createRepository(ctx: ApiContext): Promise<Response> {
  const { state, identity } = ctx;
  const body = await validatedJson(ctx, "NewRepo") ?? {};
  const ns = typeof body.namespace === "string" ? body.namespace : identity.name;
  // A superuser passes the permission check for any name; creating in a missing namespace raises.
  if (!state.namespaceExists(ns) && fullSuper(ctx)) return flaskServerError();
  if (!state.canCreateRepository(identity, ns)) throw deny(ctx);
  const name = String(body.repository);
  if (state.getRepository(ns, name)) throw invalidRequest("Repository already exists");
  if (!REPOSITORY_NAME_REGEX.test(name)) throw invalidRequest("Invalid repository name");
  const kind = body.repo_kind === "application" ? "application" : "image";
  state.createRepository(ns, name, identity.name, {
    visibility: body.visibility === "public" ? "public" : "private",
    description: String(body.description),
    kind,
  });
  return jsonResponse({ namespace: ns, name, kind }, 201);
}

function encodePageToken(startId: number): string {
  return btoa(JSON.stringify({ start_id: startId })).replaceAll("=", "").replaceAll("+", "-").replaceAll(
    "/",
    "_",
  );
}

function decodePageToken(token: string | null): number | undefined {
  if (!token) return undefined;
  try {
    const value = JSON.parse(atob(
      token.replaceAll("-", "+").replaceAll("_", "/").padEnd(
        Math.ceil(token.length / 4) * 4,
        "=",
      ),
    )) as { start_id?: unknown };
    return typeof value.start_id === "number" ? value.start_id : undefined;
  } catch {
    return undefined;
  }
}

function listRepositories(pageSize: number): ApiHandler {
  return (ctx) => {
    const { state, identity, url } = ctx;
    const scopes = identity.scopes;
    const anonymous = identity === ANONYMOUS;
    if (
      !anonymous && scopes && !scopes.has("repo:read") && !scopes.has("repo:write") &&
      !scopes.has("repo:admin")
    ) {
      throw deny(ctx);
    }
    const namespace = url.searchParams.get("namespace");
    const starred = truthy(url, "starred", false);
    const includePublic = truthy(url, "public", false);
    if (!namespace && !starred && !includePublic) {
      throw invalidRequest("namespace, starred or public are required for this API call");
    }
    let repos: RepositoryRecord[];
    if (starred) {
      repos = [];
    } else if (namespace) {
      // An anonymous caller sees the public repositories (and so a refused token an empty list).
      repos = state.visibleRepositories(identity, namespace, includePublic || anonymous);
    } else {
      const namespaces = new Set([...state.repositories.values()].map((r) => r.namespace));
      repos = [...namespaces].flatMap((ns) => state.visibleRepositories(identity, ns, true))
        .sort((a, b) => a.id - b.id);
    }
    const startId = decodePageToken(url.searchParams.get("next_page"));
    if (startId !== undefined) repos = repos.filter((r) => r.id >= startId);
    const page = repos.slice(0, pageSize);
    const next = repos[pageSize];
    const lastModified = truthy(url, "last_modified", false);
    const popularity = truthy(url, "popularity", false);
    const result: Record<string, unknown> = {
      repositories: page.map((repo) => {
        const view: Record<string, unknown> = {
          namespace: repo.namespace,
          name: repo.name,
          description: repo.description,
          is_public: repo.visibility === "public",
          kind: repo.kind,
          state: "NORMAL",
          is_starred: false,
        };
        if (lastModified) view.last_modified = liveTags(repo)[0]?.startTs ?? null;
        if (popularity) view.popularity = 0;
        return view;
      }),
    };
    if (next) result.next_page = encodePageToken(next.id);
    return jsonResponse(result);
  };
}

function repoParams(ctx: ApiContext): { ns: string; name: string } {
  return { ns: ctx.params.org ?? "", name: ctx.params.repo ?? "" };
}

function canReadRepository(ctx: ApiContext, ns: string, name: string): boolean {
  return ctx.state.repositoryRole(ctx.identity, ns, name) >= 1 || ctx.state.isPublic(ns, name) ||
    fullSuper(ctx);
}

function getRepository(ctx: ApiContext): Response {
  const { state, identity, url } = ctx;
  const { ns, name } = repoParams(ctx);
  if (!canReadRepository(ctx, ns, name)) throw deny(ctx);
  const repo = state.getRepository(ns, name);
  if (!repo) throw notFound();
  const role = state.repositoryRole(identity, ns, name);
  const view: Record<string, unknown> = {
    namespace: ns,
    name,
    kind: repo.kind,
    description: repo.description,
    is_public: repo.visibility === "public",
    is_organization: state.orgs.has(ns),
    is_starred: false,
    status_token: "",
    trust_enabled: false,
    tag_expiration_s: DEFAULT_TAG_EXPIRATION_S,
    is_free_account: true,
    state: "NORMAL",
    can_write: role >= 2,
    can_admin: role >= 3,
  };
  if (truthy(url, "includeTags", true)) {
    view.tags = Object.fromEntries(
      liveTags(repo).slice(0, 500).map((t) => [t.name, {
        name: t.name,
        size: layersSize(repo, t.manifestDigest),
        last_modified: formatQuayDate(new Date(t.startTs * 1000)),
        manifest_digest: t.manifestDigest,
      }]),
    );
  }
  return jsonResponse(view);
}

async function updateRepository(ctx: ApiContext): Promise<Response> {
  const { ns, name } = repoParams(ctx);
  if (!(ctx.state.repositoryRole(ctx.identity, ns, name) >= 2 || fullSuper(ctx))) throw deny(ctx);
  const body = await validatedJson(ctx, "RepoUpdate") ?? {};
  const repo = ctx.state.getRepository(ns, name);
  if (!repo) throw notFound();
  repo.description = String(body.description);
  return jsonResponse({ success: true });
}

function deleteRepository(ctx: ApiContext): Response {
  const { ns, name } = repoParams(ctx);
  if (!(ctx.state.repositoryRole(ctx.identity, ns, name) >= 3 || fullSuper(ctx))) throw deny(ctx);
  // Quay looks the repository up without checking the result: a missing one in an existing
  // namespace is "deleted" (204). In a missing namespace Quay raises: Flask's HTML 500.
  if (!ctx.state.namespaceExists(ns)) return flaskServerError();
  ctx.state.deleteRepository(ns, name);
  return noContent();
}

// ---- repository permissions -------------------------------------------------------------------

function requireRepoAdmin(ctx: ApiContext): { ns: string; name: string } {
  const p = repoParams(ctx);
  if (ctx.state.repositoryRole(ctx.identity, p.ns, p.name) < 3 && !fullSuper(ctx)) throw deny(ctx);
  return p;
}

function permissionView(state: QuayState, repo: RepositoryRecord, user: string): Record<string, unknown> {
  const robot = user.includes("+");
  const view: Record<string, unknown> = {
    role: repo.permissions.get(user),
    name: user,
    is_robot: robot,
    avatar: avatar(user, robot ? "robot" : "user"),
  };
  const org = state.orgs.get(repo.namespace);
  if (org) view.is_org_member = state.isMemberName(org, user);
  return view;
}

function listRepositoryPermissions(ctx: ApiContext): Response {
  const { ns, name } = requireRepoAdmin(ctx);
  const repo = ctx.state.getRepository(ns, name);
  const permissions = repo
    ? Object.fromEntries([...repo.permissions.keys()].map((u) => [u, permissionView(ctx.state, repo, u)]))
    : {};
  return jsonResponse({ permissions });
}

function getRepositoryPermission(ctx: ApiContext): Response {
  const { ns, name } = requireRepoAdmin(ctx);
  const repo = ctx.state.getRepository(ns, name);
  const user = ctx.params.user ?? "";
  if (!repo || !repo.permissions.has(user)) {
    throw new DataModelError("User does not have permission for repo.");
  }
  return jsonResponse(permissionView(ctx.state, repo, user));
}

async function setRepositoryPermission(ctx: ApiContext): Promise<Response> {
  const { ns, name } = requireRepoAdmin(ctx);
  const body = await validatedJson(ctx, "UserPermission") ?? {};
  const repo = ctx.state.getRepository(ns, name);
  if (!repo) return flaskServerError();
  const user = ctx.params.user ?? "";
  try {
    ctx.state.setRepositoryPermission(repo, user, body.role as Role);
  } catch (error) {
    if (error instanceof DataModelError) throw invalidRequest(error.message);
    throw error;
  }
  return jsonResponse(permissionView(ctx.state, repo, user));
}

function deleteRepositoryPermission(ctx: ApiContext): Response {
  const { ns, name } = requireRepoAdmin(ctx);
  const repo = ctx.state.getRepository(ns, name);
  try {
    if (!repo) throw new DataModelError("User does not have permission for repo.");
    ctx.state.deleteRepositoryPermission(repo, ctx.params.user ?? "");
  } catch (error) {
    if (error instanceof DataModelError) throw invalidRequest(error.message);
    throw error;
  }
  return noContent();
}

// ---- tags -------------------------------------------------------------------------------------

function listTags(ctx: ApiContext): Response {
  const { state, url } = ctx;
  const { ns, name } = repoParams(ctx);
  if (!canReadRepository(ctx, ns, name)) throw deny(ctx);
  const repo = state.getRepository(ns, name);
  if (!repo) throw notFound();
  const page = Math.max(1, intParam(url, "page", 1));
  const limit = Math.min(100, Math.max(1, intParam(url, "limit", 50)));
  const activeOnly = truthy(url, "onlyActiveTags", false);
  const specific = url.searchParams.get("specificTag") || undefined;
  const filter = url.searchParams.get("filter_tag_name") || undefined;
  let tags = [...repo.tags].sort((a, b) => b.startTs - a.startTs || b.id - a.id);
  if (activeOnly) tags = tags.filter((t) => t.endTs === null);
  if (specific) tags = tags.filter((t) => t.name === specific);
  if (filter) {
    const [op, ...rest] = filter.split(":");
    const value = rest.join(":");
    if (op === "eq") tags = tags.filter((t) => t.name === value);
    else if (op === "like") tags = tags.filter((t) => t.name.includes(value));
    else throw new FlaskError(400, `Invalid filter_tag_name operation: ${op}`);
  }
  const slice = tags.slice((page - 1) * limit, page * limit);
  return jsonResponse({
    tags: slice.map((t) => {
      const view: Record<string, unknown> = { name: t.name, reversion: false, start_ts: t.startTs };
      if (t.endTs !== null) view.end_ts = t.endTs;
      view.manifest_digest = t.manifestDigest;
      view.is_manifest_list = repo.manifests.get(t.manifestDigest)?.isList ?? false;
      view.size = layersSize(repo, t.manifestDigest);
      view.last_modified = formatQuayDate(new Date(t.startTs * 1000));
      if (t.endTs !== null) view.expiration = formatQuayDate(new Date(t.endTs * 1000));
      return view;
    }),
    page,
    has_additional: tags.length > page * limit,
  });
}

/** The API routes, in Quay's paths. `repositoryPageSize` bounds repository listings. */
export function apiRoutes(options: { repositoryPageSize: number }): RouteDef<ApiHandler>[] {
  const r = (method: string, template: string, handler: ApiHandler): RouteDef<ApiHandler> => ({
    method,
    template: `/api/v1${template}`,
    handler,
  });
  return [
    r("GET", "/user/", getUser),
    r("POST", "/organization/", createOrganization),
    r("GET", "/organization/{org}", getOrganization),
    r("DELETE", "/organization/{org}", deleteOrganization),
    r("GET", "/organization/{org}/robots", listRobots),
    r("GET", "/organization/{org}/robots/{robot}", getRobot),
    r("PUT", "/organization/{org}/robots/{robot}", createRobot),
    r("DELETE", "/organization/{org}/robots/{robot}", deleteRobot),
    r("POST", "/organization/{org}/robots/{robot}/regenerate", regenerateRobot),
    r("GET", "/organization/{org}/prototypes", listPrototypes),
    r("POST", "/organization/{org}/prototypes", createPrototype),
    r("PUT", "/organization/{org}/prototypes/{id}", updatePrototype),
    r("DELETE", "/organization/{org}/prototypes/{id}", deletePrototype),
    r("GET", "/repository", listRepositories(options.repositoryPageSize)),
    r("POST", "/repository", createRepository),
    r("GET", "/repository/{org}/{repo}", getRepository),
    r("PUT", "/repository/{org}/{repo}", updateRepository),
    r("DELETE", "/repository/{org}/{repo}", deleteRepository),
    r("GET", "/repository/{org}/{repo}/permissions/user/", listRepositoryPermissions),
    r("GET", "/repository/{org}/{repo}/permissions/user/{user}", getRepositoryPermission),
    r("PUT", "/repository/{org}/{repo}/permissions/user/{user}", setRepositoryPermission),
    r("DELETE", "/repository/{org}/{repo}/permissions/user/{user}", deleteRepositoryPermission),
    r("GET", "/repository/{org}/{repo}/tag/", listTags),
  ];
}
