/**
 * @module
 * Robot credential rotation end to end, one scenario run against the test world's Quay
 * (`rotation_test.ts`) and the real Quay (`tests/realquay/rotation_test.ts`) with the same
 * assertions: an image pushed with the builder robot's token; a rotation asked for by annotating
 * the namespace; the old token refused by the registry's `/v2/auth`, the new one in each Secret
 * pulling; an operator restart that rotates nothing; and, across a restart, a token whose recorded
 * age passed the interval rotated by the new process alone (the schedule lives in the Secret).
 */
import assert from "node:assert/strict";
import { type Bridge, synced, until } from "./harness.ts";
import type { Api } from "../walkthrough/mod.ts";
import { pullManifest, pushImage } from "../world/quay/registry_client.ts";

const SAS = ["builder", "default", "deployer"];
const ROTATE = "quay.redhat.com/rotate-credentials";
const ROTATED_AT = "quay.redhat.com/credentials-rotated-at";

/** Where the scenario runs. */
export interface RotationTarget {
  readonly b: Bridge;
  /** Quay's API as a superuser. */
  readonly quay: Api;
  /** `https://host[:port]` of Quay's registry. */
  readonly registryUrl: string;
  /** `host[:port]`: the `service` of `/v2/auth`. */
  readonly registryHost: string;
  readonly caPem: string;
  readonly namespace: string;
  readonly organization: string;
  readonly clusterId: string;
  /** The flags the operator is restarted with. */
  readonly flags: string[];
}

/** The robot `user:token` a dockerconfigjson Secret holds. */
export function credentialsOf(secret: { data?: Record<string, string> }): { user: string; token: string } {
  const config = JSON.parse(atob(secret.data?.[".dockerconfigjson"] ?? ""));
  const auth = Object.values(config.auths as Record<string, { auth: string }>)[0];
  const pair = atob(auth?.auth ?? "");
  const colon = pair.indexOf(":");
  return { user: pair.slice(0, colon), token: pair.slice(colon + 1) };
}

/** The status of `GET /v2/auth` for `repository:<repo>:pull` with Basic `user:token`. */
export async function registryAuthStatus(
  t: RotationTarget,
  repository: string,
  credentials: { user: string; token: string },
): Promise<number> {
  const client = Deno.createHttpClient({ caCerts: [t.caPem] });
  try {
    const query = `service=${encodeURIComponent(t.registryHost)}&scope=${
      encodeURIComponent(`repository:${repository}:pull`)
    }`;
    const response = await fetch(`${t.registryUrl}/v2/auth?${query}`, {
      client,
      headers: { authorization: `Basic ${btoa(`${credentials.user}:${credentials.token}`)}` },
    });
    await response.body?.cancel();
    return response.status;
  } finally {
    client.close();
  }
}

async function secrets(t: RotationTarget): Promise<Map<string, { user: string; token: string; at: string }>> {
  const out = new Map<string, { user: string; token: string; at: string }>();
  for (const sa of SAS) {
    const s = await t.b.kube.ok("GET", `/api/v1/namespaces/${t.namespace}/secrets/${sa}-quay-${t.clusterId}`);
    out.set(sa, { ...credentialsOf(s), at: s.metadata.annotations?.[ROTATED_AT] ?? "" });
  }
  return out;
}

/** Waits until the running operator has finished a pass over the namespace (its outcome is Ready). */
async function passed(t: RotationTarget): Promise<void> {
  await until(
    "a pass over the namespace",
    () => t.b.running?.operator.outcomes.get(t.namespace)?.state === "Ready",
    30_000,
  );
}

/** Runs the scenario; `log` receives the figures worth reporting. */
export async function rotationScenario(
  t: RotationTarget,
  log: (line: string) => void = () => {},
): Promise<void> {
  const { b, namespace: ns, organization: org } = t;
  const repository = `${org}/app`;
  await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams`, {
    metadata: { name: "app" },
  });
  await synced(b, ns, { clusterId: t.clusterId, timeoutMs: 60_000 });
  await until(
    "repository app in Quay",
    async () => (await t.quay.call("GET", `/api/v1/repository/${repository}`)).status === 200,
    30_000,
  );
  const before = await secrets(t);
  const builder = before.get("builder");
  assert.ok(builder?.at, "a new Secret records when its token was issued");
  const pushed = await pushImage({
    registryUrl: t.registryUrl,
    caPem: t.caPem,
    repository,
    tag: "v1",
    username: builder.user,
    password: builder.token,
  });
  for (const [sa, c] of before) assert.equal(await registryAuthStatus(t, repository, c), 200, `${sa} before`);

  // Rotate now, by annotation.
  const started = Date.now();
  await b.kube.ok(
    "PATCH",
    `/api/v1/namespaces/${ns}`,
    { metadata: { annotations: { [ROTATE]: "first" } } },
    "application/merge-patch+json",
  );
  const after = await until("every Secret holds a new token", async () => {
    const now = await secrets(t);
    return [...now].every(([sa, c]) => c.token !== before.get(sa)?.token) ? now : false;
  }, 60_000);
  log(`rotation on request: all three Secrets rewritten in ${Date.now() - started} ms`);
  const robots = (await t.quay.ok("GET", `/api/v1/organization/${org}/robots?token=true`)).robots as {
    name: string;
    token: string;
  }[];
  for (const [sa, c] of after) {
    assert.equal(
      c.token,
      robots.find((r) => r.name === `${org}+${sa}`)?.token,
      `${sa}: the Secret holds Quay's token`,
    );
    assert.equal(
      await registryAuthStatus(t, repository, before.get(sa) ?? c),
      401,
      `${sa}: the old token is refused`,
    );
    assert.equal(await registryAuthStatus(t, repository, c), 200, `${sa}: the new token authenticates`);
    const pulled = await pullManifest({
      registryUrl: t.registryUrl,
      caPem: t.caPem,
      repository,
      reference: "v1",
      username: c.user,
      password: c.token,
    });
    assert.equal(pulled.digest, pushed.digest, `${sa} pulls with the new token`);
  }
  const rotated = await until("an Event naming every rotated robot", async () => {
    // A Namespace is cluster-scoped: its Events live in "default". One Event per pass names each
    // change; a rotation split over passes gives one per pass.
    const events = await b.kube.ok("GET", "/api/v1/events");
    const found = events.items.filter((e: { reason: string; involvedObject: { name: string } }) =>
      e.reason === "CredentialsRotated" && e.involvedObject.name === ns
    ) as { message: string }[];
    const robots = found.flatMap((e) =>
      e.message.split("; ").filter((part) => part.startsWith("Rotated")).map((part) => part.split(" (")[0])
    );
    return robots.length >= 3 ? robots : false;
  });
  assert.deepEqual(rotated.sort(), SAS.map((sa) => `Rotated the token of robot ${org}+${sa}`));

  // A restart rotates nothing: the request is answered and the interval (1h) is not due.
  await b.running?.stop();
  await b.startOperator(t.flags);
  await synced(b, ns, { clusterId: t.clusterId, timeoutMs: 60_000 });
  await passed(t);
  const restarted = await secrets(t);
  for (const [sa, c] of restarted) {
    assert.equal(c.token, after.get(sa)?.token, `${sa} not rotated by the restart`);
  }

  // While the operator is down, the builder's token reaches the interval (by its recorded age): the
  // next process rotates it, and only it.
  await b.running?.stop();
  const due = new Date(Date.now() - 61 * 60_000).toISOString();
  await b.kube.ok(
    "PATCH",
    `/api/v1/namespaces/${ns}/secrets/builder-quay-${t.clusterId}`,
    { metadata: { annotations: { [ROTATED_AT]: due } } },
    "application/merge-patch+json",
  );
  await b.startOperator(t.flags);
  const third = await until("the builder's token rotated by the restarted operator", async () => {
    const now = await secrets(t);
    return now.get("builder")?.token !== after.get("builder")?.token ? now : false;
  }, 60_000);
  await passed(t);
  for (const sa of ["default", "deployer"]) {
    assert.equal(third.get(sa)?.token, after.get(sa)?.token, `${sa} was not due`);
  }
  const renewed = third.get("builder");
  assert.ok(
    renewed && Date.parse(renewed.at) > Date.parse(due),
    "the rotation restarted the builder's clock",
  );
  assert.equal(await registryAuthStatus(t, repository, after.get("builder") ?? renewed), 401);
  assert.equal(await registryAuthStatus(t, repository, renewed), 200);
}
