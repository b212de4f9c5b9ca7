/**
 * @module
 * The benchmark's count of kube-apiserver requests (`bench/kube_requests.ts`), from the counter's
 * text format.
 */
import assert from "node:assert/strict";
import { diffCounts, parseRequestCounts, writes } from "../../bench/kube_requests.ts";

const SCRAPE = (secrets: number, patches: number) =>
  `# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} ${secrets}
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="serviceaccounts",scope="resource",subresource="",verb="PATCH",version="v1"} ${patches}
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="namespaces",scope="resource",subresource="status",verb="PUT",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="namespaces",scope="cluster",subresource="",verb="LIST",version="v1"} 4
apiserver_request_total{code="0",component="apiserver",dry_run="",group="",resource="namespaces",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
apiserver_request_duration_seconds_bucket{verb="POST",le="0.1"} 9
`;

Deno.test("request counts sum codes by verb and resource, and a diff keeps what changed", () => {
  const before = parseRequestCounts(SCRAPE(10, 5));
  assert.equal(before.get("POST secrets"), 12);
  assert.equal(before.get("PUT namespaces/status"), 1);
  assert.equal(before.size, 5);
  const after = parseRequestCounts(SCRAPE(13, 11));
  const diff = diffCounts(before, after);
  assert.deepEqual([...diff], [["POST secrets", 3], ["PATCH serviceaccounts", 6]]);
  assert.equal(writes(after), 13 + 2 + 11 + 1);
});
