import assert from "node:assert/strict";
import { dockerConfig } from "./cluster_plan.ts";
import type { DesiredOrganization } from "./quay_plan.ts";
import { inferOrganization, syncDigest, SYNCED_ANNOTATION, tokenFromSecret } from "./sync_evidence.ts";
import type { SecretView } from "./views.ts";

const HOST = "quay.example.com";
const ORG = "openshift_team";
const desired: DesiredOrganization = {
  organization: ORG,
  robots: [
    { shortName: "builder", fullName: `${ORG}+builder`, role: "write" },
    { shortName: "default", fullName: `${ORG}+default`, role: "read" },
  ],
  repositories: new Set(["app"]),
  deleteOrphanRepositories: true,
};

function secret(sa: string, token: string, host = HOST): SecretView {
  return {
    namespace: "team",
    name: `${sa}-quay-openshift`,
    resourceVersion: "1",
    type: "kubernetes.io/dockerconfigjson",
    dockerConfig: dockerConfig(host, `${ORG}+${sa}`, token),
    labels: {},
    annotations: {},
  };
}

const secrets = new Map([
  ["builder-quay-openshift", secret("builder", "tb")],
  ["default-quay-openshift", secret("default", "td")],
]);
const digest = syncDigest("k", HOST, desired);
const evidence = {
  namespace: "team",
  annotations: { [SYNCED_ANNOTATION]: digest },
  digest,
  desired,
  clusterId: "openshift",
  registryHost: HOST,
  secrets,
  observedAt: 5,
};

Deno.test("a matching digest and the robot Secrets stand for the organization", () => {
  const known = inferOrganization(evidence);
  assert.ok(known);
  assert.equal(known.exists, true);
  assert.deepEqual([...known.robots], [["builder", "tb"], ["default", "td"]]);
  assert.deepEqual([...known.prototypes.keys()], [`${ORG}+builder`, `${ORG}+default`]);
  assert.deepEqual([...known.repositories.keys()], ["app"]);
  assert.equal(known.observedAt, 5);
});

Deno.test("no inference without the digest of what is wanted now, or without every robot's token", () => {
  // An ImageStream added while the operator was away changes what is wanted.
  const more = { ...desired, repositories: new Set(["app", "web"]) };
  assert.equal(
    inferOrganization({ ...evidence, desired: more, digest: syncDigest("k", HOST, more) }),
    undefined,
  );
  assert.equal(inferOrganization({ ...evidence, annotations: {} }), undefined);
  assert.equal(inferOrganization({ ...evidence, secrets: new Map([...secrets].slice(0, 1)) }), undefined);
  const otherHost = new Map(secrets).set(
    "default-quay-openshift",
    secret("default", "td", "old.example.com"),
  );
  assert.equal(inferOrganization({ ...evidence, secrets: otherHost }), undefined);
});

Deno.test("the digest changes with the robots' roles, the repositories and the registry", () => {
  const [first, ...others] = desired.robots;
  assert.ok(first);
  const role = { ...desired, robots: [{ ...first, role: "admin" as const }, ...others] };
  assert.notEqual(syncDigest("k", HOST, role), digest);
  assert.notEqual(syncDigest("k", "other", desired), digest);
  assert.equal(syncDigest("k", HOST, { ...desired, repositories: new Set(["app"]) }), digest);
});

Deno.test("a token is read only from the robot's own entry", () => {
  assert.equal(tokenFromSecret(secret("builder", "a:b"), HOST, `${ORG}+builder`), "a:b");
  assert.equal(tokenFromSecret(secret("builder", "x"), HOST, `${ORG}+default`), undefined);
  assert.equal(
    tokenFromSecret({ ...secret("builder", "x"), dockerConfig: "!!" }, HOST, `${ORG}+builder`),
    undefined,
  );
});
