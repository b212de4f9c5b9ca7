/**
 * @module
 * The repository calls of the Quay client: list, create, delete, and grant a robot on a
 * repository, each a function over one {@linkcode QuayExchange}. Quay answers writes into a missing
 * organization or repository with an HTML 500, and `DELETE` of a missing repository with 204: the
 * calls check the parent or the repository and report `OrganizationNotFound`/`RepositoryNotFound`
 * or "already gone" instead. An empty list may be Quay's anonymous answer to a refused token, so it
 * is trusted only with proof that the token was accepted.
 */
import type { QuayApiError } from "../errors.ts";
import type { QuayRole } from "../integration_spec.ts";
import { type CallResult, quayError, type QuayExchange } from "./exchange.ts";
import { getUser, organizationExists, organizationMissing } from "./organizations_api.ts";
import { QuayReason } from "./reasons.ts";

const enc = encodeURIComponent;

/** A repository as listed. */
export interface QuayRepository {
  readonly namespace: string;
  readonly name: string;
  readonly description?: string | null;
}

/**
 * `GET /repository?namespace={org}`, every page. Quay lists an anonymous caller's view (public
 * repositories only) for a refused token, so an empty list is trusted only when the token was
 * accepted on an authenticated-only route within the last 10 s (otherwise `GET /user/` is asked,
 * which throws `TokenInvalid` for a refused token).
 */
export async function listRepositories(http: QuayExchange, org: string): Promise<QuayRepository[]> {
  const out: QuayRepository[] = [];
  let next: string | undefined;
  do {
    const query = `namespace=${enc(org)}` + (next ? `&next_page=${enc(next)}` : "");
    const r = await http.call({
      method: "GET",
      path: `/api/v1/repository?${query}`,
      route: "GET /api/v1/repository",
    });
    const body = r.body as { repositories?: QuayRepository[]; next_page?: string };
    out.push(...(body.repositories ?? []));
    next = body.next_page || undefined;
  } while (next);
  if (out.length === 0 && !http.tokenRecentlyAccepted()) await getUser(http);
  return out;
}

/**
 * `POST /repository`: a private image repository; `"exists"` when it already exists. A missing
 * organization (Quay fails with a 500 HTML page) throws `OrganizationNotFound`.
 */
export async function createRepository(
  http: QuayExchange,
  org: string,
  name: string,
  description: string,
): Promise<"created" | "exists"> {
  const route = "POST /api/v1/repository";
  const r = await http.call({
    method: "POST",
    path: "/api/v1/repository",
    route,
    body: { namespace: org, repository: name, visibility: "private", description, repo_kind: "image" },
    accept: [400, 500],
  }, true);
  if (r.status === 500) throw await serverErrorOrMissingParent(http, r, route, org);
  if (r.status === 400) {
    if (/already exists/i.test(r.detail)) return "exists";
    throw quayError(r.status, route, r.detail, { errorType: r.errorType });
  }
  return "created";
}

/**
 * `DELETE /repository/{org}/{repo}`; `false` when it was already gone. Quay answers 204 for a
 * repository that does not exist (and 500 in a missing organization), so the repository is read
 * first: `true` means this call deleted it.
 */
export async function deleteRepository(http: QuayExchange, org: string, name: string): Promise<boolean> {
  if (!await repositoryExists(http, org, name)) return false;
  const route = "DELETE /api/v1/repository/{org}/{repo}";
  const r = await http.call({
    method: "DELETE",
    path: `/api/v1/repository/${enc(org)}/${enc(name)}`,
    route,
    accept: [404, 500],
  }, true);
  if (r.status === 500) {
    // Gone between the read and the delete (with its organization) is "already gone".
    if (!await repositoryExists(http, org, name)) return false;
    throw quayError(500, route, r.parsed ? r.detail : "Non-JSON error body");
  }
  return r.status !== 404;
}

/** `GET /repository/{org}/{repo}`: whether the repository exists (404 also for a missing organization). */
export async function repositoryExists(http: QuayExchange, org: string, name: string): Promise<boolean> {
  const r = await http.call({
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
export async function setRepositoryPermission(
  http: QuayExchange,
  org: string,
  repo: string,
  user: string,
  role: QuayRole,
): Promise<void> {
  const route = "PUT /api/v1/repository/{org}/{repo}/permissions/user/{user}";
  const r = await http.call({
    method: "PUT",
    path: `/api/v1/repository/${enc(org)}/${enc(repo)}/permissions/user/${enc(user)}`,
    route,
    body: { role },
    accept: [500],
  }, true);
  if (r.status === 500) throw await serverErrorOrMissingParent(http, r, route, org, repo);
}

/** A 500 on a write: Quay's answer for a missing organization or repository, else a server error. */
async function serverErrorOrMissingParent(
  http: QuayExchange,
  r: CallResult,
  route: string,
  org: string,
  repo?: string,
): Promise<QuayApiError> {
  // Quay's own failures are JSON; the bare HTML page is Flask's answer to an exception, which is
  // what a write into a missing organization or repository raises.
  if (r.parsed) return quayError(r.status, route, r.detail, { errorType: r.errorType });
  if (!await organizationExists(http, org)) return organizationMissing(route, org);
  if (repo !== undefined && !await repositoryExists(http, org, repo)) {
    return quayError(404, route, `Repository ${org}/${repo} does not exist`, {
      reason: QuayReason.RepositoryNotFound,
      retry: "transient",
    });
  }
  return quayError(r.status, route, r.parsed ? r.detail : "Non-JSON error body", {
    errorType: r.errorType,
  });
}
