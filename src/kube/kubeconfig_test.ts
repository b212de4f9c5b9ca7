import assert from "node:assert/strict";
import { stringify } from "yaml";
import { KubeApiError } from "../errors.ts";
import { loadKubeConnection } from "./kubeconfig.ts";

const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

function kubeconfig(overrides: { cluster?: object; user?: object; context?: object } = {}): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": "main",
    clusters: [{ name: "c", cluster: { server: "https://k.example:6443/", ...overrides.cluster } }],
    users: [{ name: "u", user: { token: "t0ken", ...overrides.user } }],
    contexts: [
      { name: "main", context: { cluster: "c", user: "u", namespace: "team", ...overrides.context } },
      { name: "other", context: { cluster: "c", user: "nobody" } },
    ],
  });
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("kubeconfig: server, CA data, token and namespace of the current context", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/config`,
      kubeconfig({ cluster: { "certificate-authority-data": btoa(CA) } }),
    );
    const c = await loadKubeConnection({ kubeconfig: `${dir}/config` });
    assert.equal(c.server, "https://k.example:6443");
    assert.equal(c.caPem, CA);
    assert.equal(await c.authorization(), "Bearer t0ken");
    assert.equal(c.namespace, "team");
    assert.equal(c.inCluster, false);
  });
});

Deno.test("kubeconfig: file references are relative to the kubeconfig; --context selects another", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/sub/ca.crt`, CA);
    await Deno.writeTextFile(`${dir}/sub/cert.pem`, "CERT");
    await Deno.writeTextFile(`${dir}/sub/key.pem`, "KEY");
    await Deno.writeTextFile(
      `${dir}/sub/config`,
      kubeconfig({
        cluster: { "certificate-authority": "ca.crt" },
        user: { token: undefined, "client-certificate": "cert.pem", "client-key": "key.pem" },
      }),
    );
    const c = await loadKubeConnection({ kubeconfig: `${dir}/sub/config` });
    assert.equal(c.caPem, CA);
    assert.equal(c.clientCertPem, "CERT");
    assert.equal(c.clientKeyPem, "KEY");
    assert.equal(await c.authorization(), undefined);
    const other = await loadKubeConnection({ kubeconfig: `${dir}/sub/config`, context: "other" });
    assert.equal(other.namespace, undefined);
    await assert.rejects(
      loadKubeConnection({ kubeconfig: `${dir}/sub/config`, context: "missing" }),
      (e: Error) => e instanceof KubeApiError && /No context "missing"/.test(e.message),
    );
  });
});

Deno.test("kubeconfig: an exec credential plugin gives the token", async () => {
  await withDir(async (dir) => {
    const credential = {
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      status: { token: "from-exec", expirationTimestamp: new Date(Date.now() + 3_600_000).toISOString() },
    };
    await Deno.writeTextFile(
      `${dir}/config`,
      kubeconfig({
        user: {
          token: undefined,
          exec: {
            apiVersion: "client.authentication.k8s.io/v1",
            command: "sh",
            args: ["-c", `echo '${JSON.stringify(credential)}'`],
          },
        },
      }),
    );
    const c = await loadKubeConnection({ kubeconfig: `${dir}/config` });
    assert.equal(await c.authorization(), "Bearer from-exec");
  });
});

Deno.test("kubeconfig: a user's token-file and an auth-provider's tokenFile are read", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/token`, "from-file");
    await Deno.writeTextFile(
      `${dir}/config`,
      kubeconfig({ user: { token: undefined, "token-file": `${dir}/token` } }),
    );
    assert.equal(
      await (await loadKubeConnection({ kubeconfig: `${dir}/config` })).authorization(),
      "Bearer from-file",
    );
    await Deno.writeTextFile(
      `${dir}/provider`,
      kubeconfig({
        user: { token: undefined, "auth-provider": { name: "gcp", config: { tokenFile: `${dir}/token` } } },
      }),
    );
    const c = await loadKubeConnection({ kubeconfig: `${dir}/provider` });
    assert.equal(await c.authorization(), "Bearer from-file");
  });
});

Deno.test("kubeconfig: an entry without its name, cluster or server is named in the error", async () => {
  await withDir(async (dir) => {
    const cases: [object, RegExp][] = [
      [{ clusters: [{ cluster: { server: "https://k" } }] }, /clusters\[0\]\.name is missing/],
      [{ clusters: [{ name: "c" }] }, /clusters\[0\]\.cluster is missing/],
      [{ clusters: [{ name: "c", cluster: {} }] }, /clusters\[0\]\.cluster\.server is missing/],
      [{ users: [{ user: {} }] }, /users\[0\]\.name is missing/],
      [{ contexts: [{ name: "x", context: { user: "u" } }] }, /contexts\[0\]\.context\.cluster is missing/],
    ];
    for (const [document, message] of cases) {
      await Deno.writeTextFile(`${dir}/config`, stringify(document));
      await assert.rejects(loadKubeConnection({ kubeconfig: `${dir}/config` }), message);
    }
  });
});

Deno.test("kubeconfig: several files merge, the first naming the current context wins", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a`, stringify({ users: [{ name: "u", user: { token: "first" } }] }));
    await Deno.writeTextFile(`${dir}/b`, kubeconfig());
    const c = await loadKubeConnection({ kubeconfig: `${dir}/a:${dir}/b` });
    assert.equal(c.server, "https://k.example:6443");
    assert.equal(await c.authorization(), "Bearer first");
  });
});

Deno.test("kubeconfig: clear errors for insecure-skip-tls-verify, auth-providers and missing files", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/insecure`,
      kubeconfig({ cluster: { "insecure-skip-tls-verify": true } }),
    );
    await assert.rejects(loadKubeConnection({ kubeconfig: `${dir}/insecure` }), /insecure-skip-tls-verify/);
    await Deno.writeTextFile(
      `${dir}/oidc`,
      kubeconfig({ user: { token: undefined, "auth-provider": { name: "oidc", config: {} } } }),
    );
    await assert.rejects(loadKubeConnection({ kubeconfig: `${dir}/oidc` }), /auth-provider "oidc"/);
    await assert.rejects(loadKubeConnection({ kubeconfig: `${dir}/absent` }), /Cannot read the kubeconfig/);
    await assert.rejects(
      loadKubeConnection({ environment: { home: dir }, inClusterRoot: dir }),
      /No Kubernetes configuration/,
    );
  });
});

Deno.test("kubeconfig: ~/.kube/config when nothing is named and no pod files exist", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/.kube`);
    await Deno.writeTextFile(`${dir}/.kube/config`, kubeconfig());
    const c = await loadKubeConnection({ environment: { home: dir }, inClusterRoot: dir });
    assert.equal(c.server, "https://k.example:6443");
  });
});

Deno.test("kubeconfig: in a pod, the service-account files and KUBERNETES_SERVICE_HOST", async () => {
  await withDir(async (root) => {
    const dir = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/token`, "sa-token");
    await Deno.writeTextFile(`${dir}/namespace`, "quay-bridge\n");
    await Deno.writeTextFile(`${dir}/ca.crt`, CA);
    const c = await loadKubeConnection({
      inClusterRoot: root,
      environment: { serviceHost: "fd00::1", servicePort: "443" },
    });
    assert.equal(c.server, "https://[fd00::1]:443");
    assert.equal(c.caPem, CA);
    assert.equal(c.namespace, "quay-bridge");
    assert.equal(c.inCluster, true);
    assert.equal(await c.authorization(), "Bearer sa-token");
    await assert.rejects(loadKubeConnection({ inClusterRoot: root }), /KUBERNETES_SERVICE_HOST/);
  });
});
