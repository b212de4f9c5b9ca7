/**
 * @module
 * The namespace reconcile: for a namespace that one QuayIntegration selects, make Quay hold its
 * organization, robots, default permissions and one repository per ImageStream, and make the
 * cluster hold the robots' dockerconfigjson Secrets linked to their service accounts; on deletion,
 * delete or retain the organization per policy and always release the finalizer in the end.
 *
 * It is level-triggered: it reads the namespace and everything else from the caches by key, never
 * the event that woke it. Quay state is mirrored in memory ({@linkcode KnownOrganization}) and
 * re-read when older than the resync period, so a namespace event costs no Quay call when nothing
 * changed, and drift made by hand in Quay is repaired at the next resync.
 */
import { KubeApiError, messageOf, QuayApiError, reasonOf } from "../errors.ts";
import type { Integration } from "../integration_spec.ts";
import { pushServiceAccount } from "../integration_spec.ts";
import type { KubeClient } from "../kube/client.ts";
import type { Reflector } from "../kube/reflector.ts";
import { NAMESPACES, SECRETS, SERVICE_ACCOUNTS } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import {
  FINALIZER,
  isValidQuayNamespace,
  isValidQuayRepository,
  LEGACY_FINALIZER,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  organizationName,
  PROJECT_READY_ANNOTATION,
  robotFullName,
  robotSecretName,
} from "../names.ts";
import type { QuayClient } from "../quay/client.ts";
import { type EventSink, namespaceTarget } from "./events.ts";
import type { IntegrationRegistry } from "./integration_registry.ts";
import type { DesiredOrganization, KnownOrganization, QuayChange } from "./quay_plan.ts";
import { observeOrganization, syncOrganization } from "./quay_sync.ts";
import { type Action, AWAIT_CHANGE, requeueAfter } from "./queue.ts";
import type { ImageStreamView, NamespaceView, SecretView, ServiceAccountView } from "./views.ts";

/** How a namespace stands, as last reconciled (status counts, the webhook, `plan`). */
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

/** Tunables. */
export interface NamespaceSettings {
  /** Re-read Quay and requeue a synced namespace this often. */
  readonly resyncMs: number;
  /** How long deletion keeps retrying Quay before releasing the finalizer anyway. */
  readonly deletionBudgetMs: number;
}

/** Everything the namespace reconcile reads and writes through. */
export interface NamespaceContext {
  readonly kube: KubeClient;
  readonly namespaces: Reflector<NamespaceView>;
  /** ImageStreams, indexed by namespace. */
  readonly imageStreams: Reflector<ImageStreamView>;
  /** The operator's own Secrets (label-selected). */
  readonly secrets: Reflector<SecretView>;
  /** Configured service accounts. */
  readonly serviceAccounts: Reflector<ServiceAccountView>;
  readonly integrations: IntegrationRegistry;
  readonly events: EventSink;
  readonly logger: Logger;
  readonly settings: NamespaceSettings;
  /** Quay mirrors by `<integration key>|<organization>`. */
  readonly organizations: Map<string, KnownOrganization>;
  /** Outcomes by namespace; the reconcile keeps it current. */
  readonly outcomes: Map<string, NamespaceOutcome>;
  /** First failed deletion attempt by namespace (for the retry budget). */
  readonly deletionFailures: Map<string, number>;
  /** Called whenever an outcome changed (status aggregation). */
  readonly onOutcome?: (namespace: string, outcome: NamespaceOutcome | undefined) => void;
  /** Clock. */
  readonly now: () => number;
}

function setOutcome(ctx: NamespaceContext, namespace: string, outcome: NamespaceOutcome | undefined): void {
  const previous = ctx.outcomes.get(namespace);
  if (outcome) ctx.outcomes.set(namespace, outcome);
  else ctx.outcomes.delete(namespace);
  if (JSON.stringify(previous) !== JSON.stringify(outcome)) ctx.onOutcome?.(namespace, outcome);
}

function mirrorKey(integrationKey: string, organization: string): string {
  return `${integrationKey}|${organization}`;
}

/** Reconciles the namespace `name`. */
export async function reconcileNamespace(ctx: NamespaceContext, name: string): Promise<Action> {
  const ns = ctx.namespaces.get(name);
  if (!ns) {
    setOutcome(ctx, name, undefined);
    ctx.deletionFailures.delete(name);
    return AWAIT_CHANGE;
  }
  if (ns.deleting) return await finalizeNamespace(ctx, ns);
  const resolution = ctx.integrations.resolve(ns);
  switch (resolution.kind) {
    case "unmanaged":
      await releaseUnmanaged(ctx, ns);
      return AWAIT_CHANGE;
    case "undecided":
      // An invalid QuayIntegration might select this namespace: change nothing until it is fixed.
      setOutcome(ctx, name, {
        state: "Waiting",
        reason: "IntegrationInvalid",
        message: `QuayIntegration ${resolution.keys.join(", ")} is invalid; see its status`,
      });
      return AWAIT_CHANGE;
    case "overlap": {
      const message = `Namespace is selected by several QuayIntegrations (${resolution.keys.join(", ")}); ` +
        `none manages it until their namespace selections no longer overlap`;
      ctx.events.emit(namespaceTarget(ns.name, ns.uid), "Warning", "OverlappingIntegrations", message);
      setOutcome(ctx, name, {
        state: "Overlap",
        reason: "OverlappingIntegrations",
        message,
        overlappingKeys: resolution.keys,
      });
      return AWAIT_CHANGE;
    }
    case "managed":
      return await syncManaged(ctx, ns, resolution.key, resolution.integration);
  }
}

async function syncManaged(
  ctx: NamespaceContext,
  ns: NamespaceView,
  key: string,
  integration: Integration,
): Promise<Action> {
  const organization = organizationName(integration.organizationPrefix, ns.name);
  const base = { integrationKey: key, organization };
  if (!isValidQuayNamespace(organization)) {
    const message =
      `Organization name "${organization}" is not valid in Quay (lower-case letters and digits ` +
      `joined by single ".", "_" or "-", at most 255 characters); rename the namespace or exclude it with ` +
      `spec.denylistNamespaces`;
    ctx.events.emit(namespaceTarget(ns.name, ns.uid), "Warning", "InvalidOrganizationName", message);
    setOutcome(ctx, ns.name, { ...base, state: "Failed", reason: "InvalidOrganizationName", message });
    return AWAIT_CHANGE;
  }
  const credentials = ctx.integrations.credentials(key);
  if (credentials?.state !== "ok") {
    setOutcome(ctx, ns.name, {
      ...base,
      state: "Waiting",
      reason: "CredentialsUnavailable",
      message: credentials?.problem.message ?? "Waiting for the Quay credentials Secret",
    });
    return AWAIT_CHANGE;
  }
  if (!ns.annotations[PROJECT_READY_ANNOTATION]) {
    setOutcome(ctx, ns.name, {
      ...base,
      state: "Waiting",
      reason: "WaitingForProject",
      message: `Waiting for OpenShift to finish the project (annotation ${PROJECT_READY_ANNOTATION})`,
    });
    return AWAIT_CHANGE;
  }
  const client = ctx.integrations.client(key) as QuayClient;
  try {
    await ensureFinalizer(ctx, ns);
    const known = await syncQuay(ctx, ns, key, integration, client, organization);
    const waiting = await syncCluster(ctx, ns, integration, client, organization, known);
    const repositories = known.repositories.size;
    if (waiting) {
      setOutcome(ctx, ns.name, {
        ...base,
        state: "Waiting",
        reason: waiting.reason,
        message: waiting.message,
        repositories,
      });
      return AWAIT_CHANGE;
    }
    setOutcome(ctx, ns.name, {
      ...base,
      state: "Ready",
      reason: "Synced",
      message: `Organization ${organization} and robot credentials are in place`,
      repositories,
    });
    const age = ctx.now() - known.observedAt;
    // Spread resyncs so namespaces synced together do not all re-read Quay at the same moment.
    const jitter = Math.random() * 0.1 * ctx.settings.resyncMs;
    return requeueAfter(Math.max(1_000, ctx.settings.resyncMs - age + jitter));
  } catch (error) {
    setOutcome(ctx, ns.name, {
      ...base,
      state: "Failed",
      reason: reasonOf(error),
      message: messageOf(error),
    });
    ctx.events.emit(namespaceTarget(ns.name, ns.uid), "Warning", reasonOf(error), messageOf(error));
    throw error;
  }
}

async function ensureFinalizer(ctx: NamespaceContext, ns: NamespaceView): Promise<void> {
  if (ns.finalizers.includes(FINALIZER) && !ns.finalizers.includes(LEGACY_FINALIZER)) return;
  // The predecessor's finalizer is replaced by ours, so a later uninstall cannot strand the namespace.
  const wanted = [...ns.finalizers.filter((f) => f !== LEGACY_FINALIZER && f !== FINALIZER), FINALIZER];
  if (ns.finalizers.length === 0) {
    // JSON Patch cannot test an absent list; the resourceVersion precondition guards the write instead.
    await ctx.kube.patch(NAMESPACES, ns.name, {
      metadata: { resourceVersion: ns.resourceVersion, finalizers: wanted },
    }, {
      patchType: "merge",
    });
  } else {
    await patchWithTest(ctx, ns.name, [
      { op: "test", path: "/metadata/finalizers", value: ns.finalizers },
      { op: "replace", path: "/metadata/finalizers", value: wanted },
    ]);
  }
}

/** JSON-patches a namespace; a failed `test` (the list changed meanwhile) is a conflict to retry. */
async function patchWithTest(ctx: NamespaceContext, name: string, ops: unknown[]): Promise<void> {
  try {
    await ctx.kube.patch(NAMESPACES, name, ops, { patchType: "json" });
  } catch (error) {
    if (error instanceof KubeApiError && (error.status === 422 || error.status === 409)) {
      throw new KubeApiError(`Namespace ${name} changed while patching its finalizers`, {
        status: 409,
        statusReason: "Conflict",
        cause: error,
      });
    }
    throw error;
  }
}

/** What Quay should hold for a namespace, from the cached ImageStreams. */
export function desiredOrganization(
  ctx: Pick<NamespaceContext, "imageStreams" | "events">,
  ns: NamespaceView,
  integration: Integration,
  organization: string,
): { desired: DesiredOrganization; imageStreams: Map<string, string> } {
  const repositories = new Set<string>();
  const imageStreams = new Map<string, string>();
  for (const key of ctx.imageStreams.keysBy(ns.name)) {
    const is = ctx.imageStreams.get(key);
    if (!is) continue;
    if (isValidQuayRepository(is.name)) {
      repositories.add(is.name);
      imageStreams.set(is.name, is.name);
    } else {
      ctx.events.emit(
        {
          apiVersion: "image.openshift.io/v1",
          kind: "ImageStream",
          name: is.name,
          namespace: is.namespace,
          uid: is.uid,
        },
        "Warning",
        "InvalidRepositoryName",
        `ImageStream name "${is.name}" is not a valid Quay repository name (lower-case letters, digits, ".", "_" ` +
          `and "-", starting with a letter or digit, at most 255 characters): no repository is created for it`,
      );
    }
  }
  return {
    desired: {
      organization,
      robots: integration.serviceAccounts.map((sa) => ({
        shortName: sa.name,
        fullName: robotFullName(organization, sa.name),
        role: sa.role,
      })),
      repositories,
      deleteOrphanRepositories: integration.repositoryDeletionPolicy === "Delete",
    },
    imageStreams,
  };
}

const CHANGE_EVENTS: Record<QuayChange["kind"], string> = {
  createOrganization: "OrganizationCreated",
  createRobot: "RobotCreated",
  createPrototype: "DefaultPermissionCreated",
  updatePrototype: "DefaultPermissionUpdated",
  grantRepository: "RepositoryPermissionGranted",
  createRepository: "RepositoryCreated",
  deleteRepository: "RepositoryDeleted",
};

function describeChange(change: QuayChange, organization: string): string {
  switch (change.kind) {
    case "createOrganization":
      return `Created Quay organization ${organization}`;
    case "createRobot":
      return `Created robot ${change.robot.fullName}`;
    case "createPrototype":
    case "updatePrototype":
      return `Robot ${change.robot.fullName} gets ${change.robot.role} on new repositories of ${organization}`;
    case "grantRepository":
      return `Granted ${change.robot.role} on ${organization}/${change.repository} to ${change.robot.fullName}`;
    case "createRepository":
      return `Created repository ${organization}/${change.repository}`;
    case "deleteRepository":
      return `Deleted repository ${organization}/${change.repository} (its ImageStream is gone; ` +
        `repositoryDeletionPolicy is Delete)`;
  }
}

async function syncQuay(
  ctx: NamespaceContext,
  ns: NamespaceView,
  key: string,
  integration: Integration,
  client: QuayClient,
  organization: string,
): Promise<KnownOrganization> {
  const mk = mirrorKey(key, organization);
  let known = ctx.organizations.get(mk);
  if (!known || ctx.now() - known.observedAt >= ctx.settings.resyncMs) {
    known = await observeOrganization(client, organization, known, ctx.now());
    ctx.organizations.set(mk, known);
  }
  const { desired, imageStreams } = desiredOrganization(ctx, ns, integration, organization);
  const target = namespaceTarget(ns.name, ns.uid);
  await syncOrganization(client, desired, known, {
    namespace: ns.name,
    imageStreams,
    onChange: (change) => {
      ctx.events.emit(target, "Normal", CHANGE_EVENTS[change.kind], describeChange(change, organization));
      ctx.logger.info("quay changed", { namespace: ns.name, change: change.kind, organization });
    },
  });
  return known;
}

/** The base64 `.dockerconfigjson` of a robot for `registryHost`, in the upstream operator's shape. */
export function dockerConfig(registryHost: string, username: string, token: string): string {
  const auth = btoa(`${username}:${token}`);
  const json = JSON.stringify({ auths: { [registryHost]: { auth } } });
  return new TextEncoder().encode(json).toBase64();
}

/** One change in the cluster for a namespace. */
export type ClusterChange =
  | {
    readonly kind: "createSecret";
    readonly secret: string;
    readonly serviceAccount: string;
    readonly data?: string;
  }
  | {
    readonly kind: "updateSecret";
    readonly secret: string;
    readonly serviceAccount: string;
    readonly data: string;
  }
  | { readonly kind: "linkSecret"; readonly secret: string; readonly serviceAccount: string };

/** What {@linkcode planCluster} reads. */
export interface ClusterObservation {
  /** Robot token by service account; undefined when not known (yet). */
  readonly token: (serviceAccount: string) => string | undefined;
  readonly secret: (name: string) => SecretView | undefined;
  readonly serviceAccount: (name: string) => ServiceAccountView | undefined;
}

/**
 * The Secrets and links a namespace needs: per configured service account, its robot's
 * dockerconfigjson Secret (created or updated when the token or registry changed) and the Secret in
 * the account's `secrets` and `imagePullSecrets`. Accounts that do not exist are returned apart.
 */
export function planCluster(
  integration: Integration,
  organization: string,
  observed: ClusterObservation,
): { changes: ClusterChange[]; missingAccounts: string[] } {
  const changes: ClusterChange[] = [];
  const missingAccounts: string[] = [];
  for (const sa of integration.serviceAccounts) {
    const secret = robotSecretName(sa.name, integration.clusterId);
    const token = observed.token(sa.name);
    const data = token === undefined
      ? undefined
      : dockerConfig(integration.registryHost, robotFullName(organization, sa.name), token);
    const current = observed.secret(secret);
    if (!current) {
      changes.push({ kind: "createSecret", secret, serviceAccount: sa.name, ...(data ? { data } : {}) });
    } else if (data && (current.dockerConfig !== data || current.type !== "kubernetes.io/dockerconfigjson")) {
      changes.push({ kind: "updateSecret", secret, serviceAccount: sa.name, data });
    }
    const account = observed.serviceAccount(sa.name);
    if (!account) missingAccounts.push(sa.name);
    else if (!account.secrets.includes(secret) || !account.imagePullSecrets.includes(secret)) {
      changes.push({ kind: "linkSecret", secret, serviceAccount: sa.name });
    }
  }
  return { changes, missingAccounts };
}

async function syncCluster(
  ctx: NamespaceContext,
  ns: NamespaceView,
  integration: Integration,
  client: QuayClient,
  organization: string,
  known: KnownOrganization,
): Promise<{ reason: string; message: string } | undefined> {
  // Tokens the mirror lacks (a robot listed without one) are read once each.
  await Promise.all(integration.serviceAccounts.map(async (sa) => {
    if (known.robots.get(sa.name) !== undefined) return;
    const token = (await client.getRobot(organization, sa.name))?.token;
    if (token === undefined) {
      throw new QuayApiError(`Robot ${robotFullName(organization, sa.name)} has no readable token`, {
        status: 404,
        route: "GET /api/v1/organization/{org}/robots/{robot}",
      });
    }
    known.robots.set(sa.name, token);
  }));
  const { changes, missingAccounts } = planCluster(integration, organization, {
    token: (sa) => known.robots.get(sa),
    secret: (name) => ctx.secrets.get(`${ns.name}/${name}`),
    serviceAccount: (name) => ctx.serviceAccounts.get(`${ns.name}/${name}`),
  });
  // Secrets before links, so an account never points at a Secret that does not exist. One account's
  // failure (e.g. a foreign Secret squatting on its name) does not hold back the others' links.
  const secrets = changes.filter((c) => c.kind !== "linkSecret");
  const failures: unknown[] = [];
  const failedAccounts = new Set<string>();
  const secretResults = await Promise.allSettled(secrets.map(async (change) => {
    if (change.data !== undefined) {
      await ensureSecret(ctx, ns, change.secret, change.data, integration);
    }
  }));
  secretResults.forEach((result, i) => {
    if (result.status === "fulfilled") return;
    failures.push(result.reason);
    const change = secrets[i];
    if (change) failedAccounts.add(change.serviceAccount);
  });
  const links = changes.filter((c) => c.kind === "linkSecret" && !failedAccounts.has(c.serviceAccount));
  const linkResults = await Promise.allSettled(links.map(async (change) => {
    const account = ctx.serviceAccounts.get(`${ns.name}/${change.serviceAccount}`);
    if (account) await ensureLinked(ctx, account, change.secret);
  }));
  for (const result of linkResults) if (result.status === "rejected") failures.push(result.reason);
  if (failures.length > 0) throw failures[0];
  if (missingAccounts.length > 0) {
    const message =
      `Service account(s) ${missingAccounts.sort().join(", ")} not found in ${ns.name}; their ` +
      `robot Secrets exist and are linked as soon as the accounts are created`;
    ctx.events.emit(namespaceTarget(ns.name, ns.uid), "Warning", "ServiceAccountMissing", message);
    return { reason: "ServiceAccountMissing", message };
  }
  // Builds need the push robot's Secret; say so if no account has write access.
  if (!pushServiceAccount(integration)) {
    return { reason: "NoPushServiceAccount", message: "No configured service account has write access" };
  }
  return undefined;
}

function secretObject(
  ns: string,
  name: string,
  data: string,
  integration: Integration,
  resourceVersion?: string,
) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name,
      namespace: ns,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: { "quay.redhat.com/integration": integration.name },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": data },
  };
}

async function ensureSecret(
  ctx: NamespaceContext,
  ns: NamespaceView,
  name: string,
  data: string,
  integration: Integration,
): Promise<void> {
  const cached = ctx.secrets.get(`${ns.name}/${name}`);
  if (cached && cached.dockerConfig === data && cached.type === "kubernetes.io/dockerconfigjson") return;
  if (cached) {
    await ctx.kube.update(SECRETS, secretObject(ns.name, name, data, integration, cached.resourceVersion));
    ctx.events.emit(namespaceTarget(ns.name, ns.uid), "Normal", "SecretUpdated", `Updated Secret ${name}`);
    return;
  }
  try {
    await ctx.kube.create(SECRETS, secretObject(ns.name, name, data, integration));
    ctx.events.emit(namespaceTarget(ns.name, ns.uid), "Normal", "SecretCreated", `Created Secret ${name}`);
  } catch (error) {
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
    // A Secret by that name without our label (e.g. made by the upstream operator): adopt it.
    const existing = await ctx.kube.get(SECRETS, name, { namespace: ns.name });
    if (!existing) throw error;
    if (existing.type !== "kubernetes.io/dockerconfigjson") {
      throw new KubeApiError(
        `Secret ${ns.name}/${name} exists with type ${String(existing.type)}; delete it so quay-bridge can ` +
          `create the robot's dockerconfigjson Secret`,
        { status: 422, statusReason: "SecretConflict" },
      );
    }
    await ctx.kube.update(
      SECRETS,
      secretObject(ns.name, name, data, integration, existing.metadata.resourceVersion),
    );
    ctx.events.emit(namespaceTarget(ns.name, ns.uid), "Normal", "SecretAdopted", `Adopted Secret ${name}`);
  }
}

async function ensureLinked(
  ctx: NamespaceContext,
  account: ServiceAccountView,
  secretName: string,
): Promise<void> {
  const ops: unknown[] = [];
  // JSON Patch with a test of each list: a concurrent change by OpenShift's own controllers makes the
  // patch fail (retried) instead of being overwritten. imagePullSecrets has no strategic-merge key.
  if (!account.secrets.includes(secretName)) {
    if (account.secrets.length === 0) {
      ops.push({ op: "add", path: "/secrets", value: [{ name: secretName }] });
    } else {
      ops.push({ op: "test", path: "/secrets", value: account.secrets.map((name) => ({ name })) });
      ops.push({ op: "add", path: "/secrets/-", value: { name: secretName } });
    }
  }
  if (!account.imagePullSecrets.includes(secretName)) {
    if (account.imagePullSecrets.length === 0) {
      ops.push({ op: "add", path: "/imagePullSecrets", value: [{ name: secretName }] });
    } else {
      ops.push({
        op: "test",
        path: "/imagePullSecrets",
        value: account.imagePullSecrets.map((name) => ({ name })),
      });
      ops.push({ op: "add", path: "/imagePullSecrets/-", value: { name: secretName } });
    }
  }
  if (ops.length === 0) return;
  try {
    await ctx.kube.patch(SERVICE_ACCOUNTS, account.name, ops, {
      patchType: "json",
      namespace: account.namespace,
    });
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 422) {
      throw new KubeApiError(`ServiceAccount ${account.namespace}/${account.name} changed while linking`, {
        status: 409,
        statusReason: "Conflict",
        cause: error,
      });
    }
    throw error;
  }
}

async function releaseUnmanaged(ctx: NamespaceContext, ns: NamespaceView): Promise<void> {
  const ours = ns.finalizers.filter((f) => f === FINALIZER || f === LEGACY_FINALIZER);
  if (ours.length > 0) {
    // The namespace left every integration's selection: stop holding its deletion. Its organization,
    // Secrets and links stay (running workloads may pull with them); nothing in Quay is deleted.
    await removeFinalizers(ctx, ns);
    ctx.events.emit(
      namespaceTarget(ns.name, ns.uid),
      "Normal",
      "NamespaceUnmanaged",
      "No QuayIntegration selects this namespace any more; its Quay organization and robot Secrets are left in place",
    );
  }
  setOutcome(ctx, ns.name, {
    state: "Unmanaged",
    reason: "NotSelected",
    message: "No QuayIntegration selects it",
  });
}

async function removeFinalizers(ctx: NamespaceContext, ns: NamespaceView): Promise<void> {
  const ops: unknown[] = [];
  // Highest index first, so each removal leaves the indexes of the others intact.
  for (let i = ns.finalizers.length - 1; i >= 0; i--) {
    const f = ns.finalizers[i];
    if (f !== FINALIZER && f !== LEGACY_FINALIZER) continue;
    ops.push({ op: "test", path: `/metadata/finalizers/${i}`, value: f });
    ops.push({ op: "remove", path: `/metadata/finalizers/${i}` });
  }
  if (ops.length > 0) await patchWithTest(ctx, ns.name, ops);
}

async function finalizeNamespace(ctx: NamespaceContext, ns: NamespaceView): Promise<Action> {
  const held = ns.finalizers.some((f) => f === FINALIZER || f === LEGACY_FINALIZER);
  if (!held) {
    setOutcome(ctx, ns.name, undefined);
    return AWAIT_CHANGE;
  }
  const target = namespaceTarget(ns.name, ns.uid);
  const resolution = ctx.integrations.resolve(ns);
  if (resolution.kind === "managed") {
    const { key, integration } = resolution;
    const organization = organizationName(integration.organizationPrefix, ns.name);
    setOutcome(ctx, ns.name, {
      state: "Deleting",
      reason: "NamespaceDeleting",
      message: "Namespace is being deleted",
      integrationKey: key,
      organization,
    });
    if (integration.organizationDeletionPolicy === "Retain") {
      ctx.events.emit(
        target,
        "Normal",
        "OrganizationRetained",
        `Kept Quay organization ${organization} ` +
          `(organizationDeletionPolicy is Retain)`,
      );
    } else if (isValidQuayNamespace(organization)) {
      try {
        const credentials = ctx.integrations.credentials(key);
        if (credentials?.state !== "ok") {
          throw new QuayApiError(
            `No usable Quay credentials: ${credentials?.problem.message ?? "not loaded"}`,
            {
              status: 0,
              route: "DELETE /api/v1/organization/{org}",
            },
          );
        }
        const client = ctx.integrations.client(key) as QuayClient;
        const deleted = await client.deleteOrganization(organization);
        ctx.events.emit(
          target,
          "Normal",
          deleted ? "OrganizationDeleted" : "OrganizationAlreadyGone",
          deleted
            ? `Deleted Quay organization ${organization}`
            : `Quay organization ${organization} was already gone`,
        );
      } catch (error) {
        const first = ctx.deletionFailures.get(ns.name) ?? ctx.now();
        ctx.deletionFailures.set(ns.name, first);
        if (ctx.now() - first < ctx.settings.deletionBudgetMs) {
          ctx.events.emit(target, "Warning", "OrganizationDeletionFailed", messageOf(error));
          throw error;
        }
        ctx.events.emit(
          target,
          "Warning",
          "OrganizationLeftBehind",
          `Gave up deleting Quay organization ${organization} after ${
            Math.round((ctx.now() - first) / 1000)
          } s ` +
            `(${messageOf(error)}); delete it in Quay by hand. The namespace is released.`,
        );
      }
    }
    ctx.organizations.delete(mirrorKey(key, organization));
  } else {
    ctx.events.emit(
      target,
      "Warning",
      "FinalizerReleased",
      resolution.kind === "unmanaged"
        ? "No QuayIntegration selects this namespace; released it without touching Quay"
        : `QuayIntegration selection is ${resolution.kind} (${resolution.keys.join(", ")}); released the ` +
          `namespace without touching Quay — any organization for it is left in place`,
    );
  }
  await removeFinalizers(ctx, ns);
  ctx.deletionFailures.delete(ns.name);
  setOutcome(ctx, ns.name, undefined);
  return AWAIT_CHANGE;
}
