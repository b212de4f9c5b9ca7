/**
 * @module
 * The live set of QuayIntegrations: each resource parsed (both API versions), its credentials
 * token as currently found in its Secret, and one Quay client per integration. It answers the
 * question every other part asks — "which integration manages this namespace?" — including the
 * two answers upstream got wrong: none (the namespace is left alone) and several (an overlap,
 * reported, never a silent pick).
 */
import {
  type Integration,
  type IntegrationPolicy,
  type IntegrationProblem,
  type NamespaceFacts,
  parseIntegration,
  type QuayIntegrationObject,
  selectsNamespace,
} from "../integration.ts";
import { type QuayCallObserver, QuayClient } from "../quay/client.ts";

/** A QuayIntegration's key: `<apiVersion>/<name>` (the two API groups are distinct resources). */
export function integrationKey(apiVersion: string, name: string): string {
  return `${apiVersion}/${name}`;
}

/** Why credentials are not usable. */
export type CredentialsState =
  | { readonly state: "ok"; readonly token: string }
  | { readonly state: "missing"; readonly problem: IntegrationProblem };

/** One integration as currently known. */
export interface IntegrationEntry {
  readonly key: string;
  readonly object: QuayIntegrationObject;
  /** Parsed form, or the problems. */
  readonly parsed: ReturnType<typeof parseIntegration>;
}

/** Which integration manages a namespace. */
export type Resolution =
  | { readonly kind: "unmanaged" }
  | { readonly kind: "managed"; readonly key: string; readonly integration: Integration }
  | { readonly kind: "overlap"; readonly keys: readonly string[] }
  /** Some integration is invalid, so selection cannot be decided safely. */
  | { readonly kind: "undecided"; readonly keys: readonly string[] };

/** Options for {@linkcode IntegrationRegistry}. */
export interface IntegrationRegistryOptions {
  /** Quay client settings shared by all integrations. */
  quay?: { timeoutMs?: number; maxAttempts?: number; concurrency?: number; retryBaseMs?: number };
  onQuayCall?: QuayCallObserver;
  signal?: AbortSignal;
  /** The operator's namespace and where credentials Secrets may be read. */
  policy?: IntegrationPolicy;
}

interface ClientEntry {
  fingerprint: string;
  client: QuayClient;
}

/** Holds parsed integrations, their tokens and their Quay clients. */
export class IntegrationRegistry {
  readonly #entries = new Map<string, IntegrationEntry>();
  readonly #tokens = new Map<string, CredentialsState>();
  readonly #clients = new Map<string, ClientEntry>();
  readonly #options: IntegrationRegistryOptions;

  constructor(options: IntegrationRegistryOptions = {}) {
    this.#options = options;
  }

  /** Records the current object under `key` (or its removal). Returns true when anything changed. */
  set(key: string, object: QuayIntegrationObject | undefined): boolean {
    const previous = this.#entries.get(key);
    if (!object) {
      this.#entries.delete(key);
      this.#tokens.delete(key);
      this.#clients.get(key)?.client.close();
      this.#clients.delete(key);
      return previous !== undefined;
    }
    const parsed = parseIntegration(object, this.#options.policy);
    this.#entries.set(key, { key, object, parsed });
    return JSON.stringify(previous?.object.spec) !== JSON.stringify(object.spec) ||
      previous?.object.metadata?.generation !== object.metadata?.generation;
  }

  /** Records the token found for `key` (or why there is none). */
  setCredentials(key: string, state: CredentialsState): boolean {
    const previous = this.#tokens.get(key);
    this.#tokens.set(key, state);
    return JSON.stringify(previous) !== JSON.stringify(state);
  }

  /** All entries. */
  entries(): IntegrationEntry[] {
    return [...this.#entries.values()];
  }

  /** One entry. */
  get(key: string): IntegrationEntry | undefined {
    return this.#entries.get(key);
  }

  /** Credentials of `key`, if known. */
  credentials(key: string): CredentialsState | undefined {
    return this.#tokens.get(key);
  }

  /** Which integration manages `namespace`. */
  resolve(namespace: NamespaceFacts): Resolution {
    const matches: { key: string; integration: Integration }[] = [];
    const invalid: string[] = [];
    for (const entry of this.#entries.values()) {
      if (!entry.parsed.ok) {
        invalid.push(entry.key);
        continue;
      }
      if (selectsNamespace(entry.parsed.integration, namespace)) {
        matches.push({ key: entry.key, integration: entry.parsed.integration });
      }
    }
    if (matches.length > 1) return { kind: "overlap", keys: matches.map((m) => m.key).sort() };
    const only = matches[0];
    if (only) return { kind: "managed", key: only.key, integration: only.integration };
    if (invalid.length > 0) return { kind: "undecided", keys: invalid.sort() };
    return { kind: "unmanaged" };
  }

  /** The Quay client of a valid integration (created on first use, replaced when Quay settings change). */
  client(key: string): QuayClient | undefined {
    const entry = this.#entries.get(key);
    if (!entry?.parsed.ok) return undefined;
    const i = entry.parsed.integration;
    const fingerprint = JSON.stringify([i.quayUrl, i.insecureRegistry, i.caBundle ?? ""]);
    const existing = this.#clients.get(key);
    if (existing?.fingerprint === fingerprint) return existing.client;
    existing?.client.close();
    const client = new QuayClient({
      baseUrl: i.quayUrl,
      insecure: i.insecureRegistry,
      caBundle: i.caBundle,
      // Read at every request, so a rotated token is used by the next call.
      token: () => {
        const c = this.#tokens.get(key);
        return c?.state === "ok" ? c.token : "";
      },
      onCall: this.#options.onQuayCall,
      signal: this.#options.signal,
      ...this.#options.quay,
    });
    this.#clients.set(key, { fingerprint, client });
    return client;
  }

  /** Closes every Quay client. */
  close(): void {
    for (const { client } of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}
