/**
 * @module
 * The notification controller: for every repository quay-bridge manages (one per ImageStream of a
 * managed namespace), keeps exactly one Quay repository notification — event `repo_push`, method
 * `webhook`, titled `quay-bridge:<integration>` — whose URL is the integration's receiver URL for
 * that repository (`auth.ts`). Its queue key is the namespace. Each run lists the organization's
 * repositories and each repository's notifications, then:
 *
 * - creates the notification where it is missing (also when deleted by hand in Quay);
 * - replaces ours whose URL differs (the URL or the secret changed; Quay has no update call);
 * - resets the failure count of ours when Quay disabled it (3 failed deliveries in a row);
 * - deletes ours on repositories whose ImageStream is gone (retained repositories) and, when the
 *   integration's `spec.notifications` is removed, on every repository (once per process, and only
 *   for integrations whose notification Secret exists, so integrations that never used
 *   notifications cost no Quay call);
 *
 * and asks to run again after the resync period. Notifications of others are never touched.
 */
import type { Integration } from "../integration_spec.ts";
import type { Logger } from "../log.ts";
import { organizationName } from "../names.ts";
import type { QuayClient, QuayNotification } from "../quay/client.ts";
import { type Action, AWAIT_CHANGE, requeueAfter } from "../controller/queue.ts";
import { notificationUrl } from "./auth.ts";

/** Title of the notifications quay-bridge owns. */
export function notificationTitle(integration: string): string {
  return `quay-bridge:${integration}`;
}

/** Quay stops delivering a notification with this many failures. */
const DISABLED_AT = 3;
/** Retry soon when an ImageStream's repository is not created yet. */
const MISSING_REPOSITORY_RETRY_MS = 5_000;

/** The facts one namespace's reconcile needs. */
export interface NamespaceTarget {
  readonly namespace: string;
  readonly integration: Integration;
  readonly client: QuayClient;
  /** ImageStream names of the namespace. */
  readonly imageStreams: ReadonlySet<string>;
}

/** What the controller reads and writes through. */
export interface NotificationControllerContext {
  /** The target of a namespace, or `undefined` when it is not managed (or being deleted). */
  readonly target: (namespace: string) => NamespaceTarget | undefined;
  /** The secret of an integration, created if needed. */
  readonly ensureSecret: (integration: string) => Promise<string>;
  /** True when an integration has (had) notifications: its Secret exists. */
  readonly hadNotifications: (integration: string) => boolean;
  readonly logger: Logger;
  readonly resyncMs: number;
  /** Namespaces already cleaned after notifications were turned off (per integration). */
  readonly cleaned: Set<string>;
}

/** One change made in Quay (returned for logs and tests). */
export interface NotificationChange {
  readonly repository: string;
  readonly change: "created" | "replaced" | "reset" | "deleted";
}

/**
 * Plans the changes for one repository: which of ours to delete, whether to create, whether to
 * reset. `url` is `undefined` when the repository should have none of ours. Pure.
 */
export function planRepository(
  existing: readonly QuayNotification[],
  title: string,
  url: string | undefined,
): { delete: string[]; create: boolean; reset: string | undefined } {
  const ours = existing.filter((n) => n.title === title);
  if (url === undefined) return { delete: ours.map((n) => n.uuid), create: false, reset: undefined };
  const keep = ours.find((n) => n.event === "repo_push" && n.method === "webhook" && n.config.url === url);
  return {
    delete: ours.filter((n) => n !== keep).map((n) => n.uuid),
    create: keep === undefined,
    reset: keep && keep.number_of_failures >= DISABLED_AT ? keep.uuid : undefined,
  };
}

async function apply(
  client: QuayClient,
  org: string,
  repo: string,
  title: string,
  url: string | undefined,
  changes: NotificationChange[],
): Promise<void> {
  const existing = await client.listRepositoryNotifications(org, repo);
  const plan = planRepository(existing, title, url);
  const repository = `${org}/${repo}`;
  for (const uuid of plan.delete) {
    await client.deleteRepositoryNotification(org, repo, uuid);
    if (!plan.create) changes.push({ repository, change: "deleted" });
  }
  if (plan.create && url !== undefined) {
    await client.createRepositoryNotification(org, repo, {
      event: "repo_push",
      method: "webhook",
      config: { url },
      eventConfig: {},
      title,
    });
    changes.push({ repository, change: plan.delete.length > 0 ? "replaced" : "created" });
  }
  if (plan.reset) {
    await client.resetRepositoryNotificationFailures(org, repo, plan.reset);
    changes.push({ repository, change: "reset" });
  }
}

/** Reconciles the notifications of one namespace's repositories. */
export async function reconcileNamespaceNotifications(
  ctx: NotificationControllerContext,
  namespace: string,
): Promise<{ action: Action; changes: NotificationChange[] }> {
  const target = ctx.target(namespace);
  const changes: NotificationChange[] = [];
  if (!target) return { action: AWAIT_CHANGE, changes };
  const { integration, client } = target;
  const org = organizationName(integration.organizationPrefix, namespace);
  const title = notificationTitle(integration.name);
  const settings = integration.notifications;
  const cleanKey = `${integration.name}/${namespace}`;

  if (!settings) {
    if (!ctx.hadNotifications(integration.name) || ctx.cleaned.has(cleanKey)) {
      return { action: AWAIT_CHANGE, changes };
    }
    for (const repo of await client.listRepositories(org)) {
      await apply(client, org, repo.name, title, undefined, changes);
    }
    ctx.cleaned.add(cleanKey);
    log(ctx, namespace, changes);
    return { action: AWAIT_CHANGE, changes };
  }
  ctx.cleaned.delete(cleanKey);

  const secret = await ctx.ensureSecret(integration.name);
  const repositories = new Set((await client.listRepositories(org)).map((r) => r.name));
  for (const repo of repositories) {
    const url = target.imageStreams.has(repo)
      ? notificationUrl(settings.url, secret, integration.name, org, repo)
      : undefined;
    await apply(client, org, repo, title, url, changes);
  }
  log(ctx, namespace, changes);
  const waiting = [...target.imageStreams].some((name) => !repositories.has(name));
  return { action: requeueAfter(waiting ? MISSING_REPOSITORY_RETRY_MS : ctx.resyncMs), changes };
}

function log(ctx: NotificationControllerContext, namespace: string, changes: NotificationChange[]): void {
  if (changes.length > 0) ctx.logger.info("repository notifications changed", { namespace, changes });
}
