/**
 * @module
 * The {@linkcode AdmissionPort} over the operator's in-memory caches: which integration selects a
 * namespace (the registry), whether the namespace is terminating (the namespace cache) and whether
 * the push robot's Secret exists (the operator's own Secrets). No API call is made on the admission
 * path. `provision` asks the namespace queue for a reconcile when this replica leads (a follower's
 * leader reconciles on its own, from the same watch events) and waits for the caches to say the
 * namespace is ready.
 */
import { pushServiceAccount } from "../integration_spec.ts";
import { organizationName, robotSecretName } from "../names.ts";
import type { Operator } from "../operator.ts";
import type { AdmissionPort, NamespaceTarget } from "./port.ts";

/** What the port reads from the operator (a structural subset of {@linkcode Operator}). */
export type OperatorCaches = Pick<Operator, "namespaces" | "secrets" | "registry" | "namespaceQueue">;

/** Options for {@linkcode operatorAdmissionPort}. */
export interface OperatorPortOptions {
  operator: OperatorCaches;
  /** True while this replica leads (only the leader reconciles). */
  isLeader: () => boolean;
  /** How often `provision` looks at the caches again. @default 25 */
  pollMs?: number;
}

/** A target and whether waiting can change it (an overlap or a broken integration will not heal in seconds). */
interface Assessment {
  readonly target: NamespaceTarget;
  readonly settled: boolean;
}

function assess(operator: OperatorCaches, namespace: string): Assessment {
  const view = operator.namespaces.get(namespace);
  if (!view) {
    // A Build can only be created in an existing namespace: the watch has not delivered it yet.
    return {
      target: { state: "pending", reason: "the namespace is not in the operator's cache yet" },
      settled: false,
    };
  }
  if (view.deleting) return { target: { state: "unmanaged" }, settled: true };
  const resolution = operator.registry.resolve({ name: view.name, labels: view.labels });
  switch (resolution.kind) {
    case "unmanaged":
      return { target: { state: "unmanaged" }, settled: true };
    case "overlap":
      return {
        target: {
          state: "pending",
          reason: `several QuayIntegrations select the namespace (${resolution.keys.join(", ")})`,
        },
        settled: true,
      };
    case "undecided":
      return {
        target: {
          state: "pending",
          reason: `a QuayIntegration is invalid (${resolution.keys.join(", ")}); see its status conditions`,
        },
        settled: true,
      };
    case "managed":
      break;
  }
  const integration = resolution.integration;
  const credentials = operator.registry.credentials(resolution.key);
  if (credentials?.state === "missing") {
    return {
      target: { state: "pending", reason: credentials.problem.message },
      settled: true,
    };
  }
  const account = pushServiceAccount(integration);
  if (!account) {
    return {
      target: {
        state: "pending",
        reason: `QuayIntegration ${integration.name} configures no service account with write access`,
      },
      settled: true,
    };
  }
  const pushSecretName = robotSecretName(account, integration.clusterId);
  if (!operator.secrets.get(`${namespace}/${pushSecretName}`)) {
    return {
      target: { state: "pending", reason: `the push Secret ${pushSecretName} does not exist yet` },
      settled: false,
    };
  }
  return {
    target: {
      state: "ready",
      registryHost: integration.registryHost,
      organization: organizationName(integration.organizationPrefix, namespace),
      pushSecretName,
    },
    settled: true,
  };
}

/** The webhook's view of the operator. */
export function operatorAdmissionPort(options: OperatorPortOptions): AdmissionPort {
  const { operator, isLeader } = options;
  const pollMs = options.pollMs ?? 25;
  return {
    target: (namespace) => assess(operator, namespace).target,
    async provision(namespace, signal) {
      let requested = false;
      while (true) {
        signal.throwIfAborted();
        const { target, settled } = assess(operator, namespace);
        if (settled) return target;
        // Ask once, as soon as this replica leads; a follower's leader sees the same watch events.
        if (!requested && isLeader()) {
          operator.namespaceQueue.add(namespace);
          requested = true;
        }
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
