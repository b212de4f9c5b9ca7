/**
 * @module
 * Test helpers for the Quay world's own tests: start a world with an HTTP client that trusts its
 * CA, and make API calls returning status, headers and the parsed body. Everything goes over real
 * HTTPS; nothing reaches into the world's state.
 */
import { type QuayWorld, type QuayWorldOptions, startQuayWorld } from "./mod.ts";

/** A world and a client trusting its CA. */
export interface Harness {
  readonly quay: QuayWorld;
  readonly client: Deno.HttpClient;
  /** Calls the API (or any path) as `token` (default: the admin token; `null`: no Authorization). */
  call(method: string, path: string, options?: CallOptions): Promise<CallResult>;
}

/** Options of {@linkcode Harness.call}. */
export interface CallOptions {
  token?: string | null;
  /** JSON-encoded with `Content-Type: application/json`, unless `rawBody` is given. */
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  redirect?: RequestRedirect;
}

/** The outcome of a call. */
export interface CallResult {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or `undefined` if it is not JSON. */
  json: unknown;
}

/** Runs `fn` with a fresh world; closes everything afterwards. */
export async function withQuay(
  options: QuayWorldOptions,
  fn: (h: Harness) => Promise<void>,
): Promise<void> {
  const quay = await startQuayWorld(options);
  const client = Deno.createHttpClient({ caCerts: [quay.caPem] });
  const harness: Harness = {
    quay,
    client,
    async call(method, path, options = {}) {
      const headers = new Headers(options.headers);
      const token = options.token === undefined ? quay.adminToken : options.token;
      if (token !== null) headers.set("authorization", `Bearer ${token}`);
      let body: string | undefined = options.rawBody;
      if (body === undefined && options.body !== undefined) {
        body = JSON.stringify(options.body);
        if (!headers.has("content-type")) headers.set("content-type", "application/json");
      }
      const response = await fetch(quay.url + path, {
        method,
        headers,
        body,
        client,
        redirect: options.redirect ?? "manual",
      });
      const text = await response.text();
      let json: unknown = undefined;
      try {
        json = text === "" ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: response.status, headers: response.headers, text, json };
    },
  };
  try {
    await fn(harness);
  } finally {
    client.close();
    await quay.close();
  }
}

/** Creates an organization as the admin and returns its name. */
export async function createOrg(h: Harness, name: string, token?: string): Promise<string> {
  const r = await h.call("POST", "/api/v1/organization/", {
    token,
    body: { name, email: `${name}@redhat.com` },
  });
  if (r.status !== 201) throw new Error(`creating ${name}: ${r.status} ${r.text}`);
  return name;
}

/** Creates a robot the way the upstream bridge does (PUT, no body) and returns name and token. */
export async function createRobot(
  h: Harness,
  org: string,
  short: string,
): Promise<{ name: string; token: string }> {
  const r = await h.call("PUT", `/api/v1/organization/${org}/robots/${short}`);
  if (r.status !== 201) throw new Error(`creating robot ${org}+${short}: ${r.status} ${r.text}`);
  return r.json as { name: string; token: string };
}

/** Adds a default permission for a robot, in the upstream bridge's request shape. */
export async function addPrototype(h: Harness, org: string, robot: string, role: string): Promise<string> {
  const r = await h.call("POST", `/api/v1/organization/${org}/prototypes`, {
    body: { id: "", role, delegate: { kind: "user", name: robot, is_robot: true, is_org_member: true } },
  });
  if (r.status !== 200) throw new Error(`adding prototype: ${r.status} ${r.text}`);
  return (r.json as { id: string }).id;
}

/** Creates a private image repository as the bridge does. */
export async function createRepo(h: Harness, org: string, name: string): Promise<void> {
  const r = await h.call("POST", "/api/v1/repository", {
    body: { namespace: org, visibility: "private", repository: name, description: "", repo_kind: "image" },
  });
  if (r.status !== 201) throw new Error(`creating repository ${org}/${name}: ${r.status} ${r.text}`);
}
