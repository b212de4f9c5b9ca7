/**
 * @module
 * The per-integration notification secrets, each in a Secret of the operator's namespace
 * (`quay-bridge-notifications-<integration>`, key `secret`, label
 * `app.kubernetes.io/component=quay-notifications`). Every replica caches them (its receiver
 * authenticates deliveries from the cache); the leader creates a missing one. Deleting the Secret
 * rotates the secret: the leader makes a new one and the notification controller moves every
 * notification URL to it at the next reconcile.
 */
import { KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { Reflector } from "../kube/reflector.ts";
import { type KubeObject, SECRETS } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import { sha256, toHex } from "../sha256.ts";
import { isUsableSecret, newSecret } from "./auth.ts";

/** Label selecting the notification Secrets. */
export const SECRET_LABEL = "app.kubernetes.io/component";
/** Its value. */
export const SECRET_LABEL_VALUE = "quay-notifications";
/** Annotation naming the integration a Secret belongs to. */
export const INTEGRATION_ANNOTATION = "quay-bridge.io/integration";
const DATA_KEY = "secret";

/** The Secret name for an integration (hashed when the name would be too long). */
export function secretName(integration: string): string {
  const name = `quay-bridge-notifications-${integration}`;
  if (name.length <= 253) return name;
  const hash = toHex(sha256(integration)).slice(0, 16);
  return `quay-bridge-notifications-${integration.slice(0, 200)}-${hash}`;
}

function secretOf(object: KubeObject): string | undefined {
  const raw = (object.data as Record<string, string> | undefined)?.[DATA_KEY];
  if (!raw) return undefined;
  try {
    const text = new TextDecoder().decode(Uint8Array.fromBase64(raw)).trim();
    return isUsableSecret(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Caches and creates the notification Secrets of one operator namespace. */
export class NotificationSecrets {
  readonly #kube: KubeClient;
  readonly #namespace: string;
  readonly #reflector: Reflector<KubeObject>;
  readonly #created = new Map<string, string>();

  constructor(options: {
    kube: KubeClient;
    namespace: string;
    logger: Logger;
    onChange?: (integration: string) => void;
  }) {
    this.#kube = options.kube;
    this.#namespace = options.namespace;
    this.#reflector = new Reflector<KubeObject>(options.kube, SECRETS, {
      logger: options.logger,
      namespace: options.namespace,
      labelSelector: `${SECRET_LABEL}=${SECRET_LABEL_VALUE}`,
      onChange: (_key, current, previous) => {
        const integration = (current ?? previous)?.metadata.annotations?.[INTEGRATION_ANNOTATION];
        if (integration === undefined) return;
        if (!current) this.#created.delete(integration);
        options.onChange?.(integration);
      },
    });
  }

  /** Resolves after the first list. */
  get ready(): Promise<void> {
    return this.#reflector.ready;
  }

  /** Runs the cache until `signal` aborts. */
  run(signal: AbortSignal): Promise<void> {
    return this.#reflector.run(signal);
  }

  /** The cached secret of `integration`. */
  get(integration: string): string | undefined {
    const object = this.#reflector.get(`${this.#namespace}/${secretName(integration)}`);
    if (object) {
      if (object.metadata.annotations?.[INTEGRATION_ANNOTATION] !== integration) return undefined;
      return secretOf(object);
    }
    // Just created by this replica and not yet seen through the watch.
    return this.#created.get(integration);
  }

  /** True when a Secret exists for `integration` (notifications were on at some time). */
  has(integration: string): boolean {
    return this.get(integration) !== undefined;
  }

  /** The secret of `integration`, creating its Secret when there is none (leader only). */
  async ensure(integration: string): Promise<string> {
    const cached = this.get(integration);
    if (cached) return cached;
    const name = secretName(integration);
    const secret = newSecret();
    const object: KubeObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name,
        namespace: this.#namespace,
        labels: { [SECRET_LABEL]: SECRET_LABEL_VALUE, "app.kubernetes.io/part-of": "quay-bridge" },
        annotations: { [INTEGRATION_ANNOTATION]: integration },
      },
      type: "Opaque",
      data: { [DATA_KEY]: new TextEncoder().encode(secret).toBase64() },
    };
    try {
      await this.#kube.create(SECRETS, object);
      this.#created.set(integration, secret);
      return secret;
    } catch (error) {
      if (!(error instanceof KubeApiError && error.status === 409)) throw error;
    }
    // Someone else made it (or it exists with unusable content): use what is there.
    const existing = await this.#kube.get(SECRETS, name, { namespace: this.#namespace });
    const found = existing ? secretOf(existing) : undefined;
    if (found) return found;
    if (!existing) throw new KubeApiError(`Secret ${this.#namespace}/${name} vanished`, { status: 409 });
    // It exists but holds no usable secret (edited by hand): give it a new one.
    await this.#kube.update(SECRETS, {
      ...existing,
      metadata: {
        ...existing.metadata,
        labels: { ...existing.metadata.labels, ...object.metadata.labels },
        annotations: { ...existing.metadata.annotations, ...object.metadata.annotations },
      },
      data: {
        ...(existing.data as Record<string, string> | undefined),
        ...(object.data as Record<string, string>),
      },
    });
    this.#created.set(integration, secret);
    return secret;
  }
}
