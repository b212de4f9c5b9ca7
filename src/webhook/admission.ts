/**
 * @module
 * The admission decision for one request: which Builds are rewritten, which pass unchanged, which
 * are denied and with what message. Answers from the port's memory; only a selected namespace that
 * is not provisioned yet waits, for at most the provisioning budget, on a provisioning shared by
 * every admission for that namespace.
 */
import { messageOf } from "../errors.ts";
import {
  type BuildFacts,
  buildOutputPatch,
  inspectBuildAdmission,
  invalidOutputMessage,
} from "./build_patch.ts";
import type { AdmissionPort, NamespaceTarget } from "./port.ts";
import type { AdmissionAnswer, JsonObject } from "./review.ts";

/**
 * How an admission ended, for metrics: `mutated` (patched), `allowed` (unchanged), `denied`,
 * `invalid` (HTTP 400, no AdmissionReview could be answered), `error` (an internal failure, denied).
 */
export type AdmissionOutcome = "mutated" | "allowed" | "denied" | "invalid" | "error";

/** The decision on one request. */
export interface AdmissionVerdict {
  readonly outcome: Exclude<AdmissionOutcome, "invalid">;
  /** CamelCase reason for logs and metrics, e.g. `Mutated`, `UnmanagedNamespace`, `NotProvisioned`. */
  readonly reason: string;
  readonly answer: AdmissionAnswer;
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
}

/** Shares one `provision` call per namespace among concurrent admissions. */
export interface Provisioner {
  /** Resolves with the namespace's target, or rejects when `signal` aborts first. */
  provision(namespace: string, signal: AbortSignal): Promise<NamespaceTarget>;
}

/** The provisioning deadline passed before the namespace became ready. */
export class ProvisionTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProvisionTimeoutError";
  }
}

interface InFlight {
  readonly promise: Promise<NamespaceTarget>;
  readonly controller: AbortController;
  waiters: number;
}

/** A {@linkcode Provisioner} over `port` that coalesces concurrent calls for one namespace. */
export function sharedProvisioner(port: AdmissionPort): Provisioner {
  const inFlight = new Map<string, InFlight>();
  function start(namespace: string): InFlight {
    const controller = new AbortController();
    const promise = Promise.resolve()
      .then(() => port.provision(namespace, controller.signal))
      .finally(() => {
        if (inFlight.get(namespace) === entry) inFlight.delete(namespace);
      });
    // Every waiter may have given up before it settles; the rejection must not go unhandled.
    promise.catch(() => {});
    const entry: InFlight = { promise, controller, waiters: 0 };
    inFlight.set(namespace, entry);
    return entry;
  }
  return {
    provision(namespace, signal) {
      const entry = inFlight.get(namespace) ?? start(namespace);
      entry.waiters++;
      return new Promise<NamespaceTarget>((resolve, reject) => {
        function onAbort(): void {
          settle();
          reject(signal.reason);
        }
        function settle(): void {
          signal.removeEventListener("abort", onAbort);
          entry.waiters--;
          if (entry.waiters === 0 && inFlight.get(namespace) === entry) {
            inFlight.delete(namespace);
            entry.controller.abort(new ProvisionTimeoutError("every admission waiting for it gave up"));
          }
        }
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort);
        entry.promise.then(
          (target) => {
            if (signal.aborted) return;
            settle();
            resolve(target);
          },
          (error) => {
            if (signal.aborted) return;
            settle();
            reject(error);
          },
        );
      });
    },
  };
}

/** What {@linkcode decideAdmission} needs. */
export interface AdmissionContext {
  readonly port: AdmissionPort;
  readonly provisioner: Provisioner;
  /** Longest wait for on-demand provisioning, in milliseconds. */
  readonly provisionBudgetMs: number;
}

function allow(reason: string, namespace?: string, name?: string): AdmissionVerdict {
  return { outcome: "allowed", reason, answer: { allowed: true }, namespace, name };
}

interface Denial {
  readonly reason: string;
  readonly code: 422 | 500 | 503;
  readonly message: string;
}

const STATUS_REASONS = { 422: "Invalid", 500: "InternalError", 503: "ServiceUnavailable" } as const;

function deny(build: BuildFacts, denial: Denial): AdmissionVerdict {
  return {
    outcome: denial.code === 500 ? "error" : "denied",
    reason: denial.reason,
    answer: {
      allowed: false,
      status: { code: denial.code, reason: STATUS_REASONS[denial.code], message: denial.message },
    },
    namespace: build.namespace,
    name: build.name,
  };
}

function internalError(build: BuildFacts, what: string): AdmissionVerdict {
  return deny(build, { reason: "PortFailed", code: 500, message: `quay-bridge: internal error: ${what}` });
}

/** True for a well-formed target; the port is trusted, but a bug in it must not crash admissions. */
function isTarget(value: unknown): value is NamespaceTarget {
  if (typeof value !== "object" || value === null) return false;
  const target = value as Record<string, unknown>;
  switch (target.state) {
    case "unmanaged":
      return target.warning === undefined || typeof target.warning === "string";
    case "pending":
      return typeof target.reason === "string";
    case "ready":
      return typeof target.registryHost === "string" && typeof target.organization === "string" &&
        typeof target.pushSecretName === "string";
    default:
      return false;
  }
}

function notReadyMessage(build: BuildFacts, why: string): string {
  return `quay-bridge: namespace ${JSON.stringify(build.namespace)} is managed by quay-bridge but its Quay ` +
    `organization is not ready (${why}), so the build cannot be pointed at Quay yet. Start the build ` +
    `again in a minute (oc start-build); if it keeps failing, check the QuayIntegration's status ` +
    `conditions and the quay-bridge operator logs.`;
}

function crossNamespaceWarning(build: BuildFacts, outputNamespace: string): string {
  return `quay-bridge: output ImageStreamTag is in namespace ${JSON.stringify(outputNamespace)}, not the ` +
    `build's ${JSON.stringify(build.namespace)}; its Quay robot cannot push there, so the output was ` +
    `left unchanged (integrated registry).`;
}

/** Left alone; when an invalid QuayIntegration would select the namespace, the client is told why. */
function unmanaged(build: BuildFacts, target: { readonly warning?: string | undefined }): AdmissionVerdict {
  if (target.warning === undefined) return allow("UnmanagedNamespace", build.namespace, build.name);
  return {
    ...allow("IntegrationInvalid", build.namespace, build.name),
    answer: { allowed: true, warnings: [target.warning] },
  };
}

function fromTarget(build: BuildFacts, target: unknown, afterProvisioning: boolean): AdmissionVerdict {
  if (!isTarget(target)) return internalError(build, "the operator returned a malformed namespace target");
  switch (target.state) {
    case "unmanaged":
      return unmanaged(build, target);
    case "ready":
      return {
        outcome: "mutated",
        reason: afterProvisioning ? "MutatedAfterProvisioning" : "Mutated",
        answer: { allowed: true, patch: buildOutputPatch(build, target) },
        namespace: build.namespace,
        name: build.name,
      };
    case "pending":
      return deny(build, {
        reason: "NotProvisioned",
        code: 503,
        message: notReadyMessage(build, target.reason),
      });
  }
}

async function provisionThenDecide(build: BuildFacts, context: AdmissionContext): Promise<AdmissionVerdict> {
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new ProvisionTimeoutError(`not provisioned within ${context.provisionBudgetMs} ms`)),
    context.provisionBudgetMs,
  );
  try {
    const target = await context.provisioner.provision(build.namespace, deadline.signal);
    return fromTarget(build, target, true);
  } catch (error) {
    const reason = error instanceof ProvisionTimeoutError ? "ProvisionTimeout" : "ProvisionFailed";
    return deny(build, { reason, code: 503, message: notReadyMessage(build, messageOf(error)) });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Decides one admission request (already known to carry a uid). Synchronous unless the namespace
 * needs provisioning. Never throws: a failure of the port becomes a denial with code 500.
 */
export function decideAdmission(
  request: JsonObject,
  context: AdmissionContext,
): AdmissionVerdict | Promise<AdmissionVerdict> {
  const inspection = inspectBuildAdmission(request);
  if (inspection.kind === "ignore") return allow(inspection.reason, inspection.namespace, inspection.name);
  const build = inspection.build;
  let target: unknown;
  try {
    target = context.port.target(build.namespace);
  } catch (error) {
    return internalError(build, messageOf(error));
  }
  if (!isTarget(target)) return internalError(build, "the operator returned a malformed namespace target");
  if (target.state === "unmanaged") return unmanaged(build, target);
  if (build.outputNamespace !== undefined && build.outputNamespace !== build.namespace) {
    return {
      ...allow("CrossNamespaceOutput", build.namespace, build.name),
      answer: { allowed: true, warnings: [crossNamespaceWarning(build, build.outputNamespace)] },
    };
  }
  const invalid = invalidOutputMessage(build);
  if (invalid !== undefined) return deny(build, { reason: "InvalidOutputName", code: 422, message: invalid });
  if (target.state === "ready") return fromTarget(build, target, false);
  if (build.dryRun) {
    const message = notReadyMessage(build, `${target.reason}; a dry run does not provision`);
    return deny(build, { reason: "NotProvisioned", code: 503, message });
  }
  return provisionThenDecide(build, context);
}
