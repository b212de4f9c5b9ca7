/**
 * @module
 * `quay-bridge plan`: a dry run. It fills the same caches the operator uses, reads each selected
 * namespace's organization from Quay (read-only calls), and prints what the operator would change
 * in Quay and in the cluster — computed by the same planning functions the reconcilers use.
 */
import type { Config } from "../config.ts";
import { messageOf } from "../errors.ts";
import { KubeClient, loadKubeConnection } from "../kube/client.ts";
import { createLogger } from "../log.ts";
import {
  FINALIZER,
  isValidQuayNamespace,
  LEGACY_FINALIZER,
  organizationName,
  PROJECT_READY_ANNOTATION,
} from "../names.ts";
import { Operator } from "../operator.ts";
import { desiredOrganization, planCluster } from "../controller/namespace_controller.ts";
import { planQuay } from "../controller/quay_plan.ts";
import { observeOrganization } from "../controller/quay_sync.ts";
import type { QuayClient } from "../quay/client.ts";

/** The plan for one namespace. */
export interface NamespacePlan {
  readonly namespace: string;
  readonly integration?: string;
  readonly organization?: string;
  readonly state: string;
  readonly quay: readonly string[];
  readonly cluster: readonly string[];
}

/** Options for {@linkcode runPlan}. */
export interface PlanOptions {
  config: Config;
  write: (text: string) => void;
}

/** Prints the plan; exit code 0 (1 when the plan could not be computed). */
export async function runPlan(options: PlanOptions): Promise<number> {
  const { config } = options;
  const logger = createLogger({ level: config.logLevel === "debug" ? "debug" : "error" });
  let kube: KubeClient;
  try {
    kube = new KubeClient(
      await loadKubeConnection({ kubeconfig: config.kubeconfig, context: config.context }),
    );
  } catch (error) {
    options.write(`error: ${messageOf(error)}\n`);
    return 1;
  }
  const operator = new Operator({
    kube,
    logger,
    events: { emit() {} },
    settings: {
      policy: { operatorNamespace: config.namespace, credentialsNamespaces: config.credentialsNamespaces },
    },
  });
  try {
    await operator.start();
    const plans = await computePlans(operator);
    if (config.output === "json") {
      options.write(JSON.stringify({ namespaces: plans }, null, 2) + "\n");
    } else {
      let changes = 0;
      for (const plan of plans) {
        const total = plan.quay.length + plan.cluster.length;
        changes += total;
        options.write(
          `${plan.namespace}: ${plan.state}${
            plan.organization ? ` (organization ${plan.organization})` : ""
          }\n`,
        );
        for (const line of plan.quay) options.write(`  quay:    ${line}\n`);
        for (const line of plan.cluster) options.write(`  cluster: ${line}\n`);
      }
      options.write(`\n${changes} change(s) planned across ${plans.length} namespace(s).\n`);
    }
    return 0;
  } catch (error) {
    options.write(`error: ${messageOf(error)}\n`);
    return 1;
  } finally {
    await operator.stop(1_000);
    kube.close();
  }
}

/** Computes the plan of every namespace the caches hold (exported for tests). */
export async function computePlans(operator: Operator): Promise<NamespacePlan[]> {
  const plans: NamespacePlan[] = [];
  const names = [...operator.namespaces.keys()].sort();
  for (const name of names) {
    const ns = operator.namespaces.get(name);
    if (!ns) continue;
    const ours = ns.finalizers.some((f) => f === FINALIZER || f === LEGACY_FINALIZER);
    const resolution = operator.registry.resolve(ns);
    if (resolution.kind !== "managed") {
      const cluster = ours ? ["release the namespace finalizer"] : [];
      if (resolution.kind === "unmanaged" && !ours) continue;
      plans.push({ namespace: name, state: resolution.kind, quay: [], cluster });
      continue;
    }
    const { key, integration } = resolution;
    const organization = organizationName(integration.organizationPrefix, name);
    const base = { namespace: name, integration: key, organization };
    if (ns.deleting) {
      plans.push({
        ...base,
        state: "deleting",
        quay: integration.organizationDeletionPolicy === "Delete"
          ? [`delete organization ${organization}`]
          : [],
        cluster: ours ? ["release the namespace finalizer"] : [],
      });
      continue;
    }
    if (!isValidQuayNamespace(organization)) {
      plans.push({ ...base, state: "invalid organization name", quay: [], cluster: [] });
      continue;
    }
    if (!ns.annotations[PROJECT_READY_ANNOTATION]) {
      plans.push({ ...base, state: "waiting for the project", quay: [], cluster: [] });
      continue;
    }
    const client = operator.registry.client(key) as QuayClient;
    const credentials = operator.registry.credentials(key);
    if (credentials?.state !== "ok") {
      plans.push({
        ...base,
        state: `no credentials (${credentials?.problem.message ?? "unknown"})`,
        quay: [],
        cluster: [],
      });
      continue;
    }
    try {
      const known = await observeOrganization(client, organization, undefined, Date.now());
      const { desired } = desiredOrganization(
        { imageStreams: operator.imageStreams, events: { emit() {} } },
        ns,
        integration,
        organization,
      );
      const quay = planQuay(desired, known).map((c) => {
        switch (c.kind) {
          case "createOrganization":
            return `create organization ${organization}`;
          case "createRobot":
            return `create robot ${c.robot.fullName}`;
          case "createPrototype":
            return `give ${c.robot.fullName} ${c.robot.role} on new repositories`;
          case "updatePrototype":
            return `change ${c.robot.fullName}'s default permission to ${c.robot.role}`;
          case "grantRepository":
            return `grant ${c.robot.role} on ${c.repository} to ${c.robot.fullName}`;
          case "createRepository":
            return `create repository ${organization}/${c.repository}`;
          case "deleteRepository":
            return `delete repository ${organization}/${c.repository}`;
        }
      });
      const { changes, missingAccounts } = planCluster(integration, organization, {
        token: (sa) => known.robots.get(sa),
        secret: (secret) => operator.secrets.get(`${name}/${secret}`),
        serviceAccount: (sa) => operator.serviceAccounts.get(`${name}/${sa}`),
      });
      const cluster = [
        ...(ns.finalizers.includes(FINALIZER) && !ns.finalizers.includes(LEGACY_FINALIZER)
          ? []
          : ["add the namespace finalizer"]),
        ...changes.map((c) =>
          c.kind === "linkSecret"
            ? `link Secret ${c.secret} to service account ${c.serviceAccount}`
            : `${c.kind === "createSecret" ? "create" : "update"} Secret ${c.secret}`
        ),
        ...missingAccounts.map((a) => `service account ${a} is missing (linked once it exists)`),
      ];
      plans.push({
        ...base,
        state: quay.length + cluster.length === 0 ? "in sync" : "changes",
        quay,
        cluster,
      });
    } catch (error) {
      plans.push({ ...base, state: `cannot read Quay: ${messageOf(error)}`, quay: [], cluster: [] });
    }
  }
  return plans;
}
