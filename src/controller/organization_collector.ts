/**
 * @module
 * The organization collector: retries, with backoff, the deletion of each organization a
 * QuayIntegration lists as left behind (`left_behind.ts`), and removes the entry once Quay no longer
 * has it. One key per QuayIntegration, leader only.
 *
 * It deletes only what the list names — organizations of namespaces quay-bridge managed and was
 * itself deleting under policy `Delete` — and, before each attempt, makes sure nothing maps to the
 * organization again: a namespace of that name selected by a valid QuayIntegration whose prefix
 * gives that organization takes it back (the entry is dropped, the organization kept), and any other
 * namespace of that name postpones the attempt. While the policy is `Retain`, nothing is deleted.
 * Each outcome is an Event on the QuayIntegration; the list is in its status and in the metric
 * `quay_bridge_organizations_left_behind`.
 */
import { messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import { organizationName } from "../names.ts";
import type { EventSink } from "./events.ts";
import type { IntegrationRegistry } from "./integration_registry.ts";
import type { KeyedCache } from "./namespace_facts.ts";
import type { QuayPort } from "./namespace_ports.ts";
import {
  collectDelay,
  type LeftBehindOrganization,
  type LeftBehindStore,
  readLeftBehind,
} from "./left_behind.ts";
import { type Action, AWAIT_CHANGE, requeueAfter } from "./queue.ts";
import type { NamespaceView } from "./views.ts";

/** Everything the collector reads and writes through. */
export interface CollectorContext {
  readonly registry: Pick<IntegrationRegistry, "get" | "entries" | "credentials" | "resolve">;
  /** The Quay port of a valid integration. */
  readonly quay: (integrationKey: string) => Pick<QuayPort, "deleteOrganization"> | undefined;
  readonly namespaces: KeyedCache<NamespaceView>;
  readonly store: LeftBehindStore;
  readonly events: EventSink;
  readonly logger: Logger;
  /** First retry delay, doubled per attempt up to an hour (the operator passes `--deletion-budget`). */
  readonly retryBaseMs: number;
  /** Called after the list of `key` changed (its status aggregates the list). */
  readonly onChange?: (integrationKey: string) => void;
  readonly now: () => number;
}

/** What one attempt came to, by organization. */
type Result =
  | { readonly kind: "collected" }
  | { readonly kind: "reclaimed"; readonly namespace: string }
  | { readonly kind: "postponed"; readonly why: string }
  | { readonly kind: "failed"; readonly error: string };

/**
 * Which valid QuayIntegration's namespace maps to `organization` now, if any: a namespace of that name
 * selected by an integration whose prefix gives exactly that organization.
 */
function claimant(ctx: CollectorContext, organization: string): { namespace: string } | undefined {
  for (const entry of ctx.registry.entries()) {
    if (!entry.parsed.ok) continue;
    const prefix = `${entry.parsed.integration.organizationPrefix}_`;
    if (!organization.startsWith(prefix)) continue;
    const name = organization.slice(prefix.length);
    const ns = ctx.namespaces.get(name);
    if (!ns || ns.deleting) continue;
    const selection = ctx.registry.resolve(ns);
    if (selection.kind !== "managed") continue;
    if (organizationName(selection.integration.organizationPrefix, name) === organization) {
      return { namespace: name };
    }
  }
  return undefined;
}

/** Retries the due left-behind organizations of the QuayIntegration `key`. */
export async function reconcileLeftBehind(ctx: CollectorContext, key: string): Promise<Action> {
  const entry = ctx.registry.get(key);
  if (!entry?.parsed.ok) return AWAIT_CHANGE;
  const integration = entry.parsed.integration;
  const listed = readLeftBehind(entry.object.status);
  if (listed.length === 0) return AWAIT_CHANGE;
  const target = {
    apiVersion: entry.object.apiVersion ?? "",
    kind: "QuayIntegration",
    name: integration.name,
    uid: entry.object.metadata?.uid,
  };
  // Retain: the admin wants organizations kept. The entries stay listed; switching back resumes.
  if (integration.organizationDeletionPolicy === "Retain") return AWAIT_CHANGE;
  const now = ctx.now();
  const client = ctx.quay(key);
  const usable = ctx.registry.credentials(key)?.state === "ok" && client !== undefined;
  const results = new Map<string, Result>();
  for (const e of listed) {
    if (Date.parse(e.nextAttemptAt) > now) continue;
    const claimedBy = claimant(ctx, e.organization);
    if (claimedBy) {
      results.set(e.organization, { kind: "reclaimed", namespace: claimedBy.namespace });
      continue;
    }
    if (ctx.namespaces.get(e.namespace)) {
      results.set(e.organization, {
        kind: "postponed",
        why: `a namespace named ${e.namespace} exists again`,
      });
      continue;
    }
    if (!usable || !client) {
      results.set(e.organization, { kind: "failed", error: "no usable Quay credentials" });
      continue;
    }
    try {
      await client.deleteOrganization(e.organization);
      results.set(e.organization, { kind: "collected" });
    } catch (error) {
      results.set(e.organization, { kind: "failed", error: messageOf(error) });
    }
  }
  if (results.size > 0) {
    for (const [organization, result] of results) report(ctx, target, organization, result);
    // Applied to the list as it is now (the apply may have added entries meanwhile), by organization.
    await ctx.store.update(key, (current) =>
      current.flatMap((e): LeftBehindOrganization[] => {
        const result = results.get(e.organization);
        if (!result) return [e];
        if (result.kind === "collected" || result.kind === "reclaimed") return [];
        const attempts = e.attempts + 1;
        return [{
          ...e,
          attempts,
          nextAttemptAt: new Date(now + collectDelay(attempts, ctx.retryBaseMs)).toISOString(),
          lastError: result.kind === "failed" ? result.error : result.why,
        }];
      }));
    ctx.onChange?.(key);
  }
  // The next due entry, from the list as this pass leaves it.
  const remaining = listed.filter((e) => {
    const r = results.get(e.organization);
    return r === undefined || r.kind === "failed" || r.kind === "postponed";
  });
  if (remaining.length === 0) return AWAIT_CHANGE;
  const next = Math.min(...remaining.map((e) => {
    const attempts = results.has(e.organization) ? e.attempts + 1 : e.attempts;
    return results.has(e.organization)
      ? now + collectDelay(attempts, ctx.retryBaseMs)
      : Date.parse(e.nextAttemptAt);
  }));
  return requeueAfter(Math.max(1_000, next - now));
}

function report(
  ctx: CollectorContext,
  target: { apiVersion: string; kind: string; name: string; uid: string | undefined },
  organization: string,
  result: Result,
): void {
  switch (result.kind) {
    case "collected":
      ctx.events.emit(
        target,
        "Normal",
        "OrganizationCollected",
        `Deleted left-behind Quay organization ${organization} and its robots`,
      );
      ctx.logger.info("left-behind organization deleted", { organization });
      return;
    case "reclaimed":
      ctx.events.emit(
        target,
        "Normal",
        "OrganizationReclaimed",
        `Kept left-behind Quay organization ${organization}: namespace ${result.namespace} maps to it again`,
      );
      return;
    case "postponed":
      ctx.logger.info("left-behind organization postponed", { organization, why: result.why });
      return;
    case "failed":
      ctx.events.emit(
        target,
        "Warning",
        "OrganizationCollectionFailed",
        `Could not delete left-behind Quay organization ${organization} (${result.error}); retried with backoff`,
      );
      ctx.logger.warn("left-behind organization not deleted", { organization, error: result.error });
  }
}

/** Left-behind organizations by QuayIntegration name (the metric). */
export function leftBehindCounts(
  registry: Pick<IntegrationRegistry, "entries">,
): { integration: string; count: number }[] {
  return registry.entries().map((e) => ({
    integration: e.object.metadata?.name ?? "",
    count: readLeftBehind(e.object.status).length,
  }));
}
