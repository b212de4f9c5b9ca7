/**
 * @module
 * Leader election on a `coordination.k8s.io/v1` Lease, following client-go's algorithm: acquire or
 * renew with optimistic concurrency (the Lease's resourceVersion), judge a foreign holder expired by
 * the local monotonic time since its record last changed (never by comparing clocks), step down
 * when no renewal succeeded within the renew deadline — also when a renewal request hangs, since
 * the deadline bounds each attempt, not only failed ones — and release on shutdown so a standby
 * takes over at once. Lease times are MicroTime (six fractional digits), as the API server requires.
 */
import { KubeApiError, messageOf } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { type KubeObject, LEASES } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import { sleepUnlessAborted } from "../sleep.ts";

/**
 * True when `attempt` resolves true within `ms` and before `signal` aborts; a late answer is
 * ignored (the request ends on the client's own timeout).
 */
async function withinMs(attempt: Promise<boolean>, ms: number, signal?: AbortSignal): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    onAbort = () => resolve(false);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([attempt, late]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

/** How long a release on shutdown may take before the process goes on without it. */
const RELEASE_TIMEOUT_MS = 500;

/** RFC 3339 with exactly six fractional digits. */
export function microTime(date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

type Lease = KubeObject & { spec?: LeaseSpec };

/** Options for {@linkcode LeaderElector}. */
export interface LeaderElectorOptions {
  kube: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  logger: Logger;
  /** @default 15_000 */
  leaseDurationMs?: number;
  /** @default 10_000 */
  renewDeadlineMs?: number;
  /** @default 2_000 */
  retryPeriodMs?: number;
}

/** Campaigns for, holds and releases one Lease. */
export class LeaderElector {
  readonly #o:
    & Required<Omit<LeaderElectorOptions, "kube" | "logger">>
    & Pick<LeaderElectorOptions, "kube" | "logger">;
  /** The last observed record and when (monotonic ms) it last changed. */
  #observed: { record: string; at: number } | undefined;
  #resourceVersion: string | undefined;
  /** Monotonic time of the last successful renewal while holding; undefined when not holding. */
  #renewedAt: number | undefined;
  #lost = false;

  constructor(options: LeaderElectorOptions) {
    this.#o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  /** Resolves when this replica holds the Lease, or `false` when `signal` aborted first. */
  async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await withinMs(this.#tryAcquireOrRenew(), this.#o.renewDeadlineMs, signal)) {
        if (signal.aborted) {
          await withinMs(this.release().then(() => true), RELEASE_TIMEOUT_MS);
          break;
        }
        this.#o.logger.info("leadership acquired", { lease: this.#o.name, identity: this.#o.identity });
        return true;
      }
      await sleepUnlessAborted(this.#o.retryPeriodMs * (0.8 + Math.random() * 0.4), signal);
    }
    return false;
  }

  /**
   * Renews every retry period until `signal` aborts (then releases the Lease and resolves
   * `"released"`) or no renewal succeeded within the renew deadline (resolves `"lost"`).
   */
  async hold(signal: AbortSignal): Promise<"lost" | "released"> {
    this.#renewedAt = performance.now();
    while (!signal.aborted) {
      await sleepUnlessAborted(this.#o.retryPeriodMs, signal);
      if (signal.aborted) break;
      const left = this.#renewedAt + this.#o.renewDeadlineMs - performance.now();
      if (left > 0 && await withinMs(this.#tryAcquireOrRenew(), left, signal)) {
        this.#renewedAt = performance.now();
      } else if (!signal.aborted && performance.now() - this.#renewedAt >= this.#o.renewDeadlineMs) {
        this.#o.logger.error("leadership lost", { lease: this.#o.name, identity: this.#o.identity });
        this.#lost = true;
        this.#renewedAt = undefined;
        return "lost";
      }
    }
    this.#renewedAt = undefined;
    await withinMs(this.release().then(() => true), RELEASE_TIMEOUT_MS);
    return "released";
  }

  /**
   * Liveness of the elector: unhealthy once leadership was lost, and while holding when no renewal
   * succeeded for half the renew deadline (the API server is unreachable or the Lease contested).
   */
  health(): { ok: boolean; reason?: string } {
    if (this.#lost) return { ok: false, reason: "leadership lost" };
    if (this.#renewedAt === undefined) return { ok: true };
    const since = performance.now() - this.#renewedAt;
    if (since > this.#o.renewDeadlineMs / 2) {
      return { ok: false, reason: `lease not renewed for ${Math.round(since / 100) / 10}s` };
    }
    return { ok: true };
  }

  /** Gives the Lease up (holder cleared, duration 1 s) so a standby takes over at once. */
  async release(): Promise<void> {
    try {
      const lease = await this.#o.kube.get<Lease>(LEASES, this.#o.name, { namespace: this.#o.namespace });
      if (!lease || lease.spec?.holderIdentity !== this.#o.identity) return;
      await this.#o.kube.update(LEASES, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime() },
      });
      this.#o.logger.info("leadership released", { lease: this.#o.name });
    } catch (error) {
      this.#o.logger.warn("lease release failed", { error: messageOf(error) });
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { kube, namespace, name, identity } = this.#o;
    const now = microTime();
    const durationSeconds = Math.ceil(this.#o.leaseDurationMs / 1000);
    try {
      const lease = await kube.get<Lease>(LEASES, name, { namespace });
      if (!lease) {
        await kube.create(LEASES, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
        });
        return true;
      }
      const spec = lease.spec ?? {};
      const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
      const t = performance.now();
      if (this.#observed?.record !== record) this.#observed = { record, at: t };
      this.#resourceVersion = lease.metadata.resourceVersion;
      const holder = spec.holderIdentity ?? "";
      const held = holder !== "" && holder !== identity;
      const expiresAfter = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
      if (held && t - this.#observed.at < expiresAfter) return false;
      const takeover = holder !== identity;
      await kube.update(LEASES, {
        ...lease,
        metadata: { ...lease.metadata, resourceVersion: this.#resourceVersion },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: now,
          acquireTime: takeover ? now : spec.acquireTime ?? now,
          leaseTransitions: (spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
        },
      });
      return true;
    } catch (error) {
      if (!(error instanceof KubeApiError && error.status === 409)) {
        this.#o.logger.warn("lease update failed", { lease: name, error: messageOf(error) });
      }
      return false;
    }
  }
}
