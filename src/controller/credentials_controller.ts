/**
 * @module
 * The credentials controller: for each valid QuayIntegration, a watch of the one Secret holding its
 * Quay token, and a reconcile (key: the integration) that reads the token from that watch's cache
 * into the registry. It runs on every replica — the webhook of a follower answers from the same
 * registry — and tells the operator when an integration's credentials changed, so the (leader's)
 * status and namespace controllers look again.
 */
import { messageOf } from "../errors.ts";
import type { IntegrationProblem } from "../integration_spec.ts";
import type { KubeClient } from "../kube/client.ts";
import { Reflector } from "../kube/reflector.ts";
import { type KubeObject, SECRETS } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import type { CredentialsState, IntegrationRegistry } from "./integration_registry.ts";
import { type Action, AWAIT_CHANGE, type QueueObserver, WorkQueue } from "./queue.ts";

/** Options for {@linkcode CredentialsController}. */
export interface CredentialsControllerOptions {
  readonly kube: KubeClient;
  readonly registry: IntegrationRegistry;
  readonly logger: Logger;
  /** Called when the credentials of an integration changed. */
  readonly onChange: (integrationKey: string) => void;
  readonly observer?: QueueObserver | undefined;
}

interface SecretWatch {
  readonly ref: { readonly namespace: string; readonly name: string; readonly key: string };
  readonly abort: AbortController;
  readonly reflector: Reflector<KubeObject>;
  readonly task: Promise<void>;
}

/** Watches each integration's credentials Secret and keeps the registry's tokens current. */
export class CredentialsController {
  readonly queue: WorkQueue;
  readonly #o: CredentialsControllerOptions;
  readonly #watches = new Map<string, SecretWatch>();

  constructor(options: CredentialsControllerOptions) {
    this.#o = options;
    this.queue = new WorkQueue({
      name: "credentials",
      reconcile: (key) => Promise.resolve(this.#reconcile(key)),
      logger: options.logger,
      concurrency: 2,
      observer: options.observer,
    });
  }

  /** Follows the registry: a watch per valid integration's Secret reference, none for the rest. */
  configure(signal: AbortSignal): void {
    const wanted = new Map<string, SecretWatch["ref"]>();
    for (const entry of this.#o.registry.entries()) {
      if (entry.parsed.ok) wanted.set(entry.key, entry.parsed.integration.credentialsSecret);
    }
    for (const [key, watch] of this.#watches) {
      if (JSON.stringify(wanted.get(key)) === JSON.stringify(watch.ref)) continue;
      watch.abort.abort();
      this.#watches.delete(key);
    }
    for (const [key, ref] of wanted) {
      if (!this.#watches.has(key)) this.#watch(key, ref, signal);
    }
  }

  /** Resolves when every watch has listed once and its token is in the registry. */
  async ready(): Promise<void> {
    await Promise.all([...this.#watches.values()].map((w) => w.reflector.ready));
    await this.queue.idle();
  }

  /** Stops every watch and the queue. */
  async stop(graceMs: number): Promise<void> {
    for (const watch of this.#watches.values()) watch.abort.abort();
    await this.queue.shutdown(graceMs);
    await Promise.allSettled([...this.#watches.values()].map((w) => w.task));
  }

  #watch(key: string, ref: SecretWatch["ref"], signal: AbortSignal): void {
    const abort = new AbortController();
    const reflector = new Reflector<KubeObject>(this.#o.kube, SECRETS, {
      logger: this.#o.logger,
      namespace: ref.namespace,
      fieldSelector: `metadata.name=${ref.name}`,
      onChange: () => this.queue.add(key),
      onReady: () => this.queue.add(key),
    });
    const task = reflector.run(AbortSignal.any([abort.signal, signal]))
      .catch((e) => this.#o.logger.error("credentials watch ended", { error: messageOf(e) }));
    this.#watches.set(key, { ref, abort, reflector, task });
  }

  #reconcile(key: string): Action {
    const watch = this.#watches.get(key);
    if (!watch?.reflector.isReady) return AWAIT_CHANGE;
    const secret = watch.reflector.get(`${watch.ref.namespace}/${watch.ref.name}`);
    if (this.#o.registry.setCredentials(key, credentialsFrom(secret, watch.ref))) this.#o.onChange(key);
    return AWAIT_CHANGE;
  }
}

/** The token a Secret holds under `ref.key`, or why it holds none. */
export function credentialsFrom(secret: KubeObject | undefined, ref: SecretWatch["ref"]): CredentialsState {
  const missing = (problem: IntegrationProblem): CredentialsState => ({ state: "missing", problem });
  if (!secret) {
    return missing({
      reason: "SecretNotFound",
      message: `Secret ${ref.namespace}/${ref.name} holding the Quay token was not found`,
    });
  }
  const raw = ((secret.data ?? {}) as Record<string, string>)[ref.key];
  const token = raw === undefined ? undefined : decodeToken(raw);
  if (token) return { state: "ok", token };
  return missing({
    reason: "SecretKeyMissing",
    message:
      `Secret ${ref.namespace}/${ref.name} has no non-empty key "${ref.key}" (spec.credentialsSecret.key)`,
  });
}

function decodeToken(base64: string): string | undefined {
  try {
    const text = new TextDecoder().decode(Uint8Array.fromBase64(base64)).trim();
    return text === "" ? undefined : text;
  } catch {
    return undefined;
  }
}
