/**
 * @module
 * When a robot's token is rotated, as a pure function of facts: the Secret's
 * `credentials-rotated-at` and `rotate-credentials-handled` annotations, the integration's
 * `spec.credentialRotation.interval`, the namespace's `rotate-credentials` annotation and the clock.
 * The state lives in the Secret, not in memory, so an operator restart neither rotates early nor
 * forgets a due rotation.
 *
 * Spread: a namespace's tokens are due within the last tenth of the interval, at a point fixed by a
 * hash of the namespace's name, so namespaces created (or first stamped) together rotate over a
 * tenth of the interval (72 h for 720 h), not in one minute. A backlog — tokens already older than
 * the interval plus that tenth, after rotation was switched on for old Secrets or after a long
 * outage — is spread the same way: each namespace rotates only in its own short slot of every tenth.
 */
import { ROTATED_AT_ANNOTATION, ROTATION_HANDLED_ANNOTATION } from "../names.ts";
import type { DesiredRobot } from "./quay_plan.ts";
import type { SecretView } from "./views.ts";

/** The fraction of the interval over which due times are spread. */
export const ROTATION_SPREAD = 0.1;

/** Why a token is rotated. */
export type RotationReason = "requested" | "interval";

/** A robot whose token is rotated now. */
export interface Rotation {
  readonly robot: DesiredRobot;
  readonly reason: RotationReason;
}

/** What the rotation decision reads about one namespace. */
export interface RotationFacts {
  readonly namespace: string;
  /** The namespace's `rotate-credentials` annotation, if any. */
  readonly requested: string | undefined;
  /** `spec.credentialRotation.interval`; undefined: rotate on request only. */
  readonly intervalMs: number | undefined;
  /** How often a synced namespace is looked at (bounds the backlog slot, see the module doc). */
  readonly resyncMs: number;
  readonly now: number;
}

/** One robot as the planner sees it: its Secret, and whether the Secret holds the mirror's token. */
export interface RotationCandidate {
  readonly robot: DesiredRobot;
  readonly secret: SecretView | undefined;
  /** The Secret holds the token Quay has (a write of a new token is not pending). */
  readonly inSync: boolean;
}

/** The decision: what rotates now, and when to look again for the next due rotation. */
export interface RotationPlan {
  readonly rotations: readonly Rotation[];
  /** The earliest time (ms since epoch) a robot not rotated now becomes due; undefined: none. */
  readonly nextDueAt: number | undefined;
}

/** 32-bit FNV-1a: a stable, well-mixed hash of a short name (no library needed for five lines). */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** The namespace's fixed offset within the spread window, in [0, window). */
export function rotationPhaseMs(namespace: string, intervalMs: number): number {
  return Math.floor((fnv1a(namespace) / 2 ** 32) * intervalMs * ROTATION_SPREAD);
}

/** When a token issued at `rotatedAt` is due: within the last tenth of the interval, by the name's hash. */
export function rotationDueAt(namespace: string, rotatedAt: number, intervalMs: number): number {
  return rotatedAt + intervalMs * (1 - ROTATION_SPREAD) + rotationPhaseMs(namespace, intervalMs);
}

/** The `credentials-rotated-at` of a Secret (ms since epoch); undefined when absent or unreadable. */
export function rotatedAtOf(secret: SecretView | undefined): number | undefined {
  const text = secret?.annotations[ROTATED_AT_ANNOTATION];
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The annotation value for a token issued at `ms`: RFC 3339 to the second, as Kubernetes writes times. */
export function rotationTimestamp(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * For a token past the interval plus the spread window: the next start of the namespace's slot in
 * the window's cycle, or `now` when `now` is inside the slot.
 */
function backlogSlot(facts: RotationFacts, intervalMs: number): number {
  const window = intervalMs * ROTATION_SPREAD;
  // Long enough for a pass requeued at the slot's start to run within it (queue jitter, backoff).
  const slot = Math.min(window, Math.max(60_000, facts.resyncMs / 5));
  const into = (((facts.now - rotationPhaseMs(facts.namespace, intervalMs)) % window) + window) % window;
  return into < slot ? facts.now : facts.now + (window - into);
}

/**
 * Which robots rotate now. Only a robot whose Secret exists and holds Quay's current token is
 * considered: a Secret about to be (re)written gets a fresh token anyway, and a rotation whose
 * Secret write failed is finished by the next pass writing the new token, not by rotating again.
 */
export function planRotation(facts: RotationFacts, candidates: readonly RotationCandidate[]): RotationPlan {
  const rotations: Rotation[] = [];
  let nextDueAt: number | undefined;
  const later = (at: number) => {
    nextDueAt = nextDueAt === undefined ? at : Math.min(nextDueAt, at);
  };
  for (const { robot, secret, inSync } of candidates) {
    if (!secret || !inSync) continue;
    if (
      facts.requested !== undefined && secret.annotations[ROTATION_HANDLED_ANNOTATION] !== facts.requested
    ) {
      rotations.push({ robot, reason: "requested" });
      if (facts.intervalMs !== undefined) later(rotationDueAt(facts.namespace, facts.now, facts.intervalMs));
      continue;
    }
    if (facts.intervalMs === undefined) continue;
    // A Secret without the stamp gets one (cluster_plan.ts) before it can fall due.
    const rotatedAt = rotatedAtOf(secret);
    if (rotatedAt === undefined) continue;
    const due = rotationDueAt(facts.namespace, rotatedAt, facts.intervalMs);
    const overdue = rotatedAt + facts.intervalMs * (1 + ROTATION_SPREAD);
    const at = facts.now < due ? due : facts.now < overdue ? facts.now : backlogSlot(facts, facts.intervalMs);
    if (at <= facts.now) {
      rotations.push({ robot, reason: "interval" });
      later(rotationDueAt(facts.namespace, facts.now, facts.intervalMs));
    } else {
      later(at);
    }
  }
  return { rotations, nextDueAt };
}
