/**
 * @module
 * The {@linkcode AdmissionPort} over the operator's caches. It gathers the namespace's facts and
 * runs the same gates as the namespace reconcile and `quay-bridge plan` (`decideNamespace`), then
 * reads the outcome: a namespace no valid QuayIntegration selects is admitted unchanged — with an
 * admission warning when an invalid one would select it — and only a namespace a valid one selects
 * is rewritten (its push Secret exists) or waited for and denied while its provisioning fails. No
 * API call is made on the admission path. `provision` asks the namespace controller for a pass
 * (a no-op on a follower, whose leader reconciles on its own from the same watch events) and waits
 * for the caches to say the namespace is ready.
 */
import type { NamespaceCaches } from "../controller/namespace_facts.ts";
import { readNamespaceFacts } from "../controller/namespace_facts.ts";
import { decideNamespace, type PlanSettings } from "../controller/namespace_plan.ts";
import { pushServiceAccount } from "../integration_spec.ts";
import { robotSecretName } from "../names.ts";
import type { AdmissionPort, NamespaceTarget } from "./port.ts";

/** Options for {@linkcode operatorAdmissionPort}. */
export interface OperatorPortOptions {
  /** The operator's caches. */
  caches: NamespaceCaches;
  settings: PlanSettings;
  /** Asks for a namespace reconcile; false when this replica cannot (it does not lead). */
  requestReconcile: (namespace: string) => boolean;
  /** How often `provision` looks at the caches again. @default 25 */
  pollMs?: number;
  /** Clock. @default Date.now */
  now?: () => number;
}

/** A target and whether waiting can change it (an overlap or a broken integration will not heal in seconds). */
interface Assessment {
  readonly target: NamespaceTarget;
  readonly settled: boolean;
}

/** The webhook's answer for `namespace`, from the shared decision on the cached facts. */
export function assessNamespace(
  caches: NamespaceCaches,
  settings: PlanSettings,
  namespace: string,
  now = Date.now(),
): Assessment {
  const facts = readNamespaceFacts(caches, namespace, { now, settings });
  if (!facts.namespace) {
    // A Build can only be created in an existing namespace: the watch has not delivered it yet.
    return {
      target: { state: "pending", reason: "the namespace is not in the operator's cache yet" },
      settled: false,
    };
  }
  const decision = decideNamespace(facts);
  if (decision.kind === "decided") {
    const outcome = decision.plan.outcome;
    if (!outcome || outcome.state === "Unmanaged" || outcome.state === "Deleting") {
      return { target: { state: "unmanaged", outcome: outcome?.reason }, settled: true };
    }
    if (outcome.reason === "IntegrationInvalid") {
      const warning =
        `quay-bridge: ${outcome.message}; the build output was left unchanged (integrated registry)`;
      return { target: { state: "unmanaged", warning, outcome: outcome.reason }, settled: true };
    }
    // OpenShift annotates a new project within moments: worth waiting for, unlike the other gates.
    const settled = outcome.reason !== "WaitingForProject";
    return { target: { state: "pending", reason: outcome.message, outcome: outcome.reason }, settled };
  }
  const { integration, organization, outcome } = decision;
  const account = pushServiceAccount(integration);
  if (!account) {
    return { target: { state: "pending", reason: outcome.message, outcome: outcome.reason }, settled: true };
  }
  const pushSecretName = robotSecretName(account, integration.clusterId);
  if (!facts.secrets.has(pushSecretName)) {
    return {
      target: {
        state: "pending",
        reason: `the push Secret ${pushSecretName} does not exist yet`,
        outcome: outcome.reason,
      },
      settled: false,
    };
  }
  return {
    target: {
      state: "ready",
      registryHost: integration.registryHost,
      organization,
      pushSecretName,
      outcome: outcome.reason,
    },
    settled: true,
  };
}

/** The webhook's view of the operator. */
export function operatorAdmissionPort(options: OperatorPortOptions): AdmissionPort {
  const { caches, settings } = options;
  const pollMs = options.pollMs ?? 25;
  const now = options.now ?? Date.now;
  return {
    target: (namespace) => assessNamespace(caches, settings, namespace, now()).target,
    async provision(namespace, signal) {
      let requested = false;
      while (true) {
        signal.throwIfAborted();
        const { target, settled } = assessNamespace(caches, settings, namespace, now());
        if (settled) return target;
        // Ask once, as soon as this replica leads; a follower's leader sees the same watch events.
        if (!requested) requested = options.requestReconcile(namespace);
        await sleep(pollMs, signal);
      }
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    function onAbort(): void {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
