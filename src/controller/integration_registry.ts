/**
 * @module
 * The live set of QuayIntegrations: each resource parsed (both API versions), its credentials
 * token as currently found in its Secret (and whether Quay rejected it), and one Quay client per
 * integration. It answers the question every other part asks — "which integration manages this
 * namespace?" — including the answers upstream got wrong: none (the namespace is left alone),
 * several (an overlap, reported, never a silent pick), and only an invalid one (reported on the
 * namespace; nothing is changed and Builds are left alone until the resource is fixed).
 */
import {
  type Integration,
  type IntegrationPolicy,
  type IntegrationProblem,
  type NamespaceFacts,
  type NamespaceSelection,
  parseIntegration,
  parseSelection,
  type QuayIntegrationObject,
  selectsNamespace,
} from "../integration_spec.ts";
import { type QuayCallObserver, QuayClient, type QuayClientOptions } from "../quay/client.ts";

/** A QuayIntegration's key: `<apiVersion>/<name>` (the two API groups are distinct resources). */
export function integrationKey(apiVersion: string, name: string): string {
  return `${apiVersion}/${name}`;
}

/** The credentials of an integration: usable, missing from the Secret, or rejected by Quay. */
export type CredentialsState =
  | { readonly state: "ok"; readonly token: string }
  | { readonly state: "missing"; readonly problem: IntegrationProblem }
  /** Quay answered a call with this token as not valid; it is still sent, so a re-check can accept it. */
  | { readonly state: "rejected"; readonly token: string; readonly problem: IntegrationProblem };

/** One integration as currently known. */
export interface IntegrationEntry {
  readonly key: string;
  readonly object: QuayIntegrationObject;
  /** Parsed form, or the problems. */
  readonly parsed: ReturnType<typeof parseIntegration>;
  /** For an invalid resource: the namespaces it would select, if its selection parses. */
  readonly selection: NamespaceSelection | undefined;
}

/** An invalid QuayIntegration that would select a namespace. */
export interface InvalidSelector {
  readonly key: string;
  readonly name: string;
  readonly reason: string;
  readonly message: string;
}

/** Which integration manages a namespace. */
export type Resolution =
  | { readonly kind: "unmanaged" }
  | { readonly kind: "managed"; readonly key: string; readonly integration: Integration }
  | { readonly kind: "overlap"; readonly keys: readonly string[] }
  /** No valid integration selects it, but invalid ones would: nothing is done until they are fixed. */
  | { readonly kind: "invalid"; readonly integrations: readonly InvalidSelector[] };

/**
 * Whether an integration's Quay answered its last call, whoever made it (a namespace pass, the
 * webhook, the status check's probe): every call's outcome is evidence, so the `QuayReachable`
 * condition and the `quay_bridge_quay_reachable` gauge follow Quay within seconds, not at the next
 * check. A transport failure (refused, reset, timed out) or a 5xx is unreachable; any other answer,
 * 4xx included, is Quay answering.
 */
export interface Reachability {
  readonly reachable: boolean;
  /** When the last call ended (ms since epoch). */
  readonly at: number;
  /** When `reachable` last changed. */
  readonly since: number;
  /** Why it is unreachable (`QuayUnreachable` or `QuayServerError`), or `Reachable`. */
  readonly reason: string;
  readonly message: string;
}

/** Options for {@linkcode IntegrationRegistry}. */
export interface IntegrationRegistryOptions {
  /** Quay client settings shared by all integrations (`transport` only in tests). */
  quay?: Partial<
    Pick<QuayClientOptions, "timeoutMs" | "concurrency" | "transport" | "maxAttempts" | "retryBaseMs">
  >;
  onQuayCall?: QuayCallObserver;
  /** Called when an integration's Quay turned reachable or unreachable (its status should say so). */
  onReachability?: (key: string) => void;
  /** Clock of the reachability record. @default Date.now */
  now?: () => number;
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
  readonly #acceptedAt = new Map<string, number>();
  readonly #clients = new Map<string, ClientEntry>();
  readonly #reachability = new Map<string, Reachability>();
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
      this.#acceptedAt.delete(key);
      this.#reachability.delete(key);
      this.#clients.get(key)?.client.close();
      this.#clients.delete(key);
      return previous !== undefined;
    }
    const parsed = parseIntegration(object, this.#options.policy);
    this.#entries.set(key, {
      key,
      object,
      parsed,
      selection: parsed.ok ? undefined : parseSelection(object, this.#options.policy),
    });
    return JSON.stringify(previous?.object.spec) !== JSON.stringify(object.spec) ||
      previous?.object.metadata?.generation !== object.metadata?.generation;
  }

  /**
   * Records the token found in the Secret of `key` (or why there is none). A token Quay rejected
   * stays rejected while the Secret holds the same one. Returns true when anything changed.
   */
  setCredentials(key: string, state: CredentialsState): boolean {
    const previous = this.#tokens.get(key);
    if (previous?.state === "rejected" && state.state === "ok" && previous.token === state.token) {
      return false;
    }
    const token = (c: CredentialsState | undefined) => c?.state === "missing" ? undefined : c?.token;
    if (token(previous) !== token(state)) this.#acceptedAt.delete(key);
    this.#tokens.set(key, state);
    return JSON.stringify(previous) !== JSON.stringify(state);
  }

  /** Quay rejected the current token of `key`. Returns true when that is news. */
  rejectToken(key: string, message: string): boolean {
    const current = this.#tokens.get(key);
    if (current?.state !== "ok") return false;
    this.#acceptedAt.delete(key);
    this.#tokens.set(key, {
      state: "rejected",
      token: current.token,
      problem: { reason: "TokenInvalid", message },
    });
    return true;
  }

  /**
   * Quay answered a call made with the current token of `key` at `at` (ms since epoch). Returns
   * true when the token had been rejected: it is usable again.
   */
  acceptToken(key: string, at: number): boolean {
    const current = this.#tokens.get(key);
    if (current === undefined || current.state === "missing") return false;
    this.#acceptedAt.set(key, at);
    if (current.state === "ok") return false;
    this.#tokens.set(key, { state: "ok", token: current.token });
    return true;
  }

  /** When Quay last answered a call made with the current token of `key`, if it has. */
  tokenAcceptedAt(key: string): number | undefined {
    return this.#acceptedAt.get(key);
  }

  /** Whether the Quay of `key` answered its last call; undefined before any call. */
  reachability(key: string): Reachability | undefined {
    return this.#reachability.get(key);
  }

  /**
   * Records the outcome of one call to the Quay of `key` (`status` 0: no HTTP answer). Tells
   * `onReachability` when it changed whether Quay is reachable.
   */
  observeCall(key: string, call: { route: string; status: number; durationMs: number }): void {
    const at = (this.#options.now ?? Date.now)();
    const reachable = call.status !== 0 && call.status < 500;
    const previous = this.#reachability.get(key);
    const changed = previous === undefined || previous.reachable !== reachable;
    const url = this.#entries.get(key)?.parsed;
    const where = url?.ok ? url.integration.quayUrl : "Quay";
    this.#reachability.set(key, {
      reachable,
      at,
      since: changed ? at : previous.since,
      reason: reachable ? "Reachable" : call.status === 0 ? "QuayUnreachable" : "QuayServerError",
      message: reachable
        ? `${where} answers`
        : call.status === 0
        ? `No answer from ${where} for ${call.route} (refused, reset or timed out after ${
          Math.round(call.durationMs)
        } ms)`
        : `${where} answered ${call.status} for ${call.route}`,
    });
    if (changed) this.#options.onReachability?.(key);
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
    const invalid: InvalidSelector[] = [];
    for (const entry of this.#entries.values()) {
      if (entry.parsed.ok) {
        if (selectsNamespace(entry.parsed.integration, namespace)) {
          matches.push({ key: entry.key, integration: entry.parsed.integration });
        }
      } else if (entry.selection && selectsNamespace(entry.selection, namespace)) {
        const first = entry.parsed.problems[0];
        invalid.push({
          key: entry.key,
          name: entry.parsed.name,
          reason: first?.reason ?? "InvalidSpec",
          message: entry.parsed.problems.map((p) => p.message).join("; "),
        });
      }
    }
    if (matches.length > 1) return { kind: "overlap", keys: matches.map((m) => m.key).sort() };
    const only = matches[0];
    if (only) return { kind: "managed", key: only.key, integration: only.integration };
    if (invalid.length > 0) {
      return { kind: "invalid", integrations: invalid.sort((a, b) => a.key.localeCompare(b.key)) };
    }
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
    // A new address or CA: what the old client met says nothing about the new one.
    if (existing) this.#reachability.delete(key);
    const client = new QuayClient({
      baseUrl: i.quayUrl,
      insecure: i.insecureRegistry,
      caBundle: i.caBundle,
      // Read at every request, so a rotated token is used by the next call.
      token: () => {
        const c = this.#tokens.get(key);
        return c?.state === "missing" || c === undefined ? "" : c.token;
      },
      onCall: (call) => {
        this.#options.onQuayCall?.(call);
        // Only the current client's calls count (a replaced one may still finish a call).
        if (this.#clients.get(key)?.client === client) this.observeCall(key, call);
      },
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
