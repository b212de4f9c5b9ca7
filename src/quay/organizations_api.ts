/**
 * @module
 * The organization calls of the Quay client: the token's user, organizations, robot accounts and
 * default permissions (prototypes), each a function over one {@linkcode QuayExchange}. What real
 * Quay answers shapes the results: an organization's view is public, so a view without `is_admin`
 * is checked against the token; a deleted organization's name stays taken until Quay's namespace
 * GC has run (`OrganizationNameNotFree`, transient, with a retry-after); the robot list of a
 * missing organization is `200 []`, so an empty list is confirmed against the organization.
 */
import type { QuayApiError } from "../errors.ts";
import type { QuayRole } from "../integration_spec.ts";
import { quayError, type QuayExchange } from "./exchange.ts";
import { QuayReason } from "./reasons.ts";

/** How long a deleted organization's name is expected to stay taken before the next try. */
const NAME_NOT_FREE_RETRY_SECONDS = 20;
const enc = encodeURIComponent;

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

/** `GET /user/`: who the token belongs to. Throws `TokenInvalid` when Quay does not accept the token. */
export async function getUser(http: QuayExchange): Promise<QuayUser> {
  return (await http.call({ method: "GET", path: "/api/v1/user/", route: "GET /api/v1/user/" }, true))
    .body as QuayUser;
}

/**
 * `GET /organization/{org}`; `undefined` when it does not exist (a 404 is the same for every
 * caller). Quay shows an organization to anyone, so a view without `is_admin` is checked against
 * `GET /user/`: a refused token throws `TokenInvalid`, a valid one that does not administer the
 * organization throws `OrganizationNotAdministered`. A super user (with full access) is admin of
 * every organization.
 */
export async function getOrganization(
  http: QuayExchange,
  org: string,
): Promise<QuayOrganization | undefined> {
  const route = "GET /api/v1/organization/{org}";
  const r = await http.call({
    method: "GET",
    path: `/api/v1/organization/${enc(org)}`,
    route,
    accept: [404],
  });
  if (r.status === 404) return undefined;
  const view = r.body as QuayOrganization;
  if (view.is_admin === true) {
    http.tokenAccepted();
    return view;
  }
  await getUser(http);
  throw quayError(
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
export async function organizationExists(http: QuayExchange, org: string): Promise<boolean> {
  const r = await http.call({
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
export async function createOrganization(
  http: QuayExchange,
  org: string,
  email: string,
): Promise<"created" | "exists"> {
  const route = "POST /api/v1/organization/";
  const r = await http.call({
    method: "POST",
    path: "/api/v1/organization/",
    route,
    body: { name: org, email },
    accept: [400],
  }, true);
  if (r.status === 400) {
    if (/already exists/i.test(r.detail)) return "exists";
    if (/not available/i.test(r.detail)) {
      throw quayError(
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
    throw quayError(r.status, route, r.detail, { errorType: r.errorType });
  }
  return "created";
}

/** `DELETE /organization/{org}`; `false` when it was already gone. */
export async function deleteOrganization(http: QuayExchange, org: string): Promise<boolean> {
  const r = await http.call({
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
export async function listRobots(http: QuayExchange, org: string): Promise<QuayRobot[] | undefined> {
  const r = await http.call({
    method: "GET",
    path: `/api/v1/organization/${enc(org)}/robots?token=true&permissions=false`,
    route: "GET /api/v1/organization/{org}/robots",
    accept: [404],
  }, true);
  if (r.status === 404) return undefined;
  const robots = (r.body as { robots?: QuayRobot[] }).robots ?? [];
  if (robots.length === 0 && !await organizationExists(http, org)) return undefined;
  return robots;
}

/**
 * `GET /organization/{org}/robots/{short}`; `undefined` for an unknown robot (Quay answers 400).
 * A missing organization (400 "Organization does not exist") throws `OrganizationNotFound`.
 */
export async function getRobot(
  http: QuayExchange,
  org: string,
  shortName: string,
): Promise<QuayRobot | undefined> {
  const route = "GET /api/v1/organization/{org}/robots/{robot}";
  const r = await http.call({
    method: "GET",
    path: `/api/v1/organization/${enc(org)}/robots/${enc(shortName)}`,
    route,
    accept: [400, 404],
  }, true);
  if (r.status === 400 && /organization does not exist/i.test(r.detail)) {
    throw organizationMissing(route, org);
  }
  return r.status === 400 || r.status === 404 ? undefined : r.body as QuayRobot;
}

/**
 * `PUT /organization/{org}/robots/{short}`: creates a robot and returns it with its token. A robot
 * that already exists (Quay answers 400 "Existing robot") is read and returned instead.
 */
export async function createRobot(
  http: QuayExchange,
  org: string,
  shortName: string,
  description: string,
): Promise<QuayRobot> {
  const route = "PUT /api/v1/organization/{org}/robots/{robot}";
  const r = await http.call({
    method: "PUT",
    path: `/api/v1/organization/${enc(org)}/robots/${enc(shortName)}`,
    route,
    body: { description },
    accept: [400],
  }, true);
  if (r.status === 400) {
    if (/organization does not exist/i.test(r.detail)) throw organizationMissing(route, org);
    const existing = /existing robot/i.test(r.detail) ? await getRobot(http, org, shortName) : undefined;
    if (existing) return existing;
    if (/value too long/i.test(r.detail)) {
      throw quayError(400, route, `Robot name ${org}+${shortName} is too long for Quay (${r.detail})`, {
        reason: QuayReason.NameTooLong,
      });
    }
    throw quayError(r.status, route, r.detail, { errorType: r.errorType });
  }
  return r.body as QuayRobot;
}

/**
 * `POST /organization/{org}/robots/{short}/regenerate`: a new token for the robot, returned with it.
 * Quay invalidates the old token at once. An unknown robot or organization is a 400.
 */
export async function regenerateRobotToken(
  http: QuayExchange,
  org: string,
  shortName: string,
): Promise<QuayRobot> {
  const r = await http.call({
    method: "POST",
    path: `/api/v1/organization/${enc(org)}/robots/${enc(shortName)}/regenerate`,
    route: "POST /api/v1/organization/{org}/robots/{robot}/regenerate",
  });
  return r.body as QuayRobot;
}

/** `GET /organization/{org}/prototypes`; `undefined` when the organization does not exist. */
export async function listPrototypes(http: QuayExchange, org: string): Promise<QuayPrototype[] | undefined> {
  const r = await http.call({
    method: "GET",
    path: `/api/v1/organization/${enc(org)}/prototypes`,
    route: "GET /api/v1/organization/{org}/prototypes",
    accept: [404],
  }, true);
  if (r.status === 404) return undefined;
  return (r.body as { prototypes?: QuayPrototype[] }).prototypes ?? [];
}

/** `POST /organization/{org}/prototypes`: gives `robot` the role on repositories created from now on. */
export async function createPrototype(
  http: QuayExchange,
  org: string,
  robot: string,
  role: QuayRole,
): Promise<QuayPrototype> {
  const route = "POST /api/v1/organization/{org}/prototypes";
  const r = await http.call({
    method: "POST",
    path: `/api/v1/organization/${enc(org)}/prototypes`,
    route,
    body: { role, delegate: { kind: "user", name: robot } },
    accept: [404],
  }, true);
  if (r.status === 404) throw organizationMissing(route, org);
  return r.body as QuayPrototype;
}

/** `PUT /organization/{org}/prototypes/{id}`: changes a default permission's role. */
export async function updatePrototype(
  http: QuayExchange,
  org: string,
  id: string,
  role: QuayRole,
): Promise<void> {
  const route = "PUT /api/v1/organization/{org}/prototypes/{id}";
  const r = await http.call({
    method: "PUT",
    path: `/api/v1/organization/${enc(org)}/prototypes/${enc(id)}`,
    route,
    body: { role },
    accept: [404],
  }, true);
  if (r.status === 404) {
    if (!await organizationExists(http, org)) throw organizationMissing(route, org);
    throw quayError(404, route, `Default permission ${id} of ${org} is gone`, { retry: "transient" });
  }
}

/** The error of a call whose organization Quay confirmed missing: transient, the caller reads Quay again. */
export function organizationMissing(route: string, org: string): QuayApiError {
  return quayError(404, route, `Organization ${org} does not exist`, {
    reason: QuayReason.OrganizationNotFound,
    retry: "transient",
  });
}
