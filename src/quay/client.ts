/**
 * @module
 * The Quay REST client: the narrow set of calls quay-bridge makes, each returning typed data or
 * throwing `QuayApiError` (`errors.ts`), for one Quay instance and one token. It binds the call modules
 * to one {@linkcode QuayExchange}, which they all share (concurrency cap, pacing, proof that the
 * token was accepted):
 * - `exchange.ts`: one request and its answer — TLS, timeouts, quick retries, errors from the real
 *   response, a refused token read as `TokenInvalid` (`pacing.ts`: concurrency and rate limits);
 * - `organizations_api.ts`: the token's user, organizations, robots, default permissions;
 * - `repositories_api.ts`: repositories and robots' permissions on them;
 * - `notifications_api.ts`: repository notifications; `audit_log_api.ts`: the audit log;
 * - `reasons.ts`: the reasons ({@linkcode QuayReason}) it classifies beyond the HTTP status.
 *
 * The documentation of each call is on its function in those modules.
 */
import type { QuayRole } from "../integration_spec.ts";
import {
  aggregateSuperuserLogs,
  listSuperuserLogs,
  type QuayLogCounts,
  type QuayLogPage,
} from "./audit_log_api.ts";
import { QuayExchange, type QuayExchangeOptions } from "./exchange.ts";
import * as notifications from "./notifications_api.ts";
import type { NewQuayNotification, QuayNotification } from "./notifications_api.ts";
import * as organizations from "./organizations_api.ts";
import type { QuayOrganization, QuayPrototype, QuayRobot, QuayUser } from "./organizations_api.ts";
import * as repositories from "./repositories_api.ts";
import type { QuayRepository } from "./repositories_api.ts";

export type { QuayLogCount, QuayLogCounts, QuayLogEntry, QuayLogPage } from "./audit_log_api.ts";
export type { QuayCallObserver } from "./exchange.ts";
export type { NewQuayNotification, QuayNotification } from "./notifications_api.ts";
export type { QuayOrganization, QuayPrototype, QuayRobot, QuayUser } from "./organizations_api.ts";
export type { QuayRepository } from "./repositories_api.ts";
export { QuayReason } from "./reasons.ts";

/** Options for {@linkcode QuayClient}. */
export type QuayClientOptions = QuayExchangeOptions;

/** A Quay API client for one Quay instance and token. */
export class QuayClient {
  readonly #http: QuayExchange;

  constructor(options: QuayClientOptions) {
    this.#http = new QuayExchange(options);
  }

  /** Releases pooled connections. */
  close(): void {
    this.#http.close();
  }

  /** The current pacing rate in requests/s (`Infinity` until Quay rate-limits this client). */
  get rate(): number {
    return this.#http.rate;
  }

  // ---- organizations, robots, default permissions (organizations_api.ts) -----------------------

  /** See {@linkcode organizations.getUser}. */
  getUser(): Promise<QuayUser> {
    return organizations.getUser(this.#http);
  }
  /** See {@linkcode organizations.getOrganization}. */
  getOrganization(org: string): Promise<QuayOrganization | undefined> {
    return organizations.getOrganization(this.#http, org);
  }
  /** See {@linkcode organizations.organizationExists}. */
  organizationExists(org: string): Promise<boolean> {
    return organizations.organizationExists(this.#http, org);
  }
  /** See {@linkcode organizations.createOrganization}. */
  createOrganization(org: string, email: string): Promise<"created" | "exists"> {
    return organizations.createOrganization(this.#http, org, email);
  }
  /** See {@linkcode organizations.deleteOrganization}. */
  deleteOrganization(org: string): Promise<boolean> {
    return organizations.deleteOrganization(this.#http, org);
  }
  /** See {@linkcode organizations.listRobots}. */
  listRobots(org: string): Promise<QuayRobot[] | undefined> {
    return organizations.listRobots(this.#http, org);
  }
  /** See {@linkcode organizations.getRobot}. */
  getRobot(org: string, shortName: string): Promise<QuayRobot | undefined> {
    return organizations.getRobot(this.#http, org, shortName);
  }
  /** See {@linkcode organizations.createRobot}. */
  createRobot(org: string, shortName: string, description: string): Promise<QuayRobot> {
    return organizations.createRobot(this.#http, org, shortName, description);
  }
  /** See {@linkcode organizations.regenerateRobotToken}. */
  regenerateRobotToken(org: string, shortName: string): Promise<QuayRobot> {
    return organizations.regenerateRobotToken(this.#http, org, shortName);
  }
  /** See {@linkcode organizations.listPrototypes}. */
  listPrototypes(org: string): Promise<QuayPrototype[] | undefined> {
    return organizations.listPrototypes(this.#http, org);
  }
  /** See {@linkcode organizations.createPrototype}. */
  createPrototype(org: string, robot: string, role: QuayRole): Promise<QuayPrototype> {
    return organizations.createPrototype(this.#http, org, robot, role);
  }
  /** See {@linkcode organizations.updatePrototype}. */
  updatePrototype(org: string, id: string, role: QuayRole): Promise<void> {
    return organizations.updatePrototype(this.#http, org, id, role);
  }

  // ---- repositories (repositories_api.ts) --------------------------------------------------------

  /** See {@linkcode repositories.listRepositories}. */
  listRepositories(org: string): Promise<QuayRepository[]> {
    return repositories.listRepositories(this.#http, org);
  }
  /** See {@linkcode repositories.createRepository}. */
  createRepository(org: string, name: string, description: string): Promise<"created" | "exists"> {
    return repositories.createRepository(this.#http, org, name, description);
  }
  /** See {@linkcode repositories.deleteRepository}. */
  deleteRepository(org: string, name: string): Promise<boolean> {
    return repositories.deleteRepository(this.#http, org, name);
  }
  /** See {@linkcode repositories.repositoryExists}. */
  repositoryExists(org: string, name: string): Promise<boolean> {
    return repositories.repositoryExists(this.#http, org, name);
  }
  /** See {@linkcode repositories.setRepositoryPermission}. */
  setRepositoryPermission(org: string, repo: string, user: string, role: QuayRole): Promise<void> {
    return repositories.setRepositoryPermission(this.#http, org, repo, user, role);
  }

  // ---- repository notifications (notifications_api.ts) ------------------------------------------

  /** See {@linkcode notifications.listRepositoryNotifications}. */
  listRepositoryNotifications(org: string, repo: string): Promise<QuayNotification[]> {
    return notifications.listRepositoryNotifications(this.#http, org, repo);
  }
  /** See {@linkcode notifications.createRepositoryNotification}. */
  createRepositoryNotification(
    org: string,
    repo: string,
    spec: NewQuayNotification,
  ): Promise<QuayNotification> {
    return notifications.createRepositoryNotification(this.#http, org, repo, spec);
  }
  /** See {@linkcode notifications.deleteRepositoryNotification}. */
  deleteRepositoryNotification(org: string, repo: string, uuid: string): Promise<boolean> {
    return notifications.deleteRepositoryNotification(this.#http, org, repo, uuid);
  }
  /** See {@linkcode notifications.resetRepositoryNotificationFailures}. */
  resetRepositoryNotificationFailures(org: string, repo: string, uuid: string): Promise<boolean> {
    return notifications.resetRepositoryNotificationFailures(this.#http, org, repo, uuid);
  }

  // ---- audit log (audit_log_api.ts) --------------------------------------------------------------

  /** See {@linkcode listSuperuserLogs}. */
  listSuperuserLogs(
    options: { startDay: string; endDay: string; nextPage?: string | undefined },
  ): Promise<QuayLogPage> {
    return listSuperuserLogs(this.#http, options);
  }

  /** See {@linkcode aggregateSuperuserLogs}. */
  aggregateSuperuserLogs(options: { startDay: string; endDay: string }): Promise<QuayLogCounts> {
    return aggregateSuperuserLogs(this.#http, options);
  }
}
