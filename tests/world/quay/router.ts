/**
 * @module
 * A route table keyed by Quay-style templates (`GET /api/v1/organization/{org}`). The template is
 * the unit of call counting and of `failRoute`, so routing is a small anchored-regex table rather
 * than a framework router, whose route names (`:org`) would have to be translated back. `{name}`
 * spans the two segments of a registry repository name (`org/repo`); every other parameter is one
 * segment. As Flask does, a path missing a template's trailing slash is redirected (308).
 */

/** Which half of Quay a route belongs to. */
export type Area = "api" | "registry";

/** One route. */
export interface RouteDef<H> {
  readonly method: string;
  readonly template: string;
  readonly handler: H;
}

/** The outcome of {@linkcode Router.match}. */
export type RouteMatch<H> =
  | { kind: "found"; route: RouteDef<H>; params: Record<string, string> }
  | { kind: "method-not-allowed"; template: string }
  | { kind: "redirect"; location: string }
  | { kind: "none" };

interface Compiled<H> {
  route: RouteDef<H>;
  regex: RegExp;
  names: string[];
  /** Matches the path without the template's trailing slash, for the redirect. */
  slashless: RegExp | undefined;
}

function compile(template: string): { regex: RegExp; names: string[]; slashless: RegExp | undefined } {
  const names: string[] = [];
  const source = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{(\w+)\}/g, (_m, name: string) => {
    names.push(name);
    return name === "name" ? "([^/]+/[^/]+)" : "([^/]+)";
  });
  const slashless = template.endsWith("/") && template.length > 1
    ? new RegExp(`^${source.slice(0, -1)}$`)
    : undefined;
  return { regex: new RegExp(`^${source}$`), names, slashless };
}

/** The area of a path: registry for `/v2`, API otherwise. */
export function areaOf(path: string): Area {
  return path === "/v2" || path.startsWith("/v2/") ? "registry" : "api";
}

/** Routes requests to handlers by method and path template. */
export class Router<H> {
  readonly #routes: Compiled<H>[];

  constructor(routes: readonly RouteDef<H>[]) {
    this.#routes = routes.map((route) => ({ route, ...compile(route.template) }));
  }

  /** Every `METHOD template` key served. */
  keys(): string[] {
    return this.#routes.map((c) => `${c.route.method} ${c.route.template}`);
  }

  /** Finds the route of a request. */
  match(method: string, path: string, search = ""): RouteMatch<H> {
    let methodMismatch: string | undefined;
    for (const c of this.#routes) {
      const m = c.regex.exec(path);
      if (!m) continue;
      if (c.route.method !== method) {
        methodMismatch ??= c.route.template;
        continue;
      }
      const params: Record<string, string> = {};
      try {
        c.names.forEach((name, i) => {
          params[name] = decodeURIComponent(m[i + 1] ?? "");
        });
      } catch {
        return { kind: "none" };
      }
      return { kind: "found", route: c.route, params };
    }
    if (methodMismatch) return { kind: "method-not-allowed", template: methodMismatch };
    for (const c of this.#routes) {
      if (c.slashless?.test(path)) return { kind: "redirect", location: `${path}/${search}` };
    }
    return { kind: "none" };
  }
}
