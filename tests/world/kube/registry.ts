/**
 * @module
 * The resources the world currently serves (built-ins plus those of established CRDs), and the
 * discovery documents derived from them: `/api`, `/api/v1`, `/apis`, `/apis/<group>`,
 * `/apis/<group>/<version>` in the legacy (unaggregated) format every client understands.
 */
import type { ResourceDef } from "./types.ts";

/** Kubernetes version priority: GA > beta > alpha, then by number (`v2` > `v1` > `v1beta2` > `v1beta1`). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [0, 0, 0, v] as const;
    const stage = m[2] === "alpha" ? 1 : m[2] === "beta" ? 2 : 3;
    return [1, Number(m[1]), stage, Number(m[3] ?? 0)] as const;
  };
  const pa = parse(a);
  const pb = parse(b);
  if (pa[0] !== pb[0]) return pb[0] - pa[0];
  if (pa[0] === 0) return String(pa[3]).localeCompare(String(pb[3]));
  if (pa[2] !== pb[2]) return pb[2] - pa[2];
  if (pa[1] !== pb[1]) return pb[1] - pa[1];
  return (pb[3] as number) - (pa[3] as number);
}

/** The served resources. */
export class Registry {
  readonly #defs = new Map<string, ResourceDef>();
  readonly #groupOrder: string[] = [];

  add(def: ResourceDef): void {
    this.#defs.set(`${def.group}/${def.version}/${def.plural}`, def);
    if (!this.#groupOrder.includes(def.group)) this.#groupOrder.push(def.group);
  }

  /** Stops serving every version of a resource. */
  removeResource(group: string, plural: string): void {
    for (const [key, def] of this.#defs) {
      if (def.group === group && def.plural === plural) this.#defs.delete(key);
    }
    if (![...this.#defs.values()].some((d) => d.group === group)) {
      const i = this.#groupOrder.indexOf(group);
      if (i >= 0) this.#groupOrder.splice(i, 1);
    }
  }

  find(group: string, version: string, plural: string): ResourceDef | undefined {
    return this.#defs.get(`${group}/${version}/${plural}`);
  }

  /** Any served version of a resource. */
  anyVersion(group: string, plural: string): ResourceDef | undefined {
    return this.versionsOf(group).flatMap((v) => this.resourcesOf(group, v)).find((d) => d.plural === plural);
  }

  /** True when some resource of `group/version` is served. */
  hasGroupVersion(group: string, version: string): boolean {
    for (const def of this.#defs.values()) if (def.group === group && def.version === version) return true;
    return false;
  }

  /** Versions of a group, preferred first. */
  versionsOf(group: string): string[] {
    const versions = new Set<string>();
    for (const def of this.#defs.values()) if (def.group === group) versions.add(def.version);
    return [...versions].sort(compareVersions);
  }

  resourcesOf(group: string, version: string): ResourceDef[] {
    return [...this.#defs.values()].filter((d) => d.group === group && d.version === version);
  }

  all(): ResourceDef[] {
    return [...this.#defs.values()];
  }

  /** Named groups in discovery order. */
  groups(): string[] {
    return this.#groupOrder.filter((g) => g !== "");
  }

  /** `APIVersions` for `/api`. */
  apiVersions(serverAddress: string): unknown {
    return {
      kind: "APIVersions",
      versions: ["v1"],
      serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
    };
  }

  #group(name: string): Record<string, unknown> {
    const versions = this.versionsOf(name).map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
    return { name, versions, preferredVersion: versions[0] };
  }

  /** `APIGroupList` for `/apis`. */
  groupList(): unknown {
    return { kind: "APIGroupList", apiVersion: "v1", groups: this.groups().map((g) => this.#group(g)) };
  }

  /** `APIGroup` for `/apis/<group>`; `undefined` when not served. */
  group(name: string): unknown {
    if (!this.groups().includes(name)) return undefined;
    return { kind: "APIGroup", apiVersion: "v1", ...this.#group(name) };
  }

  /** `APIResourceList` for a group version; `undefined` when not served. */
  resourceList(group: string, version: string): unknown {
    const defs = this.resourcesOf(group, version);
    if (defs.length === 0) return undefined;
    const resources: unknown[] = [];
    for (const def of defs) {
      const entry: Record<string, unknown> = {
        name: def.plural,
        singularName: def.singular,
        namespaced: def.namespaced,
        kind: def.kind,
        verbs: def.verbs,
      };
      if (def.shortNames.length > 0) entry.shortNames = def.shortNames;
      if (def.categories.length > 0) entry.categories = def.categories;
      resources.push(entry);
      for (const [sub, info] of Object.entries(def.subresources).sort(([a], [b]) => a.localeCompare(b))) {
        resources.push({
          name: `${def.plural}/${sub}`,
          singularName: "",
          namespaced: def.namespaced,
          kind: info.kind,
          verbs: info.verbs,
        });
      }
    }
    return {
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: group ? `${group}/${version}` : version,
      resources,
    };
  }
}
