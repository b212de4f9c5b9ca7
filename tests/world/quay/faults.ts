/**
 * @module
 * Fault knobs of the test world's Quay and the per-request decision they lead to. Every knob takes
 * effect on the next request, applies to API routes, registry routes or both (`scope`), and counts
 * what it injected. Random knobs draw from their own seeded generator, so a given seed and request
 * order fail the same requests every run, and turning one knob on does not shift another's draws.
 *
 * The decision is pure; the server carries it out (sleep, answer, hold, or drop the connection).
 */
import type { Area } from "./router.ts";

/** Which routes a fault applies to. */
export type FaultScope = "api" | "registry" | "all";

/** Added latency: `ms` plus a uniform draw in `[0, jitterMs]`. */
export interface LatencyFault {
  ms: number;
  jitterMs?: number;
  /** @default "all" */
  scope?: FaultScope;
}

/** A fraction of requests answered with a server error instead of being served. */
export interface ErrorRateFault {
  /** Fraction in [0, 1]. */
  rate: number;
  /**
   * Bodies to choose from: `"json"` is Quay's own error (500 `{"message"}` or 520 problem body on
   * the API, 500 `UNKNOWN` on the registry); `"html"` is a reverse proxy's 502/503/504 page.
   * @default ["json", "html"]
   */
  kinds?: readonly ("json" | "html")[];
  /** Seed of this knob's generator. @default the world's seed */
  seed?: number;
  /** @default "api" */
  scope?: FaultScope;
}

/** A fraction of requests whose connection is dropped without an HTTP answer. */
export interface ResetFault {
  rate: number;
  /** @default the world's seed */
  seed?: number;
  /** @default "api" */
  scope?: FaultScope;
}

/** A token bucket in front of Quay: beyond it, 429 with `Retry-After` (whole seconds until a token). */
export interface RateLimitFault {
  ratePerSecond: number;
  /** Bucket size. @default max(1, ceil(ratePerSecond)) */
  burst?: number;
  /** @default "api" */
  scope?: FaultScope;
}

/** How {@linkcode QuayFaults.failRoute} fails a route. */
export interface RouteFailure {
  /** Status to answer. 429 carries `Retry-After`. @default 500 */
  status?: number;
  /** How many requests to fail, then the route works again. @default Infinity */
  times?: number;
  /** Body style (see {@linkcode ErrorRateFault.kinds}). @default "json" */
  body?: "json" | "html";
  /** `Retry-After` seconds for 429 and 503 answers. @default 1 */
  retryAfterSeconds?: number;
  /** Drop the connection instead of answering. @default false */
  reset?: boolean;
}

/** Options of {@linkcode QuayFaults.outage}. */
export interface OutageOptions {
  /**
   * `"refuse"`: the listener closes and open connections drop, so clients get connection refused
   * until {@linkcode QuayFaults.restore} reopens it on the same port. API and registry share the
   * port, so a refusal scoped to one half drops that half's requests' connections instead.
   * `"hang"`: requests are accepted and never answered until `restore()`, then they are served.
   * @default "refuse"
   */
  mode?: "refuse" | "hang";
  /** @default "all" */
  scope?: FaultScope;
}

/** The fault knobs of a running Quay world. */
export interface QuayFaults {
  /** Sets or clears added latency. */
  latency(fault: LatencyFault | null): void;
  /** Sets or clears the server-error rate (deterministic per seed and request order). */
  errorRate(fault: ErrorRateFault | null): void;
  /** Sets or clears the connection-reset rate. */
  resetRate(fault: ResetFault | null): void;
  /** Answers the next `count` requests in scope with 429 and `Retry-After`. */
  throttleNext(count: number, options?: { retryAfterSeconds?: number; scope?: FaultScope }): void;
  /** Sets or clears a token-bucket rate limit. */
  rateLimit(fault: RateLimitFault | null): void;
  /**
   * Fails one route, named as in `calls()` (`"POST /api/v1/repository"`). Throws for a route the
   * world does not serve, so a typo cannot silently test nothing. `null` clears it.
   */
  failRoute(route: string, failure: RouteFailure | null): void;
  /** Starts an outage. */
  outage(options?: OutageOptions): Promise<void>;
  /** Ends an outage: reopens the listener on the same port and releases held requests. */
  restore(): Promise<void>;
  /** Clears every knob and ends any outage. */
  clear(): Promise<void>;
  /** How many requests each fault affected, by `latency`, `error`, `reset`, `throttle`, `rateLimit`, `route`, `hang`, `refuse`. */
  injected(): Record<string, number>;
}

/** What to do with one request. */
export type FaultDecision =
  | { kind: "serve" }
  | { kind: "error"; status: number; body: "json" | "html"; retryAfterSeconds?: number }
  | { kind: "throttle"; retryAfterSeconds: number }
  | { kind: "reset" }
  | { kind: "hang" }
  | { kind: "refuse" };

/** A small, fast, seedable generator (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function inScope(scope: FaultScope, area: Area): boolean {
  return scope === "all" || scope === area;
}

function checkRate(rate: number, what: string): void {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`${what} rate must be within [0, 1], got ${rate}`);
}

/** Mutable fault settings and the per-request decision. */
export class FaultPlan {
  readonly #seed: number;
  #latency: (LatencyFault & { random: () => number }) | null = null;
  #errors: (ErrorRateFault & { random: () => number }) | null = null;
  #resets: (ResetFault & { random: () => number }) | null = null;
  #throttle: { remaining: number; retryAfterSeconds: number; scope: FaultScope } | null = null;
  #bucket: { rate: number; burst: number; tokens: number; at: number; scope: FaultScope } | null = null;
  readonly #routes = new Map<string, RouteFailure & { remaining: number }>();
  outage: { mode: "refuse" | "hang"; scope: FaultScope } | null = null;
  readonly counts: Record<string, number> = {};

  constructor(seed: number) {
    this.#seed = seed;
  }

  #count(what: string): void {
    this.counts[what] = (this.counts[what] ?? 0) + 1;
  }

  setLatency(fault: LatencyFault | null): void {
    if (fault && !(fault.ms >= 0 && (fault.jitterMs ?? 0) >= 0)) {
      throw new RangeError("latency must be non-negative");
    }
    this.#latency = fault ? { ...fault, random: seededRandom(this.#seed ^ 0x1a7e) } : null;
  }

  setErrorRate(fault: ErrorRateFault | null): void {
    if (fault) checkRate(fault.rate, "error");
    this.#errors = fault ? { ...fault, random: seededRandom(fault.seed ?? this.#seed) } : null;
  }

  setResetRate(fault: ResetFault | null): void {
    if (fault) checkRate(fault.rate, "reset");
    this.#resets = fault ? { ...fault, random: seededRandom((fault.seed ?? this.#seed) ^ 0x5e7) } : null;
  }

  throttleNext(count: number, options: { retryAfterSeconds?: number; scope?: FaultScope } = {}): void {
    this.#throttle = count > 0
      ? { remaining: count, retryAfterSeconds: options.retryAfterSeconds ?? 1, scope: options.scope ?? "api" }
      : null;
  }

  setRateLimit(fault: RateLimitFault | null): void {
    if (fault && !(fault.ratePerSecond > 0)) throw new RangeError("ratePerSecond must be positive");
    if (!fault) {
      this.#bucket = null;
      return;
    }
    const burst = fault.burst ?? Math.max(1, Math.ceil(fault.ratePerSecond));
    this.#bucket = {
      rate: fault.ratePerSecond,
      burst,
      tokens: burst,
      at: performance.now(),
      scope: fault.scope ?? "api",
    };
  }

  setRouteFailure(route: string, failure: RouteFailure | null): void {
    if (failure) this.#routes.set(route, { ...failure, remaining: failure.times ?? Infinity });
    else this.#routes.delete(route);
  }

  clear(): void {
    this.#latency = null;
    this.#errors = null;
    this.#resets = null;
    this.#throttle = null;
    this.#bucket = null;
    this.#routes.clear();
  }

  /** Milliseconds to wait before answering a request in `area`. */
  delayFor(area: Area): number {
    const l = this.#latency;
    if (!l || !inScope(l.scope ?? "all", area)) return 0;
    const ms = l.ms + (l.jitterMs ? l.random() * l.jitterMs : 0);
    if (ms > 0) this.#count("latency");
    return ms;
  }

  /** The fate of one request to `route` (its `METHOD template` key) in `area`. */
  decide(route: string, area: Area): FaultDecision {
    const outage = this.outage;
    if (outage && inScope(outage.scope, area)) {
      this.#count(outage.mode === "hang" ? "hang" : "refuse");
      return outage.mode === "hang" ? { kind: "hang" } : { kind: "refuse" };
    }
    const failure = this.#routes.get(route);
    if (failure && failure.remaining > 0) {
      failure.remaining--;
      this.#count("route");
      if (failure.reset) return { kind: "reset" };
      const status = failure.status ?? 500;
      if (status === 429) return { kind: "throttle", retryAfterSeconds: failure.retryAfterSeconds ?? 1 };
      return {
        kind: "error",
        status,
        body: failure.body ?? "json",
        retryAfterSeconds: status === 503 ? failure.retryAfterSeconds ?? 1 : failure.retryAfterSeconds,
      };
    }
    const throttle = this.#throttle;
    if (throttle && throttle.remaining > 0 && inScope(throttle.scope, area)) {
      throttle.remaining--;
      this.#count("throttle");
      return { kind: "throttle", retryAfterSeconds: throttle.retryAfterSeconds };
    }
    const bucket = this.#bucket;
    if (bucket && inScope(bucket.scope, area)) {
      const now = performance.now();
      bucket.tokens = Math.min(bucket.burst, bucket.tokens + ((now - bucket.at) / 1000) * bucket.rate);
      bucket.at = now;
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
      } else {
        this.#count("rateLimit");
        return {
          kind: "throttle",
          retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / bucket.rate)),
        };
      }
    }
    const resets = this.#resets;
    if (resets && inScope(resets.scope ?? "api", area) && resets.random() < resets.rate) {
      this.#count("reset");
      return { kind: "reset" };
    }
    const errors = this.#errors;
    if (errors && inScope(errors.scope ?? "api", area) && errors.random() < errors.rate) {
      this.#count("error");
      const kinds = errors.kinds && errors.kinds.length > 0 ? errors.kinds : ["json", "html"] as const;
      const body = kinds[Math.floor(errors.random() * kinds.length)] ?? "json";
      const statuses = body === "html" ? [502, 503, 504] : area === "api" ? [500, 520] : [500];
      const status = statuses[Math.floor(errors.random() * statuses.length)] ?? 500;
      return { kind: "error", status, body };
    }
    return { kind: "serve" };
  }
}
