/**
 * @module
 * The data of the test world's Quay and its permission rules, without HTTP. Users, organizations
 * (with their `owners` team), robots, default permissions (prototypes), OAuth tokens, repositories
 * with explicit user permissions, and the registry's blobs, manifests and tag history.
 *
 * Permissions follow `auth/permissions.py`: a user's roles come from the `owners` team of an
 * organization (admin) and from explicit repository permissions, and an OAuth token caps each of
 * them by its scopes (`SCOPE_MAX_REPO_ROLES`, `SCOPE_MAX_TEAM_ROLES`, `SCOPE_MAX_USER_ROLES`). Robots
 * hold only explicit repository permissions. Errors that Quay raises from its data model are thrown
 * as {@linkcode DataModelError}; the API layer decides how each one is answered, as Quay's
 * endpoints do.
 */
import { DataModelError } from "./http_util.ts";

/** An OAuth scope (`auth/scopes.py`). */
export type QuayScope =
  | "repo:read"
  | "repo:write"
  | "repo:admin"
  | "repo:create"
  | "user:read"
  | "user:admin"
  | "org:admin"
  | "super:user";

/** Every scope, as the admin token holds them. */
export const ALL_SCOPES: readonly QuayScope[] = [
  "repo:read",
  "repo:write",
  "repo:admin",
  "repo:create",
  "user:read",
  "user:admin",
  "org:admin",
  "super:user",
];

/** A repository role. */
export type Role = "read" | "write" | "admin";

/** `VALID_USERNAME_REGEX` of `util/validation.py`; organizations, users and robot short names. */
export const NAMESPACE_REGEX = /^([a-z0-9]+(?:[._-][a-z0-9]+)*)$/;
/** `REPOSITORY_NAME_REGEX` of `util/names.py`. */
export const REPOSITORY_NAME_REGEX = /^[a-z0-9][.a-z0-9_-]{0,254}$/;

const NAMESPACE_EXPRESSION_MESSAGE = "Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$";

/** `validate_username`: the issue with a name, or `undefined` when it is valid. */
export function usernameIssue(name: string): string | undefined {
  if (!NAMESPACE_REGEX.test(name)) return NAMESPACE_EXPRESSION_MESSAGE;
  if (name.length < 2 || name.length > 255) {
    return "Namespace must be between 2 and 255 characters in length";
  }
  return undefined;
}

/** A robot name can't be found or created (`InvalidRobotException`). */
export class InvalidRobotError extends DataModelError {
  constructor(message: string) {
    super(message);
    this.name = "InvalidRobotError";
  }
}

/** A user account. */
export interface UserRecord {
  readonly name: string;
  email: string;
  superuser: boolean;
  readonly created: Date;
}

/** A robot account of an organization. */
export interface RobotRecord {
  readonly namespace: string;
  readonly shortName: string;
  readonly name: string;
  token: string;
  readonly description: string;
  readonly metadata: Record<string, unknown>;
  readonly created: Date;
  lastAccessed: Date | null;
}

/** A default permission. */
export interface PrototypeRecord {
  readonly id: string;
  role: Role;
  readonly delegate: { readonly kind: "user" | "team"; readonly name: string };
  readonly activatingUser: string | null;
}

/** An organization. */
export interface OrgRecord {
  readonly name: string;
  email: string;
  /** Members of the `owners` team, whose role is admin. */
  readonly owners: Set<string>;
  readonly created: Date;
  readonly robots: Map<string, RobotRecord>;
  readonly prototypes: PrototypeRecord[];
}

/** A stored manifest. */
export interface ManifestRecord {
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Uint8Array;
  readonly isList: boolean;
  /** Sum of the layer sizes (what the tag API reports as `size`). */
  readonly layersSize: number;
}

/** One entry of a repository's tag history. */
export interface TagRecord {
  readonly id: number;
  readonly name: string;
  readonly manifestDigest: string;
  /** Seconds since the epoch. */
  readonly startTs: number;
  endTs: number | null;
}

/** A repository. */
export interface RepositoryRecord {
  readonly id: number;
  readonly namespace: string;
  readonly name: string;
  description: string;
  visibility: "public" | "private";
  readonly kind: "image" | "application";
  /** Explicit user (and robot) permissions. */
  readonly permissions: Map<string, Role>;
  readonly blobs: Map<string, Uint8Array>;
  readonly manifests: Map<string, ManifestRecord>;
  readonly tags: TagRecord[];
}

/** An OAuth access token. */
export interface OAuthTokenRecord {
  readonly token: string;
  readonly user: string;
  readonly scopes: ReadonlySet<QuayScope>;
}

/**
 * Who is asking: a user through an OAuth token (roles capped by `scopes`), or a robot or user
 * without a scope cap (`scopes: null`, as for robot credentials on the registry).
 */
export interface Identity {
  readonly name: string;
  readonly robot: boolean;
  readonly scopes: ReadonlySet<QuayScope> | null;
}

/**
 * The caller without an accepted token. Quay serves reads to it (public data, the public view of an
 * organization) and refuses its writes by the CSRF check.
 */
export const ANONYMOUS: Identity = Object.freeze({ name: "", robot: false, scopes: new Set<QuayScope>() });

/** A registry bearer token: the actions granted per `namespace/repository`. */
export interface RegistryGrant {
  readonly subject: Identity | null;
  readonly access: ReadonlyMap<string, ReadonlySet<string>>;
  readonly expiresAt: number;
}

/** An unfinished blob upload. */
export interface UploadRecord {
  readonly repository: string;
  readonly chunks: Uint8Array[];
  size: number;
}

/** Settings of a {@linkcode QuayState}. */
export interface QuayStateOptions {
  superuserOrgCreationOnly: boolean;
  requireOrgEmail: boolean;
  superuserFullAccess: boolean;
  /**
   * How long a deleted organization's name stays taken ("Username is not available") until the
   * namespace GC worker frees it; Quay's worker runs about once a minute. @default 0 (at once)
   */
  namespaceGcDelayMs?: number;
}

const REPO_ROLES: readonly (Role | null)[] = [null, "read", "write", "admin"];

function repoScopeCap(scopes: ReadonlySet<QuayScope> | null): number {
  if (scopes === null) return 3;
  let cap = 0;
  if (scopes.has("repo:read")) cap = Math.max(cap, 1);
  if (scopes.has("repo:write")) cap = Math.max(cap, 2);
  if (scopes.has("repo:admin")) cap = Math.max(cap, 3);
  return cap;
}

/** Team roles: 0 none, 1 member, 2 creator, 3 admin. */
function teamScopeCap(scopes: ReadonlySet<QuayScope> | null): number {
  if (scopes === null) return 3;
  let cap = 0;
  if (scopes.has("repo:create")) cap = Math.max(cap, 2);
  if (scopes.has("org:admin")) cap = Math.max(cap, 3);
  return cap;
}

/** User roles: 0 none, 1 read, 2 admin. */
function userScopeCap(scopes: ReadonlySet<QuayScope> | null): number {
  if (scopes === null) return 2;
  let cap = 0;
  if (scopes.has("user:read")) cap = Math.max(cap, 1);
  if (scopes.has("user:admin")) cap = Math.max(cap, 2);
  return cap;
}

function roleIndex(role: Role | null | undefined): number {
  return role ? REPO_ROLES.indexOf(role) : 0;
}

const TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const OAUTH_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** A random string as Quay's `random_string_generator` makes them. */
export function randomString(length: number, alphabet = TOKEN_ALPHABET): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

/** The whole state of one Quay. */
export class QuayState {
  readonly options: QuayStateOptions;
  readonly users = new Map<string, UserRecord>();
  readonly orgs = new Map<string, OrgRecord>();
  readonly repositories = new Map<string, RepositoryRecord>();
  readonly tokens = new Map<string, OAuthTokenRecord>();
  readonly registryTokens = new Map<string, RegistryGrant>();
  readonly uploads = new Map<string, UploadRecord>();
  /** E-mail addresses of users and organizations, which must be unique. */
  readonly #emails = new Set<string>();
  /** Repositories by namespace, in creation order. */
  readonly #byNamespace = new Map<string, Map<string, RepositoryRecord>>();
  #nextRepositoryId = 1;
  #nextTagId = 1;

  constructor(options: QuayStateOptions) {
    this.options = options;
  }

  // ---- accounts and tokens -------------------------------------------------------------------

  /** Creates a user, or updates the superuser flag of an existing one. */
  ensureUser(name: string, options: { superuser?: boolean } = {}): UserRecord {
    const existing = this.users.get(name);
    if (existing) {
      if (options.superuser !== undefined) existing.superuser = options.superuser;
      return existing;
    }
    const issue = usernameIssue(name);
    if (issue) throw new DataModelError(`Invalid namespace ${name}: ${issue}`);
    if (this.orgs.has(name)) throw new DataModelError(`${name} is an organization`);
    const user: UserRecord = {
      name,
      email: `${name}@users.quay.test`,
      superuser: options.superuser ?? false,
      created: new Date(),
    };
    this.users.set(name, user);
    this.#emails.add(user.email);
    return user;
  }

  /** Issues an OAuth access token for `user`. */
  issueToken(user: string, scopes: Iterable<QuayScope>): string {
    const token = randomString(40, OAUTH_ALPHABET);
    this.tokens.set(token, { token, user, scopes: new Set(scopes) });
    return token;
  }

  /** The identity behind a bearer token, if the token is valid. */
  identityForToken(token: string): Identity | undefined {
    const record = this.tokens.get(token);
    if (!record || !this.users.has(record.user)) return undefined;
    return { name: record.user, robot: false, scopes: record.scopes };
  }

  /** Whether a user or organization has this name (robots never collide: their names hold `+`). */
  namespaceExists(name: string): boolean {
    return this.users.has(name) || this.orgs.has(name);
  }

  /** A user or robot by full name (`get_user`: organizations are not users). */
  lookupUser(name: string): { name: string; robot: boolean } | undefined {
    if (this.users.has(name)) return { name, robot: false };
    const robot = this.lookupRobot(name);
    return robot ? { name, robot: true } : undefined;
  }

  /** A robot by full name `namespace+short`. */
  lookupRobot(fullName: string): RobotRecord | undefined {
    const plus = fullName.indexOf("+");
    if (plus < 0) return undefined;
    return this.orgs.get(fullName.slice(0, plus))?.robots.get(fullName.slice(plus + 1));
  }

  // ---- permissions ---------------------------------------------------------------------------

  /** Team-role index (0 none … 3 admin) of `who` in namespace `ns`, capped by the token's scopes. */
  teamRole(who: Identity, ns: string): number {
    if (who.robot) return 0;
    const isOwner = who.name === ns || (this.orgs.get(ns)?.owners.has(who.name) ?? false);
    return isOwner ? Math.min(3, teamScopeCap(who.scopes)) : 0;
  }

  /** `AdministerOrganizationPermission`. */
  isOrgAdmin(who: Identity, ns: string): boolean {
    return this.teamRole(who, ns) === 3;
  }

  /** `OrganizationMemberPermission`. */
  isOrgMember(who: Identity, ns: string): boolean {
    return this.teamRole(who, ns) >= 1;
  }

  /** `CreateRepositoryPermission`. */
  canCreateRepository(who: Identity, ns: string): boolean {
    return this.teamRole(who, ns) >= 2;
  }

  /** `SuperUserPermission`: a superuser whose token carries `super:user`. */
  isSuperuser(who: Identity): boolean {
    if (who.robot || !this.users.get(who.name)?.superuser) return false;
    return who.scopes === null || who.scopes.has("super:user");
  }

  /** `allow_if_superuser_with_full_access`. */
  isFullAccessSuperuser(who: Identity): boolean {
    return this.options.superuserFullAccess && this.isSuperuser(who);
  }

  /** `UserReadPermission` / `UserAdminPermission` on the caller's own account: 0, 1 read, 2 admin. */
  userRole(who: Identity): number {
    return who.robot ? 0 : userScopeCap(who.scopes);
  }

  /** Repository role index (0 none … 3 admin) of `who`, from explicit permissions and org-wide admin. */
  repositoryRole(who: Identity, ns: string, repo: string): number {
    const cap = repoScopeCap(who.scopes);
    const explicit = roleIndex(this.repositories.get(`${ns}/${repo}`)?.permissions.get(who.name));
    const orgWide = this.teamRole({ ...who, scopes: null }, ns) === 3 ? 3 : 0;
    return Math.min(cap, Math.max(explicit, orgWide));
  }

  /** Whether the repository exists and is public. */
  isPublic(ns: string, repo: string): boolean {
    return this.repositories.get(`${ns}/${repo}`)?.visibility === "public";
  }

  /** Repositories of `ns` the identity can see, in creation order. */
  visibleRepositories(who: Identity, ns: string, includePublic: boolean): RepositoryRecord[] {
    const out: RepositoryRecord[] = [];
    const orgWide = this.teamRole({ ...who, scopes: null }, ns) === 3;
    for (const repo of this.repositoriesOf(ns)) {
      if (orgWide || repo.permissions.has(who.name) || (includePublic && repo.visibility === "public")) {
        out.push(repo);
      }
    }
    return out;
  }

  /** Repositories of a namespace, in creation order. */
  repositoriesOf(ns: string): Iterable<RepositoryRecord> {
    return this.#byNamespace.get(ns)?.values() ?? [];
  }

  // ---- organizations -------------------------------------------------------------------------

  /** `create_organization`: validates e-mail (when required) and name, then makes `creator` an owner. */
  createOrganization(name: string, email: string | undefined, creator: string): OrgRecord {
    let address = email ?? "";
    if (this.options.requireOrgEmail) {
      if (!/^[^@]+@[^@]+\.[^@]+/.test(address)) throw new DataModelError(`Invalid email address: ${address}`);
    } else if (!address) {
      address = crypto.randomUUID();
    }
    const issue = usernameIssue(name);
    if (issue) throw new DataModelError(`Invalid namespace ${name}: ${issue}`);
    if (this.orgs.has(name)) {
      throw new DataModelError(
        `Username has already been taken by an organization and cannot be reused: ${name}`,
      );
    }
    if (this.users.has(name)) {
      throw new DataModelError(`Username has already been taken by user cannot be reused: ${name}`);
    }
    // Only a Quay that sends mail keeps organization e-mails unique (recent ones never do).
    if (this.options.requireOrgEmail && this.#emails.has(address)) {
      throw new DataModelError(`Email has already been used: ${address}`);
    }
    const org: OrgRecord = {
      name,
      email: address,
      owners: new Set([creator]),
      created: new Date(),
      robots: new Map(),
      prototypes: [],
    };
    this.orgs.set(name, org);
    this.#emails.add(address);
    return org;
  }

  /** `get_organization`. */
  getOrganization(name: string): OrgRecord {
    const org = this.orgs.get(name);
    if (!org) throw new DataModelError(`Organization does not exist: ${name}`);
    return org;
  }

  /** Names of deleted organizations by when the namespace GC frees them (ms since the epoch). */
  readonly #deletedNamespaces = new Map<string, number>();

  /** Whether `name` belonged to an organization the namespace GC has not collected yet. */
  nameAwaitsCollection(name: string): boolean {
    const until = this.#deletedNamespaces.get(name);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.#deletedNamespaces.delete(name);
    return false;
  }

  /**
   * Deletes an organization with its robots, prototypes and repositories; the name is freed after
   * `namespaceGcDelayMs`, as Quay's namespace GC does.
   */
  deleteOrganization(name: string): void {
    const org = this.orgs.get(name);
    if (!org) return;
    const delay = this.options.namespaceGcDelayMs ?? 0;
    if (delay > 0) this.#deletedNamespaces.set(name, Date.now() + delay);
    for (const robot of org.robots.values()) this.#forgetRobot(robot.name);
    for (const repo of [...this.repositoriesOf(name)]) this.deleteRepository(name, repo.name);
    this.orgs.delete(name);
    this.#emails.delete(org.email);
  }

  // ---- robots --------------------------------------------------------------------------------

  /** `create_robot`. */
  createRobot(
    org: OrgRecord,
    shortName: string,
    description: string,
    metadata: Record<string, unknown>,
  ): RobotRecord {
    const issue = usernameIssue(shortName);
    if (issue) throw new InvalidRobotError(`The name for the robot '${shortName}' is invalid: ${issue}`);
    const name = `${org.name}+${shortName}`;
    if (org.robots.has(shortName)) throw new InvalidRobotError(`Existing robot with name: ${name}`);
    // Only the short name is validated; the full name meets the database column's limit.
    if (name.length > 255) throw new DataModelError("value too long for type character varying(255)\n");
    const robot: RobotRecord = {
      namespace: org.name,
      shortName,
      name,
      token: randomString(64),
      description: description.slice(0, 255),
      metadata,
      created: new Date(),
      lastAccessed: null,
    };
    org.robots.set(shortName, robot);
    return robot;
  }

  /** `get_robot_and_metadata`. */
  getRobot(org: OrgRecord, shortName: string): RobotRecord {
    const robot = org.robots.get(shortName);
    if (!robot) throw new InvalidRobotError("Could not find robot with specified username");
    return robot;
  }

  /** `delete_robot`: the robot, its repository permissions and the prototypes that name it. */
  deleteRobot(org: OrgRecord, shortName: string): void {
    const robot = org.robots.get(shortName);
    if (!robot) throw new InvalidRobotError(`Could not find robot with username: ${org.name}+${shortName}`);
    org.robots.delete(shortName);
    this.#forgetRobot(robot.name);
  }

  #forgetRobot(fullName: string): void {
    // Robots are granted only in their own namespace (`set_user_repo_permission`).
    for (const repo of this.repositoriesOf(fullName.slice(0, fullName.indexOf("+")))) {
      repo.permissions.delete(fullName);
    }
    for (const org of this.orgs.values()) {
      for (let i = org.prototypes.length - 1; i >= 0; i--) {
        const p = org.prototypes[i];
        if (
          p && ((p.delegate.kind === "user" && p.delegate.name === fullName) || p.activatingUser === fullName)
        ) {
          org.prototypes.splice(i, 1);
        }
      }
    }
  }

  /** Robots of an organization, most recently accessed first (as Quay orders them). */
  listRobots(org: OrgRecord): RobotRecord[] {
    return [...org.robots.values()].sort((a, b) =>
      (b.lastAccessed?.getTime() ?? 0) - (a.lastAccessed?.getTime() ?? 0) ||
      a.created.getTime() - b.created.getTime()
    );
  }

  /** The repositories a robot holds a permission on, with the role. */
  robotPermissions(fullName: string): { repo: RepositoryRecord; role: Role }[] {
    const out: { repo: RepositoryRecord; role: Role }[] = [];
    for (const repo of this.repositoriesOf(fullName.slice(0, fullName.indexOf("+")))) {
      const role = repo.permissions.get(fullName);
      if (role) out.push({ repo, role });
    }
    return out;
  }

  // ---- prototypes ----------------------------------------------------------------------------

  /** `add_prototype_permission`. */
  addPrototype(
    org: OrgRecord,
    role: Role,
    delegate: { kind: "user" | "team"; name: string },
    activatingUser: string | null,
  ): PrototypeRecord {
    const prototype: PrototypeRecord = { id: crypto.randomUUID(), role, delegate, activatingUser };
    org.prototypes.push(prototype);
    return prototype;
  }

  /** Whether `name` is a member of the organization (robots always count, as in `prototype_view`). */
  isMemberName(org: OrgRecord, name: string): boolean {
    return name.includes("+") || org.owners.has(name);
  }

  // ---- repositories --------------------------------------------------------------------------

  /** A repository by namespace and name. */
  getRepository(ns: string, name: string): RepositoryRecord | undefined {
    return this.repositories.get(`${ns}/${name}`);
  }

  /**
   * `create_repository`: a user creator gets admin on it, then the namespace's default permissions
   * that exist now (those of the creator or of nobody) are applied. Later prototypes never apply.
   */
  createRepository(
    ns: string,
    name: string,
    creator: string | null,
    options: { visibility: "public" | "private"; description: string; kind: "image" | "application" },
  ): RepositoryRecord {
    const repo: RepositoryRecord = {
      id: this.#nextRepositoryId++,
      namespace: ns,
      name,
      description: options.description,
      visibility: options.visibility,
      kind: options.kind,
      permissions: new Map(),
      blobs: new Map(),
      manifests: new Map(),
      tags: [],
    };
    this.repositories.set(`${ns}/${name}`, repo);
    const inNamespace = this.#byNamespace.get(ns) ?? new Map<string, RepositoryRecord>();
    inNamespace.set(name, repo);
    this.#byNamespace.set(ns, inNamespace);
    if (creator && this.users.has(creator)) {
      repo.permissions.set(creator, "admin");
      const org = this.orgs.get(ns);
      if (org && creator !== ns) this.#applyDefaultPermissions(org, repo, creator);
    }
    return repo;
  }

  #applyDefaultPermissions(org: OrgRecord, repo: RepositoryRecord, creator: string): void {
    // A prototype for the creating user pre-empts one for nobody (`__apply_permission_list`).
    const chosen = new Map<string, Role>();
    for (const p of org.prototypes) {
      if (p.delegate.kind !== "user") continue;
      if (p.activatingUser !== null && p.activatingUser !== creator) continue;
      if (chosen.has(p.delegate.name) && p.activatingUser === null) continue;
      chosen.set(p.delegate.name, p.role);
    }
    for (const [delegate, role] of chosen) {
      if (delegate !== creator && this.lookupUser(delegate)) repo.permissions.set(delegate, role);
    }
  }

  /** Deletes a repository; the name is free at once. */
  deleteRepository(ns: string, name: string): boolean {
    const key = `${ns}/${name}`;
    if (!this.repositories.delete(key)) return false;
    const inNamespace = this.#byNamespace.get(ns);
    inNamespace?.delete(name);
    if (inNamespace?.size === 0) this.#byNamespace.delete(ns);
    for (const [id, upload] of this.uploads) if (upload.repository === key) this.uploads.delete(id);
    return true;
  }

  /** `set_user_repo_permission`. */
  setRepositoryPermission(repo: RepositoryRecord, username: string, role: Role): void {
    if (username === repo.namespace) throw new DataModelError("Namespace owner must always be admin.");
    const user = this.lookupUser(username);
    if (!user) throw new DataModelError(`Invalid username: ${username}`);
    if (user.robot && username.slice(0, username.indexOf("+")) !== repo.namespace) {
      throw new DataModelError(`Cannot add robot ${username} under namespace ${repo.namespace}`);
    }
    repo.permissions.set(username, role);
  }

  /** `delete_user_permission`. */
  deleteRepositoryPermission(repo: RepositoryRecord, username: string): void {
    if (username === repo.namespace) throw new DataModelError("Namespace owner must always be admin.");
    if (!repo.permissions.delete(username)) {
      throw new DataModelError("User does not have permission for repo.");
    }
  }

  // ---- registry data -------------------------------------------------------------------------

  /** Points `tag` at `digest`, ending the tag's current life unless it already points there. */
  retargetTag(repo: RepositoryRecord, tag: string, digest: string): void {
    const now = Math.floor(Date.now() / 1000);
    const alive = repo.tags.find((t) => t.name === tag && t.endTs === null);
    if (alive?.manifestDigest === digest) return;
    if (alive) alive.endTs = now;
    repo.tags.push({ id: this.#nextTagId++, name: tag, manifestDigest: digest, startTs: now, endTs: null });
  }

  /** The live tag of that name. */
  liveTag(repo: RepositoryRecord, tag: string): TagRecord | undefined {
    return repo.tags.find((t) => t.name === tag && t.endTs === null);
  }
}
