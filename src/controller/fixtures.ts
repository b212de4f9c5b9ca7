/**
 * @module
 * Test fixtures for the planner and the reconcile, in the manner of kube-rs controller-rs's
 * `fixtures.rs`: facts built from plain maps, and scripted ports that hold a small Quay and
 * cluster in memory, record every call, and fail a named call when told to. Only tests import it.
 */
import { QuayApiError, TerminalError } from "../errors.ts";
import type { QuayRole } from "../integration_spec.ts";
import { API_V1, type QuayIntegrationObject } from "../integration_spec.ts";
import { FINALIZER, LEGACY_FINALIZER, PROJECT_READY_ANNOTATION } from "../names.ts";
import type { QuayPrototype, QuayRepository, QuayRobot } from "../quay/client.ts";
import { QuayReason } from "../quay/reasons.ts";
import { integrationKey, IntegrationRegistry } from "./integration_registry.ts";
import type { NamespaceCaches } from "./namespace_facts.ts";
import type { NamespaceKubePort, QuayPort, RobotSecret } from "./namespace_ports.ts";
import type { LeftBehindOrganization } from "./left_behind.ts";
import type { ImageStreamView, NamespaceView, SecretView, ServiceAccountView } from "./views.ts";

/** A namespace as the cache projects it; a project OpenShift has finished unless told otherwise. */
export function namespaceView(name: string, extra: Partial<NamespaceView> = {}): NamespaceView {
  return {
    name,
    uid: `uid-${name}`,
    resourceVersion: "1",
    labels: { "kubernetes.io/metadata.name": name },
    annotations: { [PROJECT_READY_ANNOTATION]: "s0:c1,c0" },
    finalizers: [],
    deleting: false,
    ...extra,
  };
}

/** A namespace carrying our finalizer. */
export function finalized(ns: NamespaceView, legacy = false): NamespaceView {
  return { ...ns, finalizers: [legacy ? LEGACY_FINALIZER : FINALIZER] };
}

/** A `quay.redhat.com/v1` QuayIntegration with a valid spec, `spec` merged over it. */
export function integrationObject(name: string, spec: Record<string, unknown> = {}): QuayIntegrationObject {
  return {
    apiVersion: API_V1,
    kind: "QuayIntegration",
    metadata: { name, uid: `uid-${name}`, generation: 1 },
    spec: {
      clusterID: "openshift",
      credentialsSecret: { namespace: "quay-bridge", name: "quay-integration" },
      quayHostname: "https://quay.example.com",
      ...spec,
    },
  };
}

/** The registry key of a v1 QuayIntegration. */
export function keyOf(name: string): string {
  return integrationKey(API_V1, name);
}

/** Caches over plain maps, keyed as the reflectors key them. */
export class FixtureCaches implements NamespaceCaches {
  readonly namespaceMap = new Map<string, NamespaceView>();
  readonly imageStreamMap = new Map<string, ImageStreamView>();
  readonly secretMap = new Map<string, SecretView>();
  readonly accountMap = new Map<string, ServiceAccountView>();
  readonly registry = new IntegrationRegistry();

  readonly namespaces = { get: (key: string) => this.namespaceMap.get(key) };
  readonly imageStreams = {
    get: (key: string) => this.imageStreamMap.get(key),
    keysBy: (namespace: string) =>
      [...this.imageStreamMap.keys()].filter((k) => k.startsWith(`${namespace}/`)),
  };
  readonly secrets = { get: (key: string) => this.secretMap.get(key) };
  readonly serviceAccounts = { get: (key: string) => this.accountMap.get(key) };

  /** Adds or replaces a namespace. */
  namespace(ns: NamespaceView): this {
    this.namespaceMap.set(ns.name, ns);
    return this;
  }

  /** Adds a QuayIntegration; its token is usable unless `token` is null (no Secret read yet). */
  integration(name: string, spec: Record<string, unknown> = {}, token: string | null = "t0k3n"): this {
    const key = keyOf(name);
    this.registry.set(key, integrationObject(name, spec));
    if (token !== null) this.registry.setCredentials(key, { state: "ok", token });
    return this;
  }

  /** Adds an ImageStream. */
  imageStream(namespace: string, name: string): this {
    this.imageStreamMap.set(`${namespace}/${name}`, {
      namespace,
      name,
      uid: `uid-${name}`,
      resourceVersion: "1",
    });
    return this;
  }

  /** Adds the configured service accounts (default: builder, default, deployer) to `namespace`. */
  accounts(namespace: string, names = ["builder", "default", "deployer"], linked: string[] = []): this {
    for (const name of names) {
      this.accountMap.set(`${namespace}/${name}`, {
        namespace,
        name,
        resourceVersion: "1",
        secrets: linked.map((s) => `${name}-quay-${s}`),
        imagePullSecrets: linked.map((s) => `${name}-quay-${s}`),
      });
    }
    return this;
  }

  /** Adds one of the operator's Secrets. */
  secret(
    namespace: string,
    name: string,
    dockerConfig = "e30=",
    type = "kubernetes.io/dockerconfigjson",
    annotations: Record<string, string> = {},
  ): this {
    this.secretMap.set(`${namespace}/${name}`, {
      namespace,
      name,
      resourceVersion: "1",
      type,
      dockerConfig,
      labels: {},
      annotations,
    });
    return this;
  }

  /** Releases the registry's clients. */
  close(): void {
    this.registry.close();
  }
}

/** One recorded port call. */
export type Call = readonly [method: string, ...args: unknown[]];

/** Scripted failures: the next calls of `method` throw these errors, in order. */
class Script {
  readonly calls: Call[] = [];
  readonly #failures = new Map<string, unknown[]>();

  /** The next call of `method` throws `error`. */
  failNext(method: string, error: unknown): void {
    const list = this.#failures.get(method) ?? [];
    list.push(error);
    this.#failures.set(method, list);
  }

  record(method: string, ...args: unknown[]): void {
    this.calls.push([method, ...args]);
    const error = this.#failures.get(method)?.shift();
    if (error !== undefined) throw error;
  }

  /** The method names called, in order. */
  methods(): string[] {
    return this.calls.map((c) => c[0]);
  }
}

/** A Kubernetes port holding what was written. */
export class ScriptedKube extends Script implements NamespaceKubePort {
  readonly secrets = new Map<string, RobotSecret>();
  readonly links = new Map<string, Set<string>>();
  readonly finalizers = new Map<string, boolean>();

  addFinalizer(ns: NamespaceView): Promise<void> {
    return this.#run(() => void this.finalizers.set(ns.name, true), "addFinalizer", ns.name);
  }
  releaseFinalizer(ns: NamespaceView): Promise<void> {
    return this.#run(() => void this.finalizers.set(ns.name, false), "releaseFinalizer", ns.name);
  }
  /** Left-behind organizations recorded, by integration key. */
  readonly leftBehind = new Map<string, LeftBehindOrganization[]>();
  recordLeftBehind(integrationKey: string, entry: LeftBehindOrganization): Promise<void> {
    return this.#run(
      () => {
        const list = (this.leftBehind.get(integrationKey) ?? []).filter((e) =>
          e.organization !== entry.organization
        );
        this.leftBehind.set(integrationKey, [...list, entry]);
      },
      "recordLeftBehind",
      integrationKey,
      entry.organization,
    );
  }
  /** Deletion failure marks written, by namespace (ms since epoch). */
  readonly deletionMarks = new Map<string, number>();
  markDeletionFailing(ns: NamespaceView, since: number): Promise<void> {
    return this.#run(() => void this.deletionMarks.set(ns.name, since), "markDeletionFailing", ns.name);
  }
  createSecret(secret: RobotSecret): Promise<"created" | "adopted"> {
    return this.#run(
      () => {
        this.secrets.set(`${secret.namespace}/${secret.name}`, secret);
        return "created" as const;
      },
      "createSecret",
      secret.name,
    );
  }
  updateSecret(secret: RobotSecret, resourceVersion: string): Promise<void> {
    return this.#run(
      () => void this.secrets.set(`${secret.namespace}/${secret.name}`, secret),
      "updateSecret",
      secret.name,
      resourceVersion,
    );
  }
  linkSecret(account: ServiceAccountView, secret: string): Promise<void> {
    return this.#run(
      () => {
        const key = `${account.namespace}/${account.name}`;
        this.links.set(key, new Set([...this.links.get(key) ?? [], secret]));
      },
      "linkSecret",
      account.name,
      secret,
    );
  }

  #run<T>(effect: () => T, method: string, ...args: unknown[]): Promise<T> {
    try {
      this.record(method, ...args);
      return Promise.resolve(effect());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

interface FakeOrganization {
  robots: Map<string, string>;
  prototypes: QuayPrototype[];
  repositories: Map<string, string>;
}

/** A Quay port over an in-memory Quay. */
export class ScriptedQuay extends Script implements QuayPort {
  readonly organizations = new Map<string, FakeOrganization>();
  #ids = 0;

  /** Puts an organization in place, with robots (tokens `tok-<short>`) and repositories. */
  seed(org: string, robots: string[] = [], repositories: Record<string, string> = {}): this {
    this.organizations.set(org, {
      robots: new Map(robots.map((r) => [r, `tok-${r}`])),
      prototypes: [],
      repositories: new Map(Object.entries(repositories)),
    });
    return this;
  }

  /** Adds default permissions for robots of `org`. */
  seedPrototypes(org: string, entries: [robot: string, role: QuayRole][]): this {
    const o = this.#org(org);
    for (const [robot, role] of entries) {
      o.prototypes.push({
        id: `p${++this.#ids}`,
        role,
        delegate: { name: `${org}+${robot}`, kind: "user", is_robot: true },
      });
    }
    return this;
  }

  /** A write into a missing organization fails as the client reports it (confirmed absent). */
  #org(org: string): FakeOrganization {
    const o = this.organizations.get(org);
    if (!o) {
      throw new QuayApiError(`Organization ${org} does not exist`, {
        status: 404,
        route: "fixture",
        reason: QuayReason.OrganizationNotFound,
        retry: "transient",
      });
    }
    return o;
  }

  getOrganization(org: string) {
    return this.#do("getOrganization", [org], () => this.organizations.has(org) ? { name: org } : undefined);
  }
  createOrganization(org: string, email: string) {
    return this.#do("createOrganization", [org, email], () => {
      if (this.organizations.has(org)) return "exists" as const;
      this.seed(org);
      return "created" as const;
    });
  }
  deleteOrganization(org: string) {
    return this.#do("deleteOrganization", [org], () => this.organizations.delete(org));
  }
  listRobots(org: string) {
    return this.#do("listRobots", [org], (): QuayRobot[] | undefined => {
      const o = this.organizations.get(org);
      return o ? [...o.robots].map(([short, token]) => ({ name: `${org}+${short}`, token })) : undefined;
    });
  }
  getRobot(org: string, shortName: string) {
    return this.#do("getRobot", [org, shortName], (): QuayRobot | undefined => {
      const token = this.organizations.get(org)?.robots.get(shortName);
      return token === undefined ? undefined : { name: `${org}+${shortName}`, token };
    });
  }
  createRobot(org: string, shortName: string, description: string) {
    return this.#do("createRobot", [org, shortName, description], (): QuayRobot => {
      const o = this.#org(org);
      const token = o.robots.get(shortName) ?? `tok-${shortName}`;
      o.robots.set(shortName, token);
      return { name: `${org}+${shortName}`, token };
    });
  }
  regenerateRobotToken(org: string, shortName: string) {
    return this.#do("regenerateRobotToken", [org, shortName], (): QuayRobot => {
      const o = this.#org(org);
      const old = o.robots.get(shortName);
      if (old === undefined) {
        throw new TerminalError(`no robot ${org}+${shortName}`, { reason: "FixtureError" });
      }
      const token = `${old}-r`;
      o.robots.set(shortName, token);
      return { name: `${org}+${shortName}`, token };
    });
  }
  listPrototypes(org: string) {
    return this.#do("listPrototypes", [org], () => this.organizations.get(org)?.prototypes);
  }
  createPrototype(org: string, robot: string, role: QuayRole) {
    return this.#do("createPrototype", [org, robot, role], (): QuayPrototype => {
      const prototype = {
        id: `p${++this.#ids}`,
        role,
        delegate: { name: robot, kind: "user", is_robot: true },
      };
      this.#org(org).prototypes.push(prototype);
      return prototype;
    });
  }
  updatePrototype(org: string, id: string, role: QuayRole) {
    return this.#do("updatePrototype", [org, id, role], () => {
      const o = this.#org(org);
      o.prototypes = o.prototypes.map((p) => p.id === id ? { ...p, role } : p);
    });
  }
  listRepositories(org: string) {
    return this.#do(
      "listRepositories",
      [org],
      (): QuayRepository[] =>
        [...this.organizations.get(org)?.repositories ?? []].map(([name, description]) => ({
          namespace: org,
          name,
          description,
        })),
    );
  }
  createRepository(org: string, name: string, description: string) {
    return this.#do("createRepository", [org, name, description], () => {
      const o = this.#org(org);
      if (o.repositories.has(name)) return "exists" as const;
      o.repositories.set(name, description);
      return "created" as const;
    });
  }
  deleteRepository(org: string, name: string) {
    return this.#do(
      "deleteRepository",
      [org, name],
      () => this.organizations.get(org)?.repositories.delete(name) ?? false,
    );
  }
  setRepositoryPermission(org: string, repo: string, user: string, role: QuayRole) {
    return this.#do("setRepositoryPermission", [org, repo, user, role], () => undefined);
  }

  #do<T>(method: string, args: unknown[], effect: () => T): Promise<T> {
    try {
      this.record(method, ...args);
      return Promise.resolve(effect());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
