/**
 * @module
 * What a burst asked of the kube-apiserver, from its own `apiserver_request_total` counter: requests
 * by verb and resource between two scrapes. On two shared cores the apiserver (with its embedded
 * etcd) is the largest CPU user of a burst, so the writes each operator makes per namespace bound
 * how fast it can converge.
 */

/** Requests by `"VERB resource[/subresource]"`, summed over codes, scopes and groups. */
export function parseRequestCounts(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const close = line.lastIndexOf("}");
    const labels = line.slice("apiserver_request_total{".length, close);
    const value = Number(line.slice(close + 1).trim());
    if (!Number.isFinite(value)) continue;
    const label = (name: string) => new RegExp(`(?:^|,)${name}="([^"]*)"`).exec(labels)?.[1] ?? "";
    const subresource = label("subresource");
    const key = `${label("verb")} ${label("resource")}${subresource ? `/${subresource}` : ""}`;
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/** `after - before`, without the keys that did not change. */
export function diffCounts(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, n] of after) {
    const d = n - (before.get(key) ?? 0);
    if (d > 0) out.set(key, d);
  }
  return out;
}

/** Writes among `counts` (every verb but reads and watches). */
export function writes(counts: Map<string, number>): number {
  let n = 0;
  for (const [key, count] of counts) {
    if (!/^(GET|LIST|WATCH) /.test(key)) n += count;
  }
  return n;
}

/** Scrapes the apiserver's request counts through `request` (a cluster's admin fetch). */
export async function scrapeRequestCounts(
  request: (path: string) => Promise<Response>,
): Promise<Map<string, number>> {
  const response = await request("/metrics");
  const text = await response.text();
  if (!response.ok) throw new Error(`GET /metrics: ${response.status}`);
  return parseRequestCounts(text);
}
