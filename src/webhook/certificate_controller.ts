/**
 * @module
 * The webhook certificate checks as a controller, on the same work queue as every other controller.
 */
import type { Logger } from "../log.ts";
import { type Action, type QueueObserver, requeueAfter, WorkQueue } from "../controller/queue.ts";
import type { SelfManagedCertificates } from "./self_managed.ts";

/**
 * The certificate checks as a controller: one key on a work queue, so failures follow the queue's
 * one retry policy and no loop of its own polls. Unlike the leader-only controllers it runs on every
 * replica, because a follower must serve a certificate the leader rotated; leadership changes what a
 * pass does (only the leader writes) and {@linkcode CertificateController.lead} wakes it at once.
 */
export class CertificateController {
  static readonly KEY = "webhook-certificate";
  readonly queue: WorkQueue;

  constructor(certificates: SelfManagedCertificates, options: { logger: Logger; observer?: QueueObserver }) {
    this.queue = new WorkQueue({
      name: "webhook-certificate",
      concurrency: 1,
      logger: options.logger,
      observer: options.observer,
      // A failed check is repeated within seconds, not the default 10 minutes of a terminal failure.
      terminalRequeueMs: 5_000,
      backoffMaxMs: 5_000,
      reconcile: async (): Promise<Action> => {
        await certificates.sync();
        return requeueAfter(certificates.nextCheckMs());
      },
    });
  }

  /** Starts the checks (every replica). */
  start(): void {
    this.queue.add(CertificateController.KEY);
  }

  /** This replica now leads: check at once, so it stores or renews what it must. */
  lead(): void {
    this.queue.add(CertificateController.KEY);
  }

  /** Stops the checks. */
  async shutdown(graceMs: number): Promise<void> {
    await this.queue.shutdown(graceMs);
  }
}
