/**
 * @module
 * The QuayIntegration reconcile: validates the resource, checks its credentials against Quay, and
 * writes a status an admin can act on — `Ready`, `CredentialsValid`, `QuayReachable` and
 * `Degraded` conditions with reasons and `observedGeneration`, counts of what it manages, and the
 * time of the last sync. Namespace outcomes are aggregated here, so a failing or overlapping
 * namespace shows on the resource that selects it.
 *
 * `QuayReachable` follows every Quay call as it happens: the registry's reachability record wakes
 * this reconcile when it flips, and while Quay is unreachable a cheap probe every few seconds lets
 * it recover without traffic.
 */
import { isQuayUnavailable, isTokenRejected, messageOf, QuayApiError, reasonOf } from "../errors.ts";
import { API_LEGACY, type QuayIntegrationObject } from "../integration_spec.ts";
import type { KubeClient } from "../kube/client.ts";
import { LEGACY_QUAY_INTEGRATIONS, QUAY_INTEGRATIONS } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import type { AuditState } from "./quay_audit.ts";
import type { EventSink } from "./events.ts";
import type { CredentialsState, IntegrationRegistry } from "./integration_registry.ts";
import type { NamespaceOutcome } from "./namespace_plan.ts";
import { readLeftBehind } from "./left_behind.ts";
import { type Action, AWAIT_CHANGE, requeueAfter } from "./queue.ts";

/** A `metav1.Condition`. */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
}

/** What a credentials check found. */
export type CheckOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string; readonly message: string; readonly unreachable: boolean };

/** Result of the last credentials check, by integration key. */
export interface CredentialsCheck {
  readonly tokenFingerprint: string;
  readonly at: number;
  readonly outcome: CheckOutcome;
}

/** Everything the integration reconcile reads and writes through. */
export interface IntegrationContext {
  readonly kube: KubeClient;
  readonly integrations: IntegrationRegistry;
  readonly outcomes: ReadonlyMap<string, NamespaceOutcome>;
  readonly checks: Map<string, CredentialsCheck>;
  readonly events: EventSink;
  readonly logger: Logger;
  readonly resyncMs: number;
  /** How soon a failed check is repeated. @default 60_000 */
  readonly recheckMs?: number;
  /**
   * While Quay is unreachable and no other call has been made for this long, the status check
   * probes it (`GET /api/v1/user/`), so reachability recovers without traffic. @default 10_000
   */
  readonly probeMs?: number;
  /** Called when a check changed whether Quay accepts the token (namespaces wait on it). */
  readonly onCredentials?: (key: string) => void;
  /** How the integration's audit log is followed (`quay_audit.ts`); no condition without it. */
  readonly audit?: ((key: string) => AuditState | undefined) | undefined;
  readonly now: () => number;
}

/** Whether drift made by hand in Quay is found from its audit log or only by the plain resync. */
function auditCondition(
  state: AuditState,
  generation: number,
): Omit<Condition, "lastTransitionTime"> {
  switch (state.kind) {
    case "following":
      return condition(
        "AuditLogFollowed",
        "True",
        "Following",
        "Quay's audit log is read: organizations changed by hand are re-read within a poll interval",
        generation,
      );
    case "unavailable":
      return condition(
        "AuditLogFollowed",
        "False",
        "AuditLogUnavailable",
        `Quay's super-user audit log cannot be read (${state.reason}); every synced namespace is re-read ` +
          `from Quay each --resync period instead`,
        generation,
      );
    case "pending":
      return condition(
        "AuditLogFollowed",
        "Unknown",
        "NotReadYet",
        "Quay's audit log is not read yet",
        generation,
      );
  }
}

function fingerprint(token: string): string {
  // Not a secret-grade hash: it only tells whether the token changed since the last check.
  let h = 0x811c9dc5;
  for (let i = 0; i < token.length; i++) h = Math.imul(h ^ token.charCodeAt(i), 0x01000193);
  return `${token.length}:${(h >>> 0).toString(16)}`;
}

function condition(
  type: string,
  status: Condition["status"],
  reason: string,
  message: string,
  generation: number,
): Omit<Condition, "lastTransitionTime"> {
  return { type, status, reason, message, observedGeneration: generation };
}

function list(names: string[], limit = 5): string {
  const shown = names.slice(0, limit).join(", ");
  return names.length > limit ? `${shown} and ${names.length - limit} more` : shown;
}

/** Reconciles the QuayIntegration under `key` (`<apiVersion>/<name>`). */
export async function reconcileIntegration(ctx: IntegrationContext, key: string): Promise<Action> {
  const entry = ctx.integrations.get(key);
  if (!entry) {
    ctx.checks.delete(key);
    return AWAIT_CHANGE;
  }
  const object = entry.object;
  const name = object.metadata?.name ?? "";
  const generation = object.metadata?.generation ?? 0;
  const target = {
    apiVersion: object.apiVersion ?? "",
    kind: "QuayIntegration",
    name,
    uid: object.metadata?.uid,
  };
  const conditions: Omit<Condition, "lastTransitionTime">[] = [];
  const degraded: { reason: string; message: string }[] = [];
  let ready: { ok: boolean; reason: string; message: string };
  let prefix: string | undefined;
  let checked: CheckOutcome | undefined;
  let quayDown = false;

  if (!entry.parsed.ok) {
    const problems = entry.parsed.problems;
    const message = problems.map((p) => p.message).join("; ");
    for (const p of problems) ctx.events.emit(target, "Warning", p.reason, p.message);
    conditions.push(
      condition("CredentialsValid", "Unknown", "SpecInvalid", "Fix the spec first", generation),
    );
    conditions.push(condition("QuayReachable", "Unknown", "SpecInvalid", "Fix the spec first", generation));
    degraded.push({ reason: problems[0]?.reason ?? "InvalidSpec", message });
    ready = { ok: false, reason: problems[0]?.reason ?? "InvalidSpec", message };
  } else {
    const integration = entry.parsed.integration;
    prefix = integration.organizationPrefix;
    const credentials = ctx.integrations.credentials(key);
    if (credentials === undefined || credentials.state === "missing") {
      const problem = credentials?.problem ?? { reason: "CredentialsPending", message: "Reading the Secret" };
      conditions.push(condition("CredentialsValid", "False", problem.reason, problem.message, generation));
      conditions.push(
        condition("QuayReachable", "Unknown", problem.reason, "No token to call Quay with", generation),
      );
      ready = { ok: false, reason: problem.reason, message: problem.message };
      if (credentials) ctx.events.emit(target, "Warning", problem.reason, problem.message);
    } else {
      const check = await checkCredentials(ctx, key, credentials);
      checked = check.outcome;
      // Every Quay call (a namespace pass, the webhook, this check) updates reachability, so it is
      // fresher than the check: it alone decides QuayReachable.
      const reach = ctx.integrations.reachability(key);
      const checkDown = !check.outcome.ok && check.outcome.unreachable
        ? { reason: check.outcome.reason, message: check.outcome.message }
        : undefined;
      // When the check failed too, its error names the cause (DNS, TLS, proxy); a call only tells that
      // there was no answer.
      const down = reach ? (reach.reachable ? undefined : checkDown ?? reach) : checkDown;
      quayDown = down !== undefined;
      if (check.outcome.ok) {
        conditions.push(
          condition("CredentialsValid", "True", "TokenAccepted", "Quay accepted the token", generation),
        );
      } else if (check.outcome.unreachable) {
        conditions.push(
          condition("CredentialsValid", "Unknown", "QuayUnreachable", "Cannot check", generation),
        );
      } else {
        conditions.push(
          condition("CredentialsValid", "False", check.outcome.reason, check.outcome.message, generation),
        );
      }
      conditions.push(
        down
          ? condition("QuayReachable", "False", down.reason, down.message, generation)
          : condition("QuayReachable", "True", "Reachable", `${integration.quayUrl} answers`, generation),
      );
      if (!check.outcome.ok && !check.outcome.unreachable) {
        ready = { ok: false, reason: "CredentialsInvalid", message: check.outcome.message };
      } else if (down || !check.outcome.ok) {
        const message = down?.message ?? (check.outcome.ok ? "" : check.outcome.message);
        ready = { ok: false, reason: "QuayUnreachable", message };
      } else {
        ready = { ok: true, reason: "Ready", message: "Syncing selected namespaces" };
      }
      if (!ready.ok) ctx.events.emit(target, "Warning", ready.reason, ready.message);
    }
    const previousPrefix = (object.status as { organizationPrefix?: string } | undefined)?.organizationPrefix;
    if (previousPrefix && previousPrefix !== prefix) {
      const message =
        `Organization prefix changed from "${previousPrefix}" to "${prefix}": organizations named ` +
        `${previousPrefix}_<namespace> are no longer managed and stay in Quay; namespaces get new ` +
        `${prefix}_<namespace> organizations. Revert spec.clusterID/organizationPrefix to keep the old ones.`;
      degraded.push({ reason: "OrganizationPrefixChanged", message });
      ctx.events.emit(target, "Warning", "OrganizationPrefixChanged", message);
    }
  }

  // Aggregate the namespaces this integration selects.
  let managed = 0;
  let repositories = 0;
  const failed: string[] = [];
  const overlapping: string[] = [];
  for (const [namespace, outcome] of ctx.outcomes) {
    if (outcome.state === "Overlap" && outcome.overlappingKeys?.includes(key)) overlapping.push(namespace);
    if (outcome.integrationKey !== key) continue;
    if (outcome.state === "Ready") {
      managed++;
      repositories += outcome.repositories ?? 0;
    } else if (outcome.state === "Failed") {
      failed.push(`${namespace} (${outcome.reason})`);
    }
  }
  if (overlapping.length > 0) {
    degraded.push({
      reason: "OverlappingSelection",
      message: `Namespaces also selected by another QuayIntegration are not synced: ${
        list(overlapping.sort())
      }`,
    });
  }
  const leftBehind = readLeftBehind(object.status);
  if (leftBehind.length > 0) {
    const retained = entry.parsed.ok && entry.parsed.integration.organizationDeletionPolicy === "Retain";
    degraded.push({
      reason: "OrganizationsLeftBehind",
      message: `${leftBehind.length} Quay organization(s) of deleted namespaces left behind (${
        list(leftBehind.map((e) => `${e.organization}: ${e.lastError}`))
      }); ${
        retained
          ? "organizationDeletionPolicy is Retain, so they are kept"
          : "their deletion is retried with backoff (status.leftBehindOrganizations)"
      }`,
    });
  }
  if (failed.length > 0) {
    degraded.push({
      reason: "NamespaceSyncFailed",
      message: `${failed.length} namespace(s) failing: ${list(failed.sort())}`,
    });
  }
  conditions.unshift(
    condition("Ready", ready.ok ? "True" : "False", ready.reason, ready.message, generation),
  );
  const audit = ctx.audit?.(key);
  if (audit) conditions.push(auditCondition(audit, generation));
  conditions.push(
    degraded.length > 0
      ? condition(
        "Degraded",
        "True",
        degraded[0]?.reason ?? "",
        degraded.map((d) => d.message).join("; "),
        generation,
      )
      : condition("Degraded", "False", "AsExpected", "No problems", generation),
  );

  await writeStatus(ctx, object, conditions, {
    managedNamespaces: managed,
    organizations: managed,
    repositories,
    ...(prefix ? { organizationPrefix: prefix } : {}),
  });
  // While Quay is unreachable the next probe is due soon; a failed check is repeated sooner, so a
  // token fixed in Quay (not in the Secret) is seen again.
  if (quayDown) return requeueAfter(Math.min(ctx.resyncMs, ctx.probeMs ?? 10_000));
  return requeueAfter(checked?.ok === false ? Math.min(ctx.resyncMs, ctx.recheckMs ?? 60_000) : ctx.resyncMs);
}

async function checkCredentials(
  ctx: IntegrationContext,
  key: string,
  credentials: Exclude<CredentialsState, { state: "missing" }>,
): Promise<CredentialsCheck> {
  const fp = fingerprint(credentials.token);
  const previous = ctx.checks.get(key);
  const now = ctx.now();
  if (credentials.state === "rejected" && (previous?.tokenFingerprint !== fp || previous.outcome.ok)) {
    // A namespace pass just had this token rejected by Quay: that answer is this check.
    const { reason, message } = credentials.problem;
    const check = {
      tokenFingerprint: fp,
      at: now,
      outcome: { ok: false, reason, message, unreachable: false },
    };
    ctx.checks.set(key, check);
    return check;
  }
  const reach = ctx.integrations.reachability(key);
  if (reach?.reachable === false && previous?.tokenFingerprint === fp) {
    // Unreachable: probe only when no call has told anything for a while (a call that just failed
    // is fresh evidence, and a probe into a stall would hold this status back by its timeout).
    if (now - reach.at < (ctx.probeMs ?? 10_000)) return previous;
  } else {
    const ttl = previous?.outcome.ok ? ctx.resyncMs : Math.min(ctx.resyncMs, ctx.recheckMs ?? 60_000);
    if (previous && previous.tokenFingerprint === fp && now - previous.at < ttl) return previous;
  }
  // A namespace pass that Quay answered lately is proof enough: no call of its own.
  const acceptedAt = ctx.integrations.tokenAcceptedAt(key);
  if (
    reach?.reachable !== false && acceptedAt !== undefined && now - acceptedAt < ctx.resyncMs &&
    (!previous || previous.at < acceptedAt)
  ) {
    const check = { tokenFingerprint: fp, at: acceptedAt, outcome: { ok: true } as const };
    ctx.checks.set(key, check);
    return check;
  }
  let outcome: CheckOutcome = { ok: true };
  try {
    await ctx.integrations.client(key)?.getUser();
    if (ctx.integrations.acceptToken(key, now)) ctx.onCredentials?.(key);
  } catch (error) {
    if (!(error instanceof QuayApiError)) throw error;
    const reason = reasonOf(error);
    outcome = { ok: false, reason, message: messageOf(error), unreachable: isQuayUnavailable(error) };
    if (isTokenRejected(error) && ctx.integrations.rejectToken(key, messageOf(error))) {
      ctx.onCredentials?.(key);
    }
  }
  const check = { tokenFingerprint: fp, at: now, outcome };
  ctx.checks.set(key, check);
  return check;
}

function sameCondition(a: Omit<Condition, "lastTransitionTime">, b: Condition | undefined): boolean {
  return b !== undefined && a.status === b.status && a.reason === b.reason && a.message === b.message &&
    a.observedGeneration === b.observedGeneration;
}

async function writeStatus(
  ctx: IntegrationContext,
  object: QuayIntegrationObject,
  wanted: Omit<Condition, "lastTransitionTime">[],
  counts: Record<string, unknown>,
): Promise<void> {
  const status = (object.status ?? {}) as { conditions?: Condition[]; [k: string]: unknown };
  const previous = new Map((status.conditions ?? []).map((c) => [c.type, c]));
  const now = new Date(ctx.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
  const conditions: Condition[] = wanted.map((c) => {
    const old = previous.get(c.type);
    // lastTransitionTime moves only when the status flips.
    const lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : now;
    return { ...c, lastTransitionTime };
  });
  const unchanged = wanted.every((c) => sameCondition(c, previous.get(c.type))) &&
    previous.size === wanted.length &&
    Object.entries(counts).every(([k, v]) => status[k] === v) &&
    status.observedGeneration === (object.metadata?.generation ?? 0);
  if (unchanged) return;
  const body = {
    status: {
      conditions,
      observedGeneration: object.metadata?.generation ?? 0,
      lastSync: now,
      lastUpdate: now,
      ...counts,
    },
  };
  const type = object.apiVersion === API_LEGACY ? LEGACY_QUAY_INTEGRATIONS : QUAY_INTEGRATIONS;
  try {
    await ctx.kube.patch(type, object.metadata?.name ?? "", body, {
      patchType: "merge",
      subresource: "status",
    });
  } catch (error) {
    ctx.logger.warn("status not written", { integration: object.metadata?.name, error: messageOf(error) });
    throw error;
  }
}
