/**
 * @module
 * Extension points for behaviours the Kubernetes core does not have, such as OpenShift's
 * `imagestreamimports` (a POST that computes an answer and stores nothing) and
 * `buildconfigs/{name}/instantiate`. A handler is plain TypeScript in the world's process; to read or
 * write objects it talks to the world over HTTP like any client (`world.url` with the admin token),
 * so the same behaviour code can later run against a real cluster.
 */
import type { UserInfo } from "./rbac.ts";
import type { KubeObject } from "./types.ts";

/** A create aimed at a virtual resource or subresource. */
export interface VirtualCreateRequest {
  group: string;
  version: string;
  /** Plural resource name, e.g. `imagestreamimports` or `buildconfigs`. */
  resource: string;
  /** `instantiate` for `buildconfigs/{name}/instantiate`; `""` for a plain resource. */
  subresource: string;
  namespace: string;
  /** The object name from the URL (subresources) or the body. */
  name: string;
  /** The decoded request body, after mutating admission. */
  body: KubeObject;
  /** The authenticated caller (already authorised for `create` on the (sub)resource). */
  user: UserInfo;
  /** `dryRun=All` was asked for: compute the answer, change nothing. */
  dryRun: boolean;
  /** The query string of the request. */
  query: URLSearchParams;
}

/**
 * Computes the answer of a virtual create. Return the object to send with 201 Created (its `kind` and
 * `apiVersion` are filled in when absent). Throw a `KubeStatusError` (from `./status.ts`, e.g.
 * `conflict(...)`, `notFound(...)`, `invalid(...)`) to answer with that Status instead; any other
 * error becomes a 500 InternalError.
 */
export type VirtualCreateHandler = (request: VirtualCreateRequest) => Promise<KubeObject> | KubeObject;

/** Where a handler plugs in: `imagestreamimports` in `image.openshift.io`, or `buildconfigs` + `instantiate`. */
export interface VirtualTarget {
  group: string;
  resource: string;
  subresource?: string;
}

/** The hooks of a world. */
export interface KubeWorldHooks {
  /**
   * Registers the handler of POSTs to a resource the world serves without storage (such as
   * `image.openshift.io` `imagestreamimports`) or to a subresource (`build.openshift.io`
   * `buildconfigs` / `instantiate`). Authentication, RBAC (`create` on `resource[/subresource]`),
   * the namespace's existence and mutating admission run first, as on a real server. Returns a
   * function that unregisters it. A later registration for the same target replaces the earlier one.
   */
  onVirtualCreate(target: VirtualTarget, handler: VirtualCreateHandler): () => void;
}

/** The table of registered handlers. */
export class HookTable implements KubeWorldHooks {
  readonly #handlers = new Map<string, VirtualCreateHandler>();

  static key(group: string, resource: string, subresource = ""): string {
    return `${group}/${resource}/${subresource}`;
  }

  onVirtualCreate(target: VirtualTarget, handler: VirtualCreateHandler): () => void {
    const key = HookTable.key(target.group, target.resource, target.subresource);
    this.#handlers.set(key, handler);
    return () => {
      if (this.#handlers.get(key) === handler) this.#handlers.delete(key);
    };
  }

  find(group: string, resource: string, subresource: string): VirtualCreateHandler | undefined {
    return this.#handlers.get(HookTable.key(group, resource, subresource));
  }
}
