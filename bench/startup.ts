/**
 * @module
 * Start-up with every namespace synced and nothing changed: the benchmark stops the operator after
 * its bursts and idle window and starts it again on the same cluster and Quay (its webhook on, so
 * `webhook_compare.ts` can load it next), then counts Quay calls until they stop.
 *
 * "Ready" is each operator's own word for it where it has one that means something:
 * - quay-bridge: its `/readyz` answers 200 (every reflector has its first full list, the webhook
 *   serves). It keeps its Quay audit-log cursor in a Secret, so with nothing changed it may trust the
 *   cluster and need not re-read every organization.
 * - upstream: its `/readyz` is a ping (ready as soon as the process serves), so its start-up ends at
 *   its last Quay call before Quay goes quiet: it re-reconciles every namespace after a restart.
 *
 * Calls are counted from the start until the operator is ready and Quay has been quiet for a while,
 * but over at least `windowMs` (35 s): quay-bridge reads its audit log every `--audit-interval` (5 s
 * by default; 30 s before) and may hold its first read until the integration is registered, so a
 * window shorter than an interval and a margin could miss that read.
 *
 * Figures: `restart_quay_calls` (Quay calls in that window), `restart_ready_s` (as above) and
 * `restart_quiet_s` (from the start to the last Quay call; 0 when there was none); for quay-bridge
 * also `restart_quay_calls_until_ready`.
 */
import type { Peer, PeerName, PeerWebhook } from "./peers.ts";

/** What {@linkcode measureRestart} needs of the benchmark's run. */
export interface RestartContext {
  readonly name: PeerName;
  /** The running operator: stopped first. */
  readonly peer: Peer;
  /** Starts the operator again, its webhook served as `webhook` says. */
  readonly start: (webhook: PeerWebhook) => Peer | Promise<Peer>;
  readonly webhook: PeerWebhook;
  /** Quay calls counted since the last reset. */
  readonly quayCalls: () => number;
  readonly resetQuayCalls: () => void;
  /** Quay is quiet when no call came for this long. */
  readonly quietMs: number;
  /** Counts calls for at least this long after the start. @default 35000 */
  readonly windowMs?: number;
  /** Gives up on start-up after this long (upstream re-reconciles every namespace). @default 600000 */
  readonly timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => Math.round(ms / 10) / 100;

/**
 * Restarts the operator and measures its start-up. `started` receives the new process as soon as
 * it exists, so the caller stops it whatever happens next.
 */
export async function measureRestart(
  context: RestartContext,
  started: (peer: Peer) => void,
): Promise<{ peer: Peer; figures: Record<string, number> }> {
  await context.peer.stop();
  context.resetQuayCalls();
  const t0 = performance.now();
  const peer = await context.start(context.webhook);
  started(peer);
  const deadline = t0 + (context.timeoutMs ?? 600_000);
  let readyAt: number | undefined;
  let calls = 0;
  let callsAtReady = 0;
  let lastCallAt: number | undefined;
  let lastChange = t0;
  for (;;) {
    const status = peer.exited();
    if (status) throw new Error(`${context.name} exited with code ${status.code}:\n${peer.tail()}`);
    const now = performance.now();
    const total = context.quayCalls();
    if (total !== calls) {
      calls = total;
      lastCallAt = now;
      lastChange = now;
    }
    if (readyAt === undefined && await peer.ready()) {
      readyAt = performance.now();
      callsAtReady = context.quayCalls();
    }
    const windowOver = now - t0 >= (context.windowMs ?? 35_000);
    if (readyAt !== undefined && windowOver && now - lastChange >= context.quietMs) break;
    if (now > deadline) {
      throw new Error(
        `${context.name}: not ready and quiet ${seconds(now - t0)} s after a restart ` +
          `(ready: ${readyAt !== undefined}, ${calls} Quay calls)`,
      );
    }
    await sleep(50);
  }
  const quietS = lastCallAt === undefined ? 0 : seconds(lastCallAt - t0);
  const figures: Record<string, number> = {
    restart_quay_calls: calls,
    restart_ready_s: context.name === "quay-bridge" ? seconds((readyAt ?? t0) - t0) : quietS,
    restart_quiet_s: quietS,
  };
  if (context.name === "quay-bridge") figures.restart_quay_calls_until_ready = callsAtReady;
  return { peer, figures };
}
