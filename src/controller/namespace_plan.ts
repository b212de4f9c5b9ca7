/**
 * @module
 * The one decision about a namespace, as a pure function of facts. {@linkcode decideNamespace}
 * runs the gates in one order — gone, deleting, selection (none, an invalid QuayIntegration,
 * several, one), organization name, credentials, project — and gives the namespace's outcome
 * without reading Quay; {@linkcode planNamespace} adds, for a namespace to sync or to delete, the
 * changes in Quay and in the cluster, the finalizer, the Events and when to look again.
 *
 * The namespace reconcile applies this plan, `quay-bridge plan` prints it, and the admission
 * webhook reads the same outcome: all three call these functions on the same facts
 * (`namespace_facts.ts` gathers them from the caches), so they cannot disagree.
 */
import { type Integration, pushServiceAccount } from "../integration_spec.ts";
import {
  FINALIZER,
  isValidQuayNamespace,
  isValidQuayRepository,
  LEGACY_FINALIZER,
  organizationName,
  PROJECT_READY_ANNOTATION,
  robotFullName,
  robotSecretName,
  ROTATE_ANNOTATION,
} from "../names.ts";
import type { EventTarget, EventType } from "./events.ts";
import { namespaceTarget } from "./events.ts";
import type { CredentialsState, Resolution } from "./integration_registry.ts";
import { type DesiredOrganization, type KnownOrganization, planQuay, type QuayChange } from "./quay_plan.ts";
import type { ImageStreamView, NamespaceView, SecretView, ServiceAccountView } from "./views.ts";
import { type ClusterChange, planCluster, secretHolds } from "./cluster_plan.ts";
import { planRotation, type RotationPlan } from "./rotation_plan.ts";

/** How a namespace stands (status counts, the webhook, `plan`). */
export interface NamespaceOutcome {
  readonly state: "Ready" | "Waiting" | "Failed" | "Unmanaged" | "Overlap" | "Deleting";
  readonly reason: string;
  readonly message: string;
  readonly integrationKey?: string | undefined;
  /** The QuayIntegrations that all select this namespace (state Overlap). */
  readonly overlappingKeys?: readonly string[] | undefined;
  readonly organization?: string | undefined;
  readonly repositories?: number | undefined;
}

/** Everything the decision about one namespace reads, from the caches. */
export interface NamespaceFacts {
  /** The namespace; undefined once it is gone. */
  readonly namespace: NamespaceView | undefined;
  /** Which QuayIntegration selects it. */
  readonly selection: Resolution;
  /** The credentials of the selecting integration (only when one selects it). */
  readonly credentials: CredentialsState | undefined;
  /** The namespace's ImageStreams. */
  readonly imageStreams: readonly ImageStreamView[];
  /** The operator's Secrets in the namespace, by name. */
  readonly secrets: ReadonlyMap<string, SecretView>;
  /** The configured service accounts in the namespace, by name. */
  readonly serviceAccounts: ReadonlyMap<string, ServiceAccountView>;
  /**
   * Since when deleting the organization has failed (ms since epoch), if it has: from the Namespace's
   * `quay.redhat.com/deletion-failing-since` annotation, so the budget survives restarts.
   */
  readonly deletionFailingSince?: number | undefined;
  /** The last failure of deleting the organization. */
  readonly deletionError?: string | undefined;
  readonly now: number;
  readonly settings: PlanSettings;
}

/** The tunables the decision reads. */
export interface PlanSettings {
  /** Re-read Quay for a synced namespace this often. */
  readonly resyncMs: number;
  /** How long deletion keeps retrying Quay before releasing the finalizer anyway. */
  readonly deletionBudgetMs: number;
}

/** An Event the decision itself reports (what was done is reported by the apply). */
export interface PlannedEvent {
  readonly target: EventTarget;
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
}

/** What happens to the namespace's finalizer: added before Quay is touched, released after. */
export type FinalizerChange = "add" | "release" | "keep";

/** When the namespace is looked at again. */
export type Requeue =
  | { readonly kind: "await" }
  | { readonly kind: "after"; readonly ms: number }
  /** Nothing can be done yet and the wait counts against the deletion budget: retry with backoff. */
  | { readonly kind: "retry"; readonly reason: string; readonly message: string };

/** The decision about one namespace. */
export interface NamespacePlan {
  /** The outcome once the plan is applied; undefined when the namespace is to be forgotten. */
  readonly outcome: NamespaceOutcome | undefined;
  readonly finalizer: FinalizerChange;
  /** In order (see `quay_plan.ts`); `deleteOrganization` only while deleting. */
  readonly quay: readonly QuayChange[];
  readonly cluster: readonly ClusterChange[];
  readonly events: readonly PlannedEvent[];
  readonly requeue: Requeue;
  /** The integration and organization the changes are for. */
  readonly integrationKey?: string | undefined;
  readonly organization?: string | undefined;
  /**
   * An organization given up on at the deletion budget: recorded on the QuayIntegration (for the
   * collector to retry) before the finalizer is released.
   */
  readonly leftBehind?: { readonly organization: string; readonly namespace: string; readonly error: string };
}

/** The gates' verdict: a complete plan, or a namespace to sync whose plan needs the Quay mirror. */
export type Decision =
  | { readonly kind: "decided"; readonly plan: NamespacePlan }
  | {
    readonly kind: "sync";
    readonly key: string;
    readonly integration: Integration;
    readonly organization: string;
    /** The outcome once synced. */
    readonly outcome: NamespaceOutcome;
    readonly finalizer: FinalizerChange;
    readonly events: readonly PlannedEvent[];
  };

const AWAIT: Requeue = { kind: "await" };

function holdsFinalizer(ns: NamespaceView): boolean {
  return ns.finalizers.some((f) => f === FINALIZER || f === LEGACY_FINALIZER);
}

function decided(
  outcome: NamespaceOutcome | undefined,
  extra: Partial<Omit<NamespacePlan, "outcome">> = {},
): Decision {
  return {
    kind: "decided",
    plan: { outcome, finalizer: "keep", quay: [], cluster: [], events: [], requeue: AWAIT, ...extra },
  };
}

/** Runs the gates: the outcome of the namespace and, unless it is to be synced, its whole plan. */
export function decideNamespace(facts: NamespaceFacts): Decision {
  const ns = facts.namespace;
  if (!ns) return decided(undefined);
  if (ns.deleting) return decideDeletion(facts, ns);
  const target = namespaceTarget(ns.name, ns.uid);
  const selection = facts.selection;
  switch (selection.kind) {
    case "unmanaged": {
      const outcome = {
        state: "Unmanaged",
        reason: "NotSelected",
        message: "No QuayIntegration selects it",
      } as const;
      if (!holdsFinalizer(ns)) return decided(outcome);
      // It left every selection: stop holding its deletion. The organization, Secrets and links stay
      // (running workloads may pull with them, and a label change must not destroy images), but not
      // silently: the robots' credentials stay valid, so the Event is a warning that says so.
      return decided(outcome, {
        finalizer: "release",
        events: [{
          target,
          type: "Warning",
          reason: "NamespaceUnmanaged",
          message: "No QuayIntegration selects this namespace any more: its Quay organization, robots and " +
            "robot Secrets are left in place with valid credentials and are not deleted with the namespace; " +
            "select it again to manage them, or delete the organization in Quay and the Secrets here",
        }],
      });
    }
    case "invalid": {
      const names = selection.integrations.map((i) => i.name).join(", ");
      return decided({
        state: "Waiting",
        reason: "IntegrationInvalid",
        message: `QuayIntegration ${names} would select this namespace but is invalid; see its status`,
      }, {
        events: selection.integrations.map((i) => ({
          target,
          type: "Warning" as const,
          reason: "IntegrationInvalid",
          message: `QuayIntegration ${i.name} would select this namespace but is invalid (${i.reason}: ` +
            `${i.message}); nothing is synced and Builds push to the internal registry until it is fixed`,
        })),
      });
    }
    case "overlap": {
      const message = `Namespace is selected by several QuayIntegrations (${selection.keys.join(", ")}); ` +
        `none manages it until their namespace selections no longer overlap`;
      return decided(
        { state: "Overlap", reason: "OverlappingIntegrations", message, overlappingKeys: selection.keys },
        { events: [{ target, type: "Warning", reason: "OverlappingIntegrations", message }] },
      );
    }
    case "managed":
      return decideManaged(facts, ns, selection.key, selection.integration);
  }
}

function decideManaged(
  facts: NamespaceFacts,
  ns: NamespaceView,
  key: string,
  integration: Integration,
): Decision {
  const organization = organizationName(integration.organizationPrefix, ns.name);
  const base = { integrationKey: key, organization };
  const target = namespaceTarget(ns.name, ns.uid);
  if (!isValidQuayNamespace(organization)) {
    const message =
      `Organization name "${organization}" is not valid in Quay (lower-case letters and digits joined by ` +
      `single ".", "_" or "-", at most 255 characters); rename the namespace or exclude it with ` +
      `spec.denylistNamespaces`;
    return decided({ ...base, state: "Failed", reason: "InvalidOrganizationName", message }, {
      events: [{ target, type: "Warning", reason: "InvalidOrganizationName", message }],
    });
  }
  const credentials = facts.credentials;
  if (credentials?.state !== "ok") {
    const message = credentials?.problem.message ?? "Waiting for the Quay credentials Secret";
    return decided({ ...base, state: "Waiting", reason: "CredentialsUnavailable", message });
  }
  if (!ns.annotations[PROJECT_READY_ANNOTATION]) {
    return decided({
      ...base,
      state: "Waiting",
      reason: "WaitingForProject",
      message: `Waiting for OpenShift to finish the project (annotation ${PROJECT_READY_ANNOTATION})`,
    });
  }
  const events: PlannedEvent[] = [];
  for (const is of facts.imageStreams) {
    if (isValidQuayRepository(is.name)) continue;
    events.push({
      target: {
        apiVersion: "image.openshift.io/v1",
        kind: "ImageStream",
        name: is.name,
        namespace: is.namespace,
        uid: is.uid,
      },
      type: "Warning",
      reason: "InvalidRepositoryName",
      message:
        `ImageStream name "${is.name}" is not a valid Quay repository name (lower-case letters, digits, ` +
        `".", "_" and "-", starting with a letter or digit, at most 255 characters): no repository is created for it`,
    });
  }
  const missing = integration.serviceAccounts.map((sa) => sa.name).filter((sa) =>
    !facts.serviceAccounts.has(sa)
  );
  let outcome: NamespaceOutcome;
  if (!pushServiceAccount(integration)) {
    // Builds need the push robot's Secret: say so first, whatever else is missing.
    outcome = {
      ...base,
      state: "Waiting",
      reason: "NoPushServiceAccount",
      message: "No configured service account has write access",
    };
  } else if (missing.length > 0) {
    const message = `Service account(s) ${missing.sort().join(", ")} not found in ${ns.name}; their robot ` +
      `Secrets exist and are linked as soon as the accounts are created`;
    events.push({ target, type: "Warning", reason: "ServiceAccountMissing", message });
    outcome = { ...base, state: "Waiting", reason: "ServiceAccountMissing", message };
  } else {
    outcome = {
      ...base,
      state: "Ready",
      reason: "Synced",
      message: `Organization ${organization} and robot credentials are in place`,
    };
  }
  // The predecessor's finalizer is replaced by ours, so a later uninstall cannot strand the namespace.
  const finalizer = ns.finalizers.includes(FINALIZER) && !ns.finalizers.includes(LEGACY_FINALIZER)
    ? "keep"
    : "add";
  return { kind: "sync", key, integration, organization, outcome, finalizer, events };
}

function decideDeletion(facts: NamespaceFacts, ns: NamespaceView): Decision {
  if (!holdsFinalizer(ns)) return decided(undefined);
  const target = namespaceTarget(ns.name, ns.uid);
  const selection = facts.selection;
  if (selection.kind !== "managed") {
    const message = selection.kind === "unmanaged"
      ? "No QuayIntegration selects this namespace; released it without touching Quay"
      : `QuayIntegration selection is ${selection.kind} (${selectionKeys(selection).join(", ")}); released ` +
        `the namespace without touching Quay — any organization for it is left in place`;
    return decided(undefined, {
      finalizer: "release",
      events: [{ target, type: "Warning", reason: "FinalizerReleased", message }],
    });
  }
  const { key, integration } = selection;
  const organization = organizationName(integration.organizationPrefix, ns.name);
  const deleting: NamespaceOutcome = {
    state: "Deleting",
    reason: "NamespaceDeleting",
    message: "Namespace is being deleted",
    integrationKey: key,
    organization,
  };
  const scope = { integrationKey: key, organization };
  if (integration.organizationDeletionPolicy === "Retain") {
    return decided(undefined, {
      ...scope,
      finalizer: "release",
      events: [{
        target,
        type: "Normal",
        reason: "OrganizationRetained",
        message: `Kept Quay organization ${organization} (organizationDeletionPolicy is Retain)`,
      }],
    });
  }
  if (!isValidQuayNamespace(organization)) return decided(undefined, { ...scope, finalizer: "release" });
  const since = facts.deletionFailingSince;
  if (since !== undefined && facts.now - since >= facts.settings.deletionBudgetMs) {
    const error = facts.deletionError ?? "failing since before this process started";
    return decided(undefined, {
      ...scope,
      finalizer: "release",
      leftBehind: { organization, namespace: ns.name, error },
      events: [{
        target,
        type: "Warning",
        reason: "OrganizationLeftBehind",
        message:
          `Gave up deleting Quay organization ${organization} after ${
            Math.round((facts.now - since) / 1000)
          } s (${error}); the namespace is released. The organization is listed in QuayIntegration ` +
          `${integration.name} status.leftBehindOrganizations and deleted later, with backoff.`,
      }],
    });
  }
  if (facts.credentials?.state !== "ok") {
    const message = `Cannot delete Quay organization ${organization}: no usable Quay credentials (${
      facts.credentials?.problem.message ?? "not loaded"
    })`;
    return decided(deleting, {
      ...scope,
      events: [{ target, type: "Warning", reason: "OrganizationDeletionFailed", message }],
      requeue: { kind: "retry", reason: "CredentialsUnavailable", message },
    });
  }
  return decided(deleting, {
    ...scope,
    finalizer: "release",
    quay: [{ kind: "deleteOrganization", organization }],
  });
}

function selectionKeys(selection: Resolution): string[] {
  switch (selection.kind) {
    case "overlap":
      return [...selection.keys];
    case "invalid":
      return selection.integrations.map((i) => i.key);
    default:
      return [];
  }
}

/** What Quay should hold for a namespace: its robots, and one repository per validly named ImageStream. */
export function desiredOrganization(
  integration: Integration,
  organization: string,
  imageStreams: readonly ImageStreamView[],
): DesiredOrganization {
  return {
    organization,
    robots: integration.serviceAccounts.map((sa) => ({
      shortName: sa.name,
      fullName: robotFullName(organization, sa.name),
      role: sa.role,
    })),
    repositories: new Set(imageStreams.map((is) => is.name).filter(isValidQuayRepository)),
    deleteOrphanRepositories: integration.repositoryDeletionPolicy === "Delete",
  };
}

/**
 * The whole plan of a namespace. `known` is the Quay mirror of its organization; it is read only for
 * a namespace to sync (the gates decide every other case without Quay).
 */
export function planNamespace(facts: NamespaceFacts, known: KnownOrganization | undefined): NamespacePlan {
  const decision = decideNamespace(facts);
  if (decision.kind === "decided") return decision.plan;
  if (!known) throw new Error("A namespace to sync is planned with its Quay mirror");
  const { integration, organization } = decision;
  const desired = desiredOrganization(integration, organization, facts.imageStreams);
  const rotation = rotationOf(facts, integration, desired, known);
  const planned = planQuay(desired, known);
  // Rotations right after the robots are in place (the order `quay_sync.ts` applies them in).
  const first = planned.filter((c) => c.kind === "createOrganization" || c.kind === "createRobot");
  const quay: QuayChange[] = [
    ...first,
    ...rotation.rotations.map(({ robot, reason }) => ({ kind: "rotateRobot" as const, robot, reason })),
    ...planned.slice(first.length),
  ];
  const cluster = planCluster(integration, organization, known, facts, {
    rotating: new Set(rotation.rotations.map((r) => r.robot.shortName)),
    requested: facts.namespace?.annotations[ROTATE_ANNOTATION],
    stamp: integration.credentialRotation !== undefined,
    now: facts.now,
  });
  const age = facts.now - known.observedAt;
  const untilResync = facts.settings.resyncMs - age;
  const untilDue = rotation.nextDueAt === undefined ? Infinity : rotation.nextDueAt - facts.now;
  return {
    outcome: { ...decision.outcome, repositories: desired.repositories.size },
    finalizer: decision.finalizer,
    quay,
    cluster,
    events: decision.events,
    requeue: { kind: "after", ms: Math.max(1_000, Math.min(untilResync, untilDue)) },
    integrationKey: decision.key,
    organization,
  };
}

/** Which robots' tokens rotate in this pass (`rotation_plan.ts`), from the Secrets and the mirror. */
function rotationOf(
  facts: NamespaceFacts,
  integration: Integration,
  desired: DesiredOrganization,
  known: KnownOrganization,
): RotationPlan {
  const name = facts.namespace?.name ?? "";
  return planRotation(
    {
      namespace: name,
      requested: facts.namespace?.annotations[ROTATE_ANNOTATION],
      intervalMs: integration.credentialRotation?.intervalMs,
      resyncMs: facts.settings.resyncMs,
      now: facts.now,
    },
    desired.robots.map((robot) => {
      const secret = facts.secrets.get(robotSecretName(robot.shortName, integration.clusterId));
      const inSync = known.robots.has(robot.shortName) &&
        secretHolds(secret, integration.registryHost, robot.fullName, known.robots.get(robot.shortName));
      return { robot, secret, inSync };
    }),
  );
}
