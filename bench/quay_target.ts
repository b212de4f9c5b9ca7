/**
 * @module
 * The Quay a benchmark run points an operator at, with its calls counted by route template
 * (`"POST /api/v1/repository"`), so measuring adds no Quay call:
 * - `world`: a fresh test-world Quay in process (it counts its own calls);
 * - `real`: the shared real Quay of `tests/realquay`, reached through a counting TLS proxy in this
 *   process. The real Quay is shared with other runs, so every organization of a run carries the
 *   run's unique prefix (the QuayIntegration's clusterID) and is deleted when the run closes.
 */
import { createCertificateAuthority, issueServingCertificate } from "../src/certs/pki.ts";
import { callApi, type RealQuay, startRealQuay, uniqueName } from "../tests/realquay/mod.ts";
import { AuditLog } from "../tests/world/quay/audit_log.ts";
import { apiRoutes } from "../tests/world/quay/api.ts";
import { startQuayWorld } from "../tests/world/quay/mod.ts";
import { notificationRoutes } from "../tests/world/quay/notifications.ts";
import { registryRoutes } from "../tests/world/quay/registry.ts";
import { Router } from "../tests/world/quay/router.ts";

/** Which Quay. */
export type QuayKind = "world" | "real";

/** A Quay under a benchmark, its calls counted. */
export interface QuayTarget {
  readonly kind: QuayKind;
  /** What the operators are given as `quayHostname`. */
  readonly url: string;
  /** A super-user token with every scope. */
  readonly token: string;
  /** The CA of {@linkcode QuayTarget.url}'s serving certificate. */
  readonly caPem: string;
  /** The organization prefix (clusterID) the run must use: unique per run on the shared real Quay. */
  readonly clusterId: string;
  /** Calls received since the last reset, by `"METHOD template"`. */
  calls(): Record<string, number>;
  resetCalls(): void;
  /**
   * Deletes what the run made in Quay (the organizations `<clusterId>_<namespace>` of the namespaces
   * named) and stops what the target started; returns how many organizations were deleted.
   */
  close(namespaces: Iterable<string>): Promise<number>;
}

/** A fresh test-world Quay; its clusterID is the benchmark's usual `openshift`. */
export async function worldQuayTarget(): Promise<QuayTarget> {
  const quay = await startQuayWorld();
  return {
    kind: "world",
    url: quay.url,
    token: quay.adminToken,
    caPem: quay.caPem,
    clusterId: "openshift",
    calls: () => quay.calls(),
    resetCalls: () => quay.resetCalls(),
    close: async () => {
      await quay.close();
      return 0;
    },
  };
}

/** The route templates of Quay's API and registry, as the test world counts them. */
function quayRouter(): Router<null> {
  const templates = [
    ...apiRoutes({ repositoryPageSize: 100 }),
    ...new AuditLog().routes(),
    ...notificationRoutes(),
    ...registryRoutes(),
  ];
  return new Router(templates.map((r) => ({ method: r.method, template: r.template, handler: null })));
}

const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"];

/**
 * The shared real Quay through a counting proxy. Its organizations are `<clusterId>_<namespace>` with a
 * clusterID unique to this run (`bench` + random), so nothing of another run is touched.
 */
export async function realQuayTarget(): Promise<QuayTarget> {
  const quay: RealQuay = await startRealQuay();
  const clusterId = uniqueName("bench");
  const router = quayRouter();
  const counts = new Map<string, number>();
  const ca = await createCertificateAuthority({ commonName: "quay-bench-proxy-ca" });
  const serving = await issueServingCertificate(ca, {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
  });
  const upstream = Deno.createHttpClient({ caCerts: [quay.caPem] });
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: serving.certPem,
    key: serving.keyPem,
    onListen: () => {},
  }, async (req) => {
    const url = new URL(req.url);
    const match = router.match(req.method === "HEAD" ? "GET" : req.method, url.pathname);
    const key = match.kind === "found"
      ? `${req.method} ${match.route.template}`
      : `${req.method} (unmatched)`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const headers = new Headers(req.headers);
    for (const h of HOP_BY_HOP) headers.delete(h);
    // fetch decodes what it is sent compressed: ask for it plain, so the body passes through as is.
    headers.delete("accept-encoding");
    try {
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
      const answer = await fetch(quay.url + url.pathname + url.search, {
        method: req.method,
        headers,
        body,
        client: upstream,
        redirect: "manual",
      });
      const out = new Headers(answer.headers);
      for (const h of [...HOP_BY_HOP, "content-encoding"]) out.delete(h);
      return new Response(await answer.arrayBuffer(), { status: answer.status, headers: out });
    } catch {
      return new Response("bad gateway", { status: 502 });
    }
  });
  const deleteOrg = async (org: string): Promise<boolean> => {
    const r = await callApi(quay.url, quay.client, quay.token, "DELETE", `/api/v1/organization/${org}`);
    if (r.status !== 204 && r.status !== 404) {
      throw new Error(`cleanup: DELETE organization ${org} answered ${r.status}: ${r.text.slice(0, 200)}`);
    }
    return r.status === 204;
  };
  return {
    kind: "real",
    url: `https://127.0.0.1:${server.addr.port}`,
    token: quay.token,
    caPem: ca.certPem,
    clusterId,
    calls: () => Object.fromEntries(counts),
    resetCalls: () => counts.clear(),
    async close(namespaces) {
      await server.shutdown();
      upstream.close();
      // Every organization the run may have made, plus any other with its prefix the super user sees.
      const orgs = new Set([...namespaces].map((ns) => `${clusterId}_${ns}`));
      const listed = await quay.api("GET", "/api/v1/superuser/organizations/");
      const all = (listed.json as { organizations?: { name: string }[] } | undefined)?.organizations ?? [];
      for (const o of all) if (o.name.startsWith(`${clusterId}_`)) orgs.add(o.name);
      const names = [...orgs];
      let deleted = 0;
      let next = 0;
      // A few at a time: the real Quay is shared and deletion queues GC work.
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (next < names.length) if (await deleteOrg(names[next++] as string)) deleted++;
      }));
      return deleted;
    },
  };
}

/** The Quay of `kind`. */
export function startQuayTarget(kind: QuayKind): Promise<QuayTarget> {
  return kind === "real" ? realQuayTarget() : worldQuayTarget();
}
