/**
 * @module
 * `quay-bridge plan`: a dry run. It fills the same caches the operator uses, gathers each
 * namespace's facts and plans it with the reconcile's own planner (`planNamespace`), reading the
 * organization of a namespace to sync from Quay (read-only calls), and prints the outcome and the
 * changes the operator would make in Quay and in the cluster.
 */
import type { Config } from "../config.ts";
import { messageOf } from "../errors.ts";
import { KubeClient, loadKubeConnection } from "../kube/client.ts";
import { createLogger } from "../log.ts";
import { Operator } from "../operator.ts";
import { clusterPlanText, finalizerPlanText, planText } from "../controller/change_text.ts";
import { type NamespaceCaches, readNamespaceFacts } from "../controller/namespace_facts.ts";
import {
  decideNamespace,
  type NamespacePlan as Plan,
  planNamespace,
  type PlanSettings,
} from "../controller/namespace_plan.ts";
import type { QuayPort } from "../controller/namespace_ports.ts";
import type { KnownOrganization } from "../controller/quay_plan.ts";
import { observeOrganization } from "../controller/quay_sync.ts";

/** The plan for one namespace, as printed. */
export interface NamespacePlan {
  readonly namespace: string;
  readonly integration?: string | undefined;
  readonly organization?: string | undefined;
  /** The namespace's outcome once the plan is applied (as the reconcile would record it). */
  readonly state: string;
  readonly reason: string;
  readonly message: string;
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
      await loadKubeConnection({
        kubeconfig: config.kubeconfig,
        context: config.context,
        environment: config.kubeEnvironment,
      }),
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
    const plans = await computePlans(
      operator.caches,
      operator.namespaces.keys(),
      operator.settings,
      (key) => operator.registry.client(key),
    );
    if (config.output === "json") {
      options.write(JSON.stringify({ namespaces: plans }, null, 2) + "\n");
    } else {
      let changes = 0;
      for (const plan of plans) {
        changes += plan.quay.length + plan.cluster.length;
        const org = plan.organization ? ` (organization ${plan.organization})` : "";
        options.write(`${plan.namespace}: ${plan.state} ${plan.reason}${org}: ${plan.message}\n`);
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

/** The printed form of a plan. */
export function describePlan(namespace: string, plan: Plan): NamespacePlan {
  const organization = plan.organization ?? "";
  const finalizer = finalizerPlanText(plan.finalizer);
  return {
    namespace,
    integration: plan.integrationKey,
    organization: plan.organization,
    state: plan.outcome?.state ?? "Released",
    reason: plan.outcome?.reason ?? "FinalizerReleased",
    message: plan.outcome?.message ?? "The namespace is released",
    quay: plan.quay.map((c) => planText(c, organization)),
    cluster: [
      ...(finalizer && plan.finalizer === "add" ? [finalizer] : []),
      ...plan.cluster.map(clusterPlanText),
      ...(finalizer && plan.finalizer === "release" ? [finalizer] : []),
    ],
  };
}

/**
 * Plans every namespace the caches hold, reading Quay (read-only) for those to sync. Namespaces no
 * QuayIntegration selects and nothing would change in are left out.
 */
export async function computePlans(
  caches: NamespaceCaches,
  namespaces: Iterable<string>,
  settings: PlanSettings,
  quay: (integrationKey: string) => QuayPort | undefined,
): Promise<NamespacePlan[]> {
  const plans: NamespacePlan[] = [];
  for (const name of [...namespaces].sort()) {
    const facts = readNamespaceFacts(caches, name, { now: Date.now(), settings });
    const decision = decideNamespace(facts);
    let plan: Plan;
    if (decision.kind === "decided") {
      plan = decision.plan;
    } else {
      let known: KnownOrganization;
      try {
        const client = quay(decision.key);
        if (!client) throw new Error(`QuayIntegration ${decision.key} has no Quay client`);
        known = await observeOrganization(client, decision.organization, undefined, facts.now);
      } catch (error) {
        plans.push({
          namespace: name,
          integration: decision.key,
          organization: decision.organization,
          state: "Failed",
          reason: "QuayUnreadable",
          message: `cannot read Quay: ${messageOf(error)}`,
          quay: [],
          cluster: [],
        });
        continue;
      }
      plan = planNamespace(facts, known);
    }
    const described = describePlan(name, plan);
    if (described.reason === "NotSelected" && described.quay.length + described.cluster.length === 0) {
      continue;
    }
    plans.push(described);
  }
  return plans;
}
