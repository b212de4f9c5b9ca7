/**
 * @module
 * The repository notification calls of the Quay client (used by `src/notifications/`), each a
 * function over one {@linkcode QuayExchange}.
 */
import { QuayApiError } from "../errors.ts";
import type { QuayExchange } from "./exchange.ts";

const enc = encodeURIComponent;

/** A repository notification as Quay lists it. */
export interface QuayNotification {
  readonly uuid: string;
  readonly title: string | null;
  readonly event: string;
  readonly method: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly event_config: Readonly<Record<string, unknown>>;
  /** Failed deliveries in a row; Quay stops delivering at 3. */
  readonly number_of_failures: number;
}

/** What {@linkcode createRepositoryNotification} sends. */
export interface NewQuayNotification {
  /** e.g. `repo_push`. */
  readonly event: string;
  /** e.g. `webhook`. */
  readonly method: string;
  /** For `webhook`: `{ url }`. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly eventConfig?: Readonly<Record<string, unknown>>;
  readonly title?: string;
}

/** `true` once the call succeeded; `false` for Quay's 400 "No repository notification found". */
async function noneFoundAsFalse(call: Promise<unknown>): Promise<boolean> {
  try {
    await call;
    return true;
  } catch (error) {
    if (
      error instanceof QuayApiError && error.status === 400 &&
      /no repository notification found/i.test(error.message)
    ) {
      return false;
    }
    throw error;
  }
}

/**
 * `GET /repository/{org}/{repo}/notification/`. Quay answers an empty list (not 404) for a
 * repository that does not exist.
 */
export async function listRepositoryNotifications(
  http: QuayExchange,
  org: string,
  repo: string,
): Promise<QuayNotification[]> {
  const r = await http.call({
    method: "GET",
    path: `/api/v1/repository/${enc(org)}/${enc(repo)}/notification/`,
    route: "GET /api/v1/repository/{org}/{repo}/notification/",
  });
  return (r.body as { notifications?: QuayNotification[] }).notifications ?? [];
}

/** `POST /repository/{org}/{repo}/notification/`: the created notification (with its uuid). */
export async function createRepositoryNotification(
  http: QuayExchange,
  org: string,
  repo: string,
  spec: NewQuayNotification,
): Promise<QuayNotification> {
  const r = await http.call({
    method: "POST",
    path: `/api/v1/repository/${enc(org)}/${enc(repo)}/notification/`,
    route: "POST /api/v1/repository/{org}/{repo}/notification/",
    body: {
      event: spec.event,
      method: spec.method,
      config: spec.config,
      eventConfig: spec.eventConfig ?? {},
      ...(spec.title === undefined ? {} : { title: spec.title }),
    },
  });
  return r.body as QuayNotification;
}

/** `DELETE /repository/{org}/{repo}/notification/{uuid}`; `false` when there was none (Quay answers 400). */
export async function deleteRepositoryNotification(
  http: QuayExchange,
  org: string,
  repo: string,
  uuid: string,
): Promise<boolean> {
  return await noneFoundAsFalse(http.call({
    method: "DELETE",
    path: `/api/v1/repository/${enc(org)}/${enc(repo)}/notification/${enc(uuid)}`,
    route: "DELETE /api/v1/repository/{org}/{repo}/notification/{uuid}",
  }));
}

/**
 * `POST /repository/{org}/{repo}/notification/{uuid}`: resets the failure count. Quay stops
 * delivering a notification after 3 failed deliveries until this is called.
 */
export async function resetRepositoryNotificationFailures(
  http: QuayExchange,
  org: string,
  repo: string,
  uuid: string,
): Promise<boolean> {
  return await noneFoundAsFalse(http.call({
    method: "POST",
    path: `/api/v1/repository/${enc(org)}/${enc(repo)}/notification/${enc(uuid)}`,
    route: "POST /api/v1/repository/{org}/{repo}/notification/{uuid}",
  }));
}
