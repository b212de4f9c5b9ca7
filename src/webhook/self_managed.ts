/**
 * @module
 * Self-managed webhook certificates: a CA and a serving certificate kept in a `kubernetes.io/tls`
 * Secret in the operator's namespace (`tls.crt`, `tls.key`, plus `ca.crt` and `ca.key`), the CA
 * written into every webhook's `caBundle` of the MutatingWebhookConfiguration, and the serving
 * certificate renewed at two thirds of its lifetime and rotated into the running server without
 * dropping requests.
 *
 * Only the leader writes (the Secret, the configuration); every replica serves what the Secret
 * holds and follows it when it changes. Before any Secret exists a replica serves a certificate of
 * its own in memory, which the leader stores if the Secret is still absent (409: another replica
 * won; its pair is adopted). Outside a cluster (a URL to call instead of a Service) the leader also
 * creates and maintains the MutatingWebhookConfiguration itself (`webhook_configuration.ts`). The
 * checks run as a controller (`certificate_controller.ts`).
 */
import {
  certificateValidity,
  createCertificateAuthority,
  issueServingCertificate,
  type KeyPair,
} from "../certs/pki.ts";
import { ConflictError, KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { type KubeObject, SECRETS } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import { ensureWebhookConfiguration } from "./webhook_configuration.ts";

/** A CA and the serving certificate it signed. */
export interface CertificateMaterial {
  readonly ca: KeyPair;
  readonly serving: KeyPair;
}

/** The names the serving certificate must carry. */
export interface ServingNames {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

/** Annotation on the Secret listing the serving certificate's names (a change re-issues it). */
export const SERVING_NAMES_ANNOTATION = "quay-bridge.quay.redhat.com/serving-names";

const DAY_MS = 86_400_000;

/** DNS names of the webhook Service, plus loopback names when the API server runs elsewhere. */
export function servingNames(
  options: { serviceName: string; namespace: string; outsideCluster: boolean; url?: string | undefined },
): ServingNames {
  const { serviceName: s, namespace: ns } = options;
  const dns = [s, `${s}.${ns}`, `${s}.${ns}.svc`, `${s}.${ns}.svc.cluster.local`];
  const ips: string[] = [];
  if (options.outsideCluster) {
    dns.push("localhost");
    ips.push("127.0.0.1");
  }
  if (options.url) {
    try {
      const host = new URL(options.url).hostname.replace(/^\[|\]$/g, "");
      if (/^[0-9.]+$/.test(host) || host.includes(":")) ips.push(host);
      else dns.push(host);
    } catch {
      // An unusable URL is reported where the configuration is written.
    }
  }
  return { dnsNames: [...new Set(dns)], ipAddresses: [...new Set(ips)] };
}

function namesKey(names: ServingNames): string {
  return [...names.dnsNames, ...names.ipAddresses].join(",");
}

/** Options for {@linkcode SelfManagedCertificates}. */
export interface SelfManagedOptions {
  kube: KubeClient;
  logger: Logger;
  /** The operator's namespace, where the Secret lives. */
  namespace: string;
  secretName: string;
  /** MutatingWebhookConfiguration name. */
  configName: string;
  names: ServingNames;
  /** True while this replica leads: only the leader writes. */
  isLeader: () => boolean;
  /**
   * Create and maintain the whole MutatingWebhookConfiguration (outside a cluster). Otherwise only
   * the caBundle of an existing one is kept (the deployment owns it).
   */
  manage?: { url: string; operatorNamespace: string } | undefined;
  /** Serving certificate lifetime. @default 90 days */
  servingValidityMs?: number;
  /** CA lifetime. @default 10 years */
  caValidityMs?: number;
  /** How often the Secret and the configuration are checked. @default 60_000 */
  checkIntervalMs?: number;
  now?: () => number;
}

/** What the certificates are applied to (the webhook server's `rotate`). */
export type ApplyCertificate = (certPem: string, keyPem: string) => Promise<void>;

function b64(text: string): string {
  return new TextEncoder().encode(text).toBase64();
}

function unb64(value: unknown): string | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  try {
    return new TextDecoder().decode(Uint8Array.fromBase64(value));
  } catch {
    return undefined;
  }
}

function validity(pem: string): { notBefore: number; notAfter: number } | undefined {
  try {
    const v = certificateValidity(pem);
    return { notBefore: v.notBefore.getTime(), notAfter: v.notAfter.getTime() };
  } catch {
    return undefined;
  }
}

/** Reads the material of a webhook Secret; `undefined` when anything is missing or unparseable. */
export function readSecretMaterial(secret: KubeObject | undefined): CertificateMaterial | undefined {
  if (!secret) return undefined;
  const data = (secret.data ?? {}) as Record<string, unknown>;
  const ca = { certPem: unb64(data["ca.crt"]), keyPem: unb64(data["ca.key"]) };
  const serving = { certPem: unb64(data["tls.crt"]), keyPem: unb64(data["tls.key"]) };
  if (!ca.certPem || !ca.keyPem || !serving.certPem || !serving.keyPem) return undefined;
  if (!validity(ca.certPem) || !validity(serving.certPem)) return undefined;
  return { ca: ca as KeyPair, serving: serving as KeyPair };
}

/** When the serving certificate should be replaced: at two thirds of its lifetime. */
export function renewalTime(servingCertPem: string): number {
  const v = validity(servingCertPem);
  if (!v) return 0;
  return v.notBefore + (v.notAfter - v.notBefore) * 2 / 3;
}

/** Keeps the webhook's self-managed certificates. */
export class SelfManagedCertificates {
  readonly #o: SelfManagedOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  #current: CertificateMaterial | undefined;
  /** A CA the configuration still trusts while replicas move to a new one. */
  #retiringCa: string | undefined;
  #apply: ApplyCertificate | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #missingConfigWarned = false;
  /** True once what is served is what the Secret holds (until then the Secret is checked often). */
  #fromSecret = false;
  #manage: SelfManagedOptions["manage"];

  constructor(options: SelfManagedOptions) {
    this.#o = options;
    this.#manage = options.manage;
    this.#log = options.logger.with({ component: "webhook-certificates" });
    this.#now = options.now ?? Date.now;
  }

  /** Sets (or clears) the configuration to maintain as a whole (its URL may be known only once serving). */
  setManaged(manage: SelfManagedOptions["manage"]): void {
    this.#manage = manage;
  }

  /** The material being served. */
  get current(): CertificateMaterial | undefined {
    return this.#current;
  }

  /**
   * The pair to serve at start: the Secret's when usable, else a new one in memory (reusing the
   * Secret's CA when only the serving certificate needs replacing), which the leader stores later.
   */
  async initial(): Promise<CertificateMaterial> {
    const secret = await this.#readSecret();
    const stored = readSecretMaterial(secret);
    if (stored && !this.#servingDue(stored, secret)) {
      this.#current = stored;
      this.#fromSecret = true;
      return stored;
    }
    this.#current = await this.#issue(stored && this.#caUsable(stored.ca) ? stored.ca : undefined);
    return this.#current;
  }

  /** Serves new pairs through `apply` from now on (the webhook server's `rotate`). */
  serveWith(apply: ApplyCertificate): void {
    this.#apply = apply;
  }

  /**
   * How long until the next check: the check interval once serving the Secret's pair, sooner while
   * serving a pair of its own (the API server trusts only the Secret's CA), and for the leader no
   * later than the serving certificate's renewal time.
   */
  nextCheckMs(): number {
    const checkMs = this.#o.checkIntervalMs ?? 60_000;
    let next = this.#fromSecret ? checkMs : Math.min(checkMs, 2_000);
    if (this.#o.isLeader() && this.#current) {
      next = Math.min(next, renewalTime(this.#current.serving.certPem) - this.#now());
    }
    return Math.max(1, next);
  }

  /** One check (serialized): read the Secret, renew and write it when leading, serve what it holds. */
  sync(options: { force?: boolean } = {}): Promise<void> {
    const run = this.#chain.then(() => this.#sync(options.force ?? false));
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Replaces the serving certificate now (leader only; followers pick it up from the Secret). */
  rotate(): Promise<void> {
    return this.sync({ force: true });
  }

  async #sync(force: boolean): Promise<void> {
    const secret = await this.#readSecret();
    const stored = readSecretMaterial(secret);
    if (!this.#o.isLeader()) {
      if (stored) await this.#adopt(stored);
      return;
    }
    let desired: CertificateMaterial;
    if (stored && !force && !this.#servingDue(stored, secret) && this.#caUsable(stored.ca)) {
      desired = stored;
    } else {
      const current = this.#current;
      if (!stored && !force && current && !this.#servingDue(current, undefined, true)) {
        desired = current;
      } else {
        const ca = stored && this.#caUsable(stored.ca)
          ? stored.ca
          : current && this.#caUsable(current.ca)
          ? current.ca
          : undefined;
        desired = await this.#issue(ca);
      }
      const written = await this.#writeSecret(secret, desired);
      if (!written) {
        // Another replica wrote first: serve what it stored.
        const theirs = readSecretMaterial(await this.#readSecret());
        if (!theirs) {
          throw new ConflictError(`Secret ${this.#o.namespace}/${this.#o.secretName} changed while writing`);
        }
        desired = theirs;
      } else {
        this.#log.info("webhook certificate stored", {
          secret: `${this.#o.namespace}/${this.#o.secretName}`,
          notAfter: new Date(validity(desired.serving.certPem)?.notAfter ?? 0).toISOString(),
        });
      }
    }
    if (this.#current && this.#current.ca.certPem !== desired.ca.certPem) {
      this.#retiringCa = this.#current.ca.certPem;
    }
    // The configuration trusts the new CA before any replica serves a certificate it signed.
    await this.#ensureConfiguration(desired.ca.certPem);
    await this.#adopt(desired);
  }

  /** Serves `material`, which the Secret holds. */
  async #adopt(material: CertificateMaterial): Promise<void> {
    const current = this.#current;
    if (
      current?.serving.certPem === material.serving.certPem &&
      current.serving.keyPem === material.serving.keyPem
    ) {
      this.#fromSecret = true;
      return;
    }
    if (this.#apply) await this.#apply(material.serving.certPem, material.serving.keyPem);
    this.#current = material;
    this.#fromSecret = true;
    this.#log.info("webhook serving certificate rotated", {
      notAfter: new Date(validity(material.serving.certPem)?.notAfter ?? 0).toISOString(),
    });
  }

  #caUsable(ca: KeyPair): boolean {
    const v = validity(ca.certPem);
    const servingMs = this.#o.servingValidityMs ?? 90 * DAY_MS;
    return v !== undefined && v.notAfter - this.#now() > servingMs;
  }

  /** True when the serving certificate is past two thirds of its life or its names changed. */
  #servingDue(material: CertificateMaterial, secret: KubeObject | undefined, ignoreNames = false): boolean {
    if (this.#now() >= renewalTime(material.serving.certPem)) return true;
    if (ignoreNames) return false;
    const annotations = (secret?.metadata.annotations ?? {}) as Record<string, string>;
    return annotations[SERVING_NAMES_ANNOTATION] !== namesKey(this.#o.names);
  }

  async #issue(ca: KeyPair | undefined): Promise<CertificateMaterial> {
    const now = this.#now();
    const authority = ca ?? await createCertificateAuthority({
      commonName: `quay-bridge-webhook-ca@${Math.floor(now / 1000)}`,
      validityDays: (this.#o.caValidityMs ?? 3650 * DAY_MS) / DAY_MS,
      notBefore: new Date(now - 60_000),
    });
    const serving = await issueServingCertificate(authority, {
      commonName: this.#o.names.dnsNames[0] ?? "quay-bridge-webhook",
      dnsNames: this.#o.names.dnsNames,
      ipAddresses: this.#o.names.ipAddresses,
      validityDays: (this.#o.servingValidityMs ?? 90 * DAY_MS) / DAY_MS,
      notBefore: new Date(now),
    });
    return { ca: authority, serving };
  }

  async #readSecret(): Promise<KubeObject | undefined> {
    return await this.#o.kube.get<KubeObject>(SECRETS, this.#o.secretName, { namespace: this.#o.namespace });
  }

  /** Creates or updates the Secret; false on a conflict (someone else wrote it). */
  async #writeSecret(existing: KubeObject | undefined, material: CertificateMaterial): Promise<boolean> {
    const object: KubeObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        ...(existing?.metadata ?? {}),
        name: this.#o.secretName,
        namespace: this.#o.namespace,
        labels: {
          ...(existing?.metadata.labels ?? {}),
          "app.kubernetes.io/component": "webhook-certificates",
        },
        annotations: {
          ...(existing?.metadata.annotations ?? {}),
          [SERVING_NAMES_ANNOTATION]: namesKey(this.#o.names),
        },
      },
      type: "kubernetes.io/tls",
      data: {
        "tls.crt": b64(material.serving.certPem),
        "tls.key": b64(material.serving.keyPem),
        "ca.crt": b64(material.ca.certPem),
        "ca.key": b64(material.ca.keyPem),
      },
    };
    try {
      if (existing) await this.#o.kube.update(SECRETS, object);
      else await this.#o.kube.create(SECRETS, object, { namespace: this.#o.namespace });
      return true;
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 409) return false;
      throw error;
    }
  }

  #bundle(caPem: string): string {
    const pems = [caPem];
    if (this.#retiringCa && this.#retiringCa !== caPem) {
      const v = validity(this.#retiringCa);
      if (v && v.notAfter > this.#now()) pems.push(this.#retiringCa);
    }
    return b64(pems.map((p) => p.trimEnd() + "\n").join(""));
  }
  async #ensureConfiguration(caPem: string): Promise<void> {
    const found = await ensureWebhookConfiguration(this.#o.kube, this.#log, {
      name: this.#o.configName,
      caBundle: this.#bundle(caPem),
      manage: this.#manage,
    });
    if (found) {
      this.#missingConfigWarned = false;
    } else if (!this.#missingConfigWarned) {
      this.#log.warn("webhook configuration not found; Builds are not rewritten until it exists", {
        name: this.#o.configName,
      });
      this.#missingConfigWarned = true;
    }
  }
}
