/**
 * @module
 * The namespace reconcile: gather the facts from the caches, decide (`namespace_plan.ts`), and
 * apply the plan through the narrow ports — the finalizer first, then Quay, then the cluster's
 * Secrets and links, and a release of the finalizer last. It never decides twice in one pass: a
 * conflict met while applying ends the pass, and the queue runs it again on fresh caches.
 *
 * It is level-triggered: it reads the namespace and everything else from the caches by key, never
 * the event that woke it. Quay state is mirrored in memory ({@linkcode KnownOrganization}) and
 * re-read when older than the resync period, so a namespace event costs no Quay call when nothing
 * changed. Where the integration's audit log is followed (`quay_audit.ts`), drift made by hand in
 * Quay marks the mirror stale within a poll interval and the resync is only a slow safety net; after
 * a restart, a namespace whose annotation and robot Secrets vouch for its last sync
 * (`sync_evidence.ts`) gets its mirror from the cluster instead of three lists from Quay.
 */
import {
  isTokenRejected,
  messageOf,
  type QuayApiError,
  reasonOf,
  retryClassOf,
  TerminalError,
  TransientError,
} from "../errors.ts";
import type { Integration } from "../integration_spec.ts";
import type { Logger } from "../log.ts";
import { type DoneChange, doneText, passEvent, QUAY_CHANGE_REASONS } from "./change_text.ts";
import { type EventSink, namespaceTarget } from "./events.ts";
import { dockerConfig } from "./cluster_plan.ts";
import { type NamespaceCaches, readNamespaceFacts } from "./namespace_facts.ts";
import {
  decideNamespace,
  desiredOrganization,
  type NamespaceOutcome,
  type NamespacePlan,
  planNamespace,
  type PlanSettings,
} from "./namespace_plan.ts";
import type { NamespaceKubePort, QuayPort } from "./namespace_ports.ts";
import { type KnownOrganization, unknownOrganization } from "./quay_plan.ts";
import { applyQuayChanges, observeOrganization } from "./quay_sync.ts";
import type { AuditState } from "./quay_audit.ts";
import { inferOrganization, syncDigest, SYNCED_ANNOTATION } from "./sync_evidence.ts";
import { type Action, AWAIT_CHANGE, requeueAfter } from "./queue.ts";
import type { NamespaceView } from "./views.ts";
import { DELETION_FAILING_SINCE_ANNOTATION } from "../names.ts";
import { QuayReason } from "../quay/reasons.ts";
import { collectDelay } from "./left_behind.ts";

/** What the reconcile remembers between passes (the operator owns it; `plan` and the webhook read it). */
export interface NamespaceMemory {
  /** Quay mirrors by `<integration key>|<organization>`. */
  readonly organizations: Map<string, KnownOrganization>;
  /** Outcomes by namespace. */
  readonly outcomes: Map<string, NamespaceOutcome>;
  /** Since when, and why, deleting a namespace's organization fails. */
  readonly deletionFailures: Map<string, { since: number; error: string }>;
  /** The namespace of each mirror (by mirror key), so drift found in the audit log requeues it. */
  readonly namespaceOf: Map<string, string>;
  /** Mirrors the audit log named before they were read: never inferred from the cluster. */
  readonly suspects: Set<string>;
  /** Mirrors inferred from the cluster and not yet read from Quay. */
  readonly inferred: Set<string>;
}

/** An empty {@linkcode NamespaceMemory}. */
export function namespaceMemory(): NamespaceMemory {
  return {
    organizations: new Map(),
    outcomes: new Map(),
    deletionFailures: new Map(),
    namespaceOf: new Map(),
    suspects: new Set(),
    inferred: new Set(),
  };
}

/** What a pass tells about the token it called Quay with. */
export interface TokenFeedback {
  /** Quay rejected the token. */
  rejected(integrationKey: string, error: QuayApiError): void;
  /** Quay answered calls made with the token. */
  accepted(integrationKey: string): void;
}

/** Everything the namespace reconcile reads and writes through. */
export interface NamespaceContext {
  readonly caches: NamespaceCaches;
  readonly kube: NamespaceKubePort;
  /** The Quay port of a valid integration. */
  readonly quay: (integrationKey: string) => QuayPort | undefined;
  /** Told what Quay made of an integration's token: its status says so at once. */
  readonly tokens: TokenFeedback;
  readonly events: EventSink;
  readonly logger: Logger;
  readonly settings: PlanSettings;
  readonly memory: NamespaceMemory;
  /** Called whenever an outcome changed (status aggregation). */
  readonly onOutcome?: (namespace: string, outcome: NamespaceOutcome | undefined) => void;
  readonly now: () => number;
  /** Random source in [0, 1) for the resync jitter. @default Math.random */
  readonly random?: () => number;
  /** How each integration's audit log is followed; without it, every integration resyncs plainly. */
  readonly audit?: { state(key: string): AuditState } | undefined;
  /** The resync of an integration whose audit log is followed (a safety net). */
  readonly auditedResyncMs?: number | undefined;
}

/**
 * Changes an inferred mirror cannot be trusted for. Creations can: Quay answers "exists" and the
 * client reads what is there.
 */
const NEEDS_READ: ReadonlySet<string> = new Set(["updatePrototype", "deleteRepository"]);

/** The resync period of an integration: long while its audit log is followed. */
export function resyncFor(
  ctx: Pick<NamespaceContext, "audit" | "auditedResyncMs" | "settings">,
  key: string,
): number {
  const followed = ctx.audit?.state(key).kind === "following";
  return followed && ctx.auditedResyncMs !== undefined ? ctx.auditedResyncMs : ctx.settings.resyncMs;
}

/** The key of a Quay mirror. */
export function mirrorKey(integrationKey: string, organization: string): string {
  return `${integrationKey}|${organization}`;
}

function setOutcome(ctx: NamespaceContext, namespace: string, outcome: NamespaceOutcome | undefined): void {
  const outcomes = ctx.memory.outcomes;
  const previous = outcomes.get(namespace);
  if (outcome) outcomes.set(namespace, outcome);
  else outcomes.delete(namespace);
  if (JSON.stringify(previous) !== JSON.stringify(outcome)) ctx.onOutcome?.(namespace, outcome);
}

/** Reconciles the namespace `name`. */
export async function reconcileNamespace(ctx: NamespaceContext, name: string): Promise<Action> {
  const facts = readNamespaceFacts(ctx.caches, name, {
    now: ctx.now(),
    settings: ctx.settings,
    deletionFailure: ctx.memory.deletionFailures.get(name),
  });
  const decision = decideNamespace(facts);
  const ns = facts.namespace;
  if (!ns) {
    // Gone: the decision is to forget it.
    ctx.memory.deletionFailures.delete(name);
    setOutcome(ctx, name, undefined);
    return AWAIT_CHANGE;
  }
  let plan: NamespacePlan;
  let known: KnownOrganization | undefined;
  let client: QuayPort | undefined;
  let digest: string | undefined;
  if (decision.kind === "sync") {
    // The one fact the gates do not need: what Quay holds (from the mirror, re-read when stale).
    const resyncMs = resyncFor(ctx, decision.key);
    const synced = { ...facts, settings: { ...facts.settings, resyncMs } };
    const desired = desiredOrganization(decision.integration, decision.organization, facts.imageStreams);
    digest = syncDigest(decision.key, decision.integration.registryHost, desired);
    const mk = mirrorKey(decision.key, decision.organization);
    try {
      client = ctx.quay(decision.key);
      if (!client) {
        throw new TerminalError(`QuayIntegration ${decision.key} has no Quay client`, { reason: "NoClient" });
      }
      ctx.memory.namespaceOf.set(mk, name);
      trustCluster(ctx, decision.key, mk, {
        namespace: name,
        annotations: ns.annotations,
        digest,
        desired,
        clusterId: decision.integration.clusterId,
        registryHost: decision.integration.registryHost,
        secrets: facts.secrets,
        observedAt: 0,
      }, resyncMs);
      let read = await mirror(
        ctx,
        client,
        decision.key,
        decision.organization,
        decision.integration,
        resyncMs,
      );
      known = read.known;
      plan = planNamespace(synced, known);
      if (ctx.memory.inferred.has(mk) && plan.quay.some((c) => NEEDS_READ.has(c.kind))) {
        // An inferred mirror knows no prototype ids and not who made a repository: read, then plan again.
        known.observedAt = 0;
        read = await mirror(ctx, client, decision.key, decision.organization, decision.integration, resyncMs);
        known = read.known;
        plan = planNamespace({ ...synced, now: ctx.now() }, known);
      }
      if (read.called) ctx.tokens.accepted(decision.key);
    } catch (error) {
      return await fail(
        ctx,
        ns,
        { integrationKey: decision.key, organization: decision.organization },
        error,
      );
    }
  } else {
    plan = decision.plan;
    if (plan.integrationKey && plan.quay.length > 0) client = ctx.quay(plan.integrationKey);
  }
  for (const e of plan.events) ctx.events.emit(e.target, e.type, e.reason, e.message);
  if (plan.requeue.kind === "retry") {
    // Nothing can be done yet (no usable credentials for a deletion): the wait counts against the budget.
    await noteDeletionFailure(ctx, ns, facts.deletionFailingSince, plan.requeue.message);
    setOutcome(ctx, name, plan.outcome);
    throw new TransientError(plan.requeue.message, { reason: plan.requeue.reason });
  }
  // What was synced, for the next start-up (`sync_evidence.ts`); a failure costs only a re-read then.
  const evidence = digest !== undefined && ns.annotations[SYNCED_ANNOTATION] !== digest ? digest : undefined;
  try {
    await apply(ctx, ns, plan, client, known, evidence);
  } catch (error) {
    return await fail(ctx, ns, plan, error, facts.deletionFailingSince);
  }
  if (plan.quay.length > 0 && plan.integrationKey) ctx.tokens.accepted(plan.integrationKey);
  if (plan.quay.some((c) => c.kind === "deleteOrganization") && plan.integrationKey && plan.organization) {
    ctx.memory.organizations.delete(mirrorKey(plan.integrationKey, plan.organization));
  }
  if (ns.deleting) ctx.memory.deletionFailures.delete(name);
  setOutcome(ctx, name, plan.outcome);
  if (plan.requeue.kind !== "after") return AWAIT_CHANGE;
  // Spread resyncs so namespaces synced together do not all re-read Quay at the same moment.
  const jitter = (ctx.random ?? Math.random)() * 0.1 *
    (plan.integrationKey ? resyncFor(ctx, plan.integrationKey) : ctx.settings.resyncMs);
  return requeueAfter(plan.requeue.ms + jitter);
}

/**
 * After a restart, a mirror not yet read may be inferred from the cluster's evidence — only while
 * the audit log since the last run has been read in full and has not named the organization.
 */
function trustCluster(
  ctx: NamespaceContext,
  key: string,
  mk: string,
  evidence: Parameters<typeof inferOrganization>[0],
  resyncMs: number,
): void {
  if (ctx.memory.organizations.has(mk) || ctx.memory.suspects.has(mk)) return;
  const state = ctx.audit?.state(key);
  if (state?.kind !== "following" || !state.trusted) return;
  // Spread the safety-net re-reads of namespaces inferred together over the resync period.
  const observedAt = ctx.now() - (ctx.random ?? Math.random)() * resyncMs;
  const inferred = inferOrganization({ ...evidence, observedAt });
  if (!inferred) return;
  ctx.memory.organizations.set(mk, inferred);
  ctx.memory.inferred.add(mk);
}

/** The Quay mirror of `organization`, re-read when stale, with every configured robot's token. */
async function mirror(
  ctx: NamespaceContext,
  client: QuayPort,
  key: string,
  organization: string,
  integration: Pick<Integration, "serviceAccounts">,
  resyncMs: number,
): Promise<{ known: KnownOrganization; called: boolean }> {
  const mk = mirrorKey(key, organization);
  let known = ctx.memory.organizations.get(mk);
  let called = false;
  if (!known || ctx.now() - known.observedAt >= resyncMs) {
    called = true;
    known = await observeOrganization(client, organization, known, ctx.now());
    ctx.memory.organizations.set(mk, known);
    ctx.memory.inferred.delete(mk);
    ctx.memory.suspects.delete(mk);
  }
  const mirrored = known;
  // A robot listed without its token is read once: the Secret cannot be written without it.
  await Promise.all(integration.serviceAccounts.map(async (sa) => {
    if (!mirrored.robots.has(sa.name) || mirrored.robots.get(sa.name) !== undefined) return;
    called = true;
    const token = (await client.getRobot(organization, sa.name))?.token;
    if (token === undefined) {
      throw new TerminalError(`Robot ${organization}+${sa.name} exists but Quay returns no token for it`, {
        reason: "RobotTokenUnreadable",
      });
    }
    mirrored.robots.set(sa.name, token);
  }));
  return { known, called };
}

async function apply(
  ctx: NamespaceContext,
  ns: NamespaceView,
  plan: NamespacePlan,
  client: QuayPort | undefined,
  known: KnownOrganization | undefined,
  evidence: string | undefined,
): Promise<void> {
  // What this pass changed, told in one Event at its end, also when a later step fails.
  const done: DoneChange[] = [];
  try {
    await applyPlan(ctx, ns, plan, client, known, evidence, done);
  } finally {
    const event = passEvent(done);
    if (event) ctx.events.emit(namespaceTarget(ns.name, ns.uid), "Normal", event.reason, event.message);
  }
}

async function applyPlan(
  ctx: NamespaceContext,
  ns: NamespaceView,
  plan: NamespacePlan,
  client: QuayPort | undefined,
  known: KnownOrganization | undefined,
  evidence: string | undefined,
  done: DoneChange[],
): Promise<void> {
  if (plan.finalizer === "add") await ctx.kube.addFinalizer(ns);
  if (plan.quay.length > 0) {
    const organization = plan.organization ?? "";
    if (!client) throw new TerminalError(`No Quay client for ${organization}`, { reason: "NoClient" });
    // A deletion plan reads no mirror: Quay's answer alone tells whether it was there.
    const mirror = known ?? unknownOrganization();
    await applyQuayChanges(client, plan.quay, mirror, {
      organization,
      namespace: ns.name,
      onChange: (change) => {
        done.push({ reason: QUAY_CHANGE_REASONS[change.kind], text: doneText(change, organization) });
        ctx.logger.info("quay changed", { namespace: ns.name, change: change.kind, organization });
      },
    });
  }
  // The sync evidence vouches for Quay alone, now as wanted: it is written beside the cluster's
  // Secrets and links rather than after them (one round trip less per pass).
  const record = evidence !== undefined && ctx.kube.recordSynced
    ? ctx.kube.recordSynced(ns, SYNCED_ANNOTATION, evidence)
    : undefined;
  const cluster = plan.cluster.length > 0 && known ? applyCluster(ctx, ns, plan, known, done) : undefined;
  const [recorded, applied] = await Promise.allSettled([record, cluster]);
  if (applied.status === "rejected") throw applied.reason;
  if (recorded.status === "rejected") throw recorded.reason;
  if (plan.leftBehind && plan.integrationKey) {
    // Listed before the finalizer goes, so a crash in between cannot forget the organization.
    const now = ctx.now();
    await ctx.kube.recordLeftBehind(plan.integrationKey, {
      organization: plan.leftBehind.organization,
      namespace: plan.leftBehind.namespace,
      lastError: plan.leftBehind.error,
      since: new Date(now).toISOString(),
      attempts: 0,
      nextAttemptAt: new Date(now + collectDelay(0, ctx.settings.deletionBudgetMs)).toISOString(),
    });
  }
  if (plan.finalizer === "release") await ctx.kube.releaseFinalizer(ns);
}

/**
 * Secrets before links, so an account never points at a Secret that does not exist. One account's
 * failure (e.g. a foreign Secret squatting on its name) does not hold back the others.
 */
async function applyCluster(
  ctx: NamespaceContext,
  ns: NamespaceView,
  plan: NamespacePlan,
  known: KnownOrganization,
  done: DoneChange[],
): Promise<void> {
  const writes = plan.cluster.filter((c) => c.kind !== "linkSecret");
  const failures: unknown[] = [];
  const failedSecrets = new Set<string>();
  const results = await Promise.allSettled(writes.map(async (change) => {
    // A robot this plan created has its token in the mirror now.
    const token = change.token ?? known.robots.get(change.serviceAccount);
    if (token === undefined) {
      throw new TerminalError(`No token for robot ${change.robot}`, { reason: "RobotTokenUnreadable" });
    }
    const secret = {
      namespace: ns.name,
      name: change.secret,
      dockerConfig: dockerConfig(change.registryHost, change.robot, token),
      integration: change.integration,
      rotatedAt: change.rotatedAt,
      rotationHandled: change.rotationHandled,
    };
    if (change.kind === "updateSecret") {
      await ctx.kube.updateSecret(secret, change.resourceVersion);
      done.push({ reason: "SecretUpdated", text: `Updated Secret ${change.secret}` });
    } else {
      const result = await ctx.kube.createSecret(secret);
      done.push({
        reason: result === "created" ? "SecretCreated" : "SecretAdopted",
        text: `${result === "created" ? "Created" : "Adopted"} Secret ${change.secret}`,
      });
    }
  }));
  results.forEach((result, i) => {
    if (result.status === "fulfilled") return;
    failures.push(result.reason);
    const change = writes[i];
    if (change) failedSecrets.add(change.secret);
  });
  const links = plan.cluster.flatMap((c) =>
    c.kind === "linkSecret" && !failedSecrets.has(c.secret) ? [c] : []
  );
  const linked = await Promise.allSettled(
    links.map((change) => ctx.kube.linkSecret(change.account, change.secret)),
  );
  for (const result of linked) if (result.status === "rejected") failures.push(result.reason);
  if (failures.length > 0) throw failures[0];
}

/**
 * Remembers a failed deletion, and the first failure on the Namespace itself (an annotation), so a
 * restart or a new leader continues the same budget instead of starting another.
 */
async function noteDeletionFailure(
  ctx: NamespaceContext,
  ns: NamespaceView,
  failingSince: number | undefined,
  error: string,
): Promise<void> {
  const since = failingSince ?? ctx.memory.deletionFailures.get(ns.name)?.since ?? ctx.now();
  ctx.memory.deletionFailures.set(ns.name, { since, error });
  if (ns.annotations[DELETION_FAILING_SINCE_ANNOTATION] !== undefined) return;
  try {
    await ctx.kube.markDeletionFailing(ns, since);
  } catch (markError) {
    // The memory still holds the budget; the next failed pass writes the mark again.
    ctx.logger.warn("deletion failure not recorded on the namespace", {
      namespace: ns.name,
      error: messageOf(markError),
    });
  }
}

/** Reasons of errors that prove the mirror wrong (the client confirms the absence before saying so). */
const MIRROR_WRONG: ReadonlySet<string> = new Set([
  QuayReason.OrganizationNotFound,
  QuayReason.RepositoryNotFound,
]);

/** Records a failed pass and hands the error to the queue, whose policy decides when to retry. */
async function fail(
  ctx: NamespaceContext,
  ns: NamespaceView,
  scope: { readonly integrationKey?: string | undefined; readonly organization?: string | undefined },
  error: unknown,
  failingSince?: number,
): Promise<never> {
  if (isTokenRejected(error) && scope.integrationKey) ctx.tokens.rejected(scope.integrationKey, error);
  if (scope.integrationKey && scope.organization && MIRROR_WRONG.has(reasonOf(error))) {
    // Quay confirmed the organization or a repository gone while the mirror held it: the next pass
    // reads Quay afresh instead of planning from the mirror again until the resync.
    const mk = mirrorKey(scope.integrationKey, scope.organization);
    ctx.memory.organizations.delete(mk);
    ctx.memory.inferred.delete(mk);
  }
  // A conflict is routine (someone changed what the plan was made from): the next pass decides again.
  if (retryClassOf(error) === "conflict") throw error;
  const base = { integrationKey: scope.integrationKey, organization: scope.organization };
  if (ns.deleting) {
    await noteDeletionFailure(ctx, ns, failingSince, messageOf(error));
    ctx.events.emit(
      namespaceTarget(ns.name, ns.uid),
      "Warning",
      "OrganizationDeletionFailed",
      messageOf(error),
    );
    setOutcome(ctx, ns.name, {
      ...base,
      state: "Deleting",
      reason: reasonOf(error),
      message: messageOf(error),
    });
    throw error;
  }
  ctx.events.emit(namespaceTarget(ns.name, ns.uid), "Warning", reasonOf(error), messageOf(error));
  setOutcome(ctx, ns.name, { ...base, state: "Failed", reason: reasonOf(error), message: messageOf(error) });
  throw error;
}
