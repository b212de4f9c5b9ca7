/**
 * The real kubectl (a subprocess with its own kubeconfig and cache dir) against the world: the
 * commands a person uses on a cluster behave as they would there.
 */
import assert from "node:assert/strict";
import { Kubectl, withWorld } from "./test_helpers.ts";

const DEPLOY = new URL("../../../deploy/", import.meta.url).pathname;

Deno.test("kubectl creates, reads, patches and deletes core objects", async () => {
  await withWorld({}, async ({ world }) => {
    const kubectl = await Kubectl.create(world);
    try {
      const ok = async (args: string[], stdin?: string) => {
        const r = await kubectl.run(args, { stdin });
        assert.equal(r.code, 0, `kubectl ${args.join(" ")} failed: ${r.stderr}`);
        return r.stdout;
      };
      assert.match(await ok(["create", "namespace", "team-a"]), /namespace\/team-a created/);
      assert.match(
        await ok(["-n", "team-a", "create", "configmap", "settings", "--from-literal=a=1"]),
        /created/,
      );
      assert.match(
        await ok(["-n", "team-a", "create", "secret", "generic", "token", "--from-literal=t=s3cr3t"]),
        /created/,
      );
      assert.match(await ok(["-n", "team-a", "create", "serviceaccount", "builder"]), /created/);
      const manifest = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: deployer
  namespace: team-a
secrets:
- name: one
`;
      assert.match(await ok(["create", "-f", "-"], manifest), /serviceaccount\/deployer created/);

      const table = await ok(["get", "namespaces"]);
      assert.match(table, /^NAME\s+STATUS\s+AGE/);
      assert.match(table, /team-a\s+Active/);
      assert.match(await ok(["-n", "team-a", "get", "secrets"]), /token\s+Opaque\s+1/);
      assert.equal(
        await ok(["-n", "team-a", "get", "secret", "token", "-o", "jsonpath={.data.t}"]),
        btoa("s3cr3t"),
      );

      // The three patch types kubectl offers.
      await ok(["-n", "team-a", "patch", "serviceaccount", "deployer", "-p", '{"secrets":[{"name":"two"}]}']);
      assert.equal(
        await ok(["-n", "team-a", "get", "sa", "deployer", "-o", "jsonpath={.secrets[*].name}"]),
        "one two",
        "a strategic merge patch merges serviceaccount secrets by name",
      );
      await ok([
        "-n",
        "team-a",
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        '{"data":{"b":"2","a":null}}',
      ]);
      await ok([
        "-n",
        "team-a",
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        '[{"op":"add","path":"/data/c","value":"3"}]',
      ]);
      assert.equal(
        await ok(["-n", "team-a", "get", "cm", "settings", "-o", "jsonpath={.data}"]),
        '{"b":"2","c":"3"}',
      );

      assert.match(
        await ok(["-n", "team-a", "delete", "configmap", "settings"]),
        /configmap "settings" deleted/,
      );
      const gone = await kubectl.run(["-n", "team-a", "get", "configmap", "settings"]);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /Error from server \(NotFound\): configmaps "settings" not found/);
      assert.match(await ok(["delete", "namespace", "team-a"]), /namespace "team-a" deleted/);
      const nsGone = await kubectl.run(["get", "namespace", "team-a"]);
      assert.match(nsGone.stderr, /namespaces "team-a" not found/);
    } finally {
      await kubectl.cleanup();
    }
  });
});

Deno.test("kubectl applies manifests client-side and server-side, and takes over with --server-side", async () => {
  await withWorld({}, async ({ world }) => {
    const kubectl = await Kubectl.create(world);
    try {
      const apply = async (yaml: string, ...flags: string[]) => {
        const r = await kubectl.run(["apply", "-f", "-", ...flags], { stdin: yaml });
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      };
      const config = (data: string) =>
        `apiVersion: v1
kind: ConfigMap
metadata:
  name: app
  namespace: default
data:
${data}`;
      assert.match(await apply(config("  a: '1'\n  b: '2'\n")), /configmap\/app created/);
      assert.match(await apply(config("  a: '1'\n  b: '2'\n")), /configmap\/app unchanged/);
      assert.match(await apply(config("  a: '1'\n")), /configmap\/app configured/);
      assert.equal((await kubectl.run(["get", "cm", "app", "-o", "jsonpath={.data}"])).stdout, '{"a":"1"}');

      // Server-side apply takes over from client-side apply without conflicts, then prunes what it stopped applying.
      assert.match(await apply(config("  a: '9'\n  z: '0'\n"), "--server-side"), /serverside-applied/);
      assert.match(await apply(config("  z: '0'\n"), "--server-side"), /serverside-applied/);
      assert.equal((await kubectl.run(["get", "cm", "app", "-o", "jsonpath={.data}"])).stdout, '{"z":"0"}');

      // Another manager changing a field kubectl owns conflicts unless forced.
      const other = await kubectl.run(["apply", "-f", "-", "--server-side", "--field-manager=other"], {
        stdin: config("  z: '1'\n"),
      });
      assert.equal(other.code, 1);
      assert.match(other.stderr, /Apply failed with 1 conflict: conflict with "kubectl" using v1: \.data\.z/);
      const forced = await kubectl.run([
        "apply",
        "-f",
        "-",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
      ], {
        stdin: config("  z: '1'\n"),
      });
      assert.equal(forced.code, 0, forced.stderr);
      const managers = await kubectl.run([
        "get",
        "cm",
        "app",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
        "--show-managed-fields",
      ]);
      assert.match(managers.stdout, /other/);
    } finally {
      await kubectl.cleanup();
    }
  });
});

Deno.test("kubectl applies deploy/ and shows a custom resource with its printer columns", async () => {
  await withWorld({}, async ({ world }) => {
    const kubectl = await Kubectl.create(world);
    try {
      const applied = await kubectl.run([
        "apply",
        "-f",
        `${DEPLOY}namespace.yaml`,
        "-f",
        `${DEPLOY}crds/`,
        "-f",
        `${DEPLOY}rbac/`,
      ]);
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(
        applied.stdout,
        /customresourcedefinition.apiextensions.k8s.io\/quayintegrations.quay.redhat.com created/,
      );
      const cr = `apiVersion: quay.redhat.com/v1
kind: QuayIntegration
metadata:
  name: example
spec:
  quayHostname: https://quay.example.com
  credentialsSecret: {namespace: quay-bridge, name: quay-token}
`;
      const created = await kubectl.run(["apply", "-f", "-"], { stdin: cr });
      assert.equal(created.code, 0, created.stderr);
      const table = await kubectl.run(["get", "qi"]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^NAME\s+QUAY\s+READY\s+NAMESPACES\s+AGE/);
      assert.match(table.stdout, /example\s+https:\/\/quay\.example\.com/);
      const defaulted = await kubectl.run([
        "get",
        "quayintegration",
        "example",
        "-o",
        "jsonpath={.spec.clusterID}/{.spec.credentialsSecret.key}",
      ]);
      assert.equal(defaulted.stdout, "openshift/token");

      const invalid = await kubectl.run(["apply", "-f", "-"], {
        stdin: cr.replace("quayHostname: https://quay.example.com\n", "clusterID: Bad_ID!\n"),
      });
      assert.equal(invalid.code, 1);
      assert.match(invalid.stderr, /spec\.quayHostname: Required value/);
      assert.match(
        invalid.stderr,
        /spec\.clusterID: Invalid value: "Bad_ID!": spec\.clusterID in body should match/,
      );

      const resources = await kubectl.run(["api-resources"]);
      assert.equal(resources.code, 0, resources.stderr);
      assert.match(
        resources.stdout,
        /quayintegrations\s+qi\s+quay\.redhat\.com\/v1\s+false\s+QuayIntegration/,
      );
      assert.match(resources.stdout, /imagestreams\s+is\s+image\.openshift\.io\/v1\s+true\s+ImageStream/);
      assert.match(resources.stdout, /leases\s+coordination\.k8s\.io\/v1\s+true\s+Lease/);
    } finally {
      await kubectl.cleanup();
    }
  });
});

Deno.test("kubectl get -w sees an object change", async () => {
  await withWorld({}, async ({ world, request }) => {
    const kubectl = await Kubectl.create(world);
    const child = kubectl.spawn(["-n", "default", "get", "configmaps", "-w", "--output-watch-events"]);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    try {
      const until = async (pattern: RegExp) => {
        while (!pattern.test(seen)) {
          const chunk = await reader.read();
          if (chunk.done) throw new Error(`kubectl ended before ${pattern}: ${seen}`);
          seen += chunk.value;
        }
      };
      // The first list comes back empty; create once the watch is open.
      await new Promise((r) => setTimeout(r, 300));
      await request("POST", "/api/v1/namespaces/default/configmaps", {
        body: { metadata: { name: "watched" }, data: { a: "1" } },
      });
      await until(/ADDED\s+watched\s+1/);
      await request("PATCH", "/api/v1/namespaces/default/configmaps/watched", {
        body: { data: { b: "2" } },
        contentType: "application/merge-patch+json",
      });
      await until(/MODIFIED\s+watched\s+2/);
      await request("DELETE", "/api/v1/namespaces/default/configmaps/watched");
      await until(/DELETED\s+watched/);
    } finally {
      clearTimeout(timer);
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await reader.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status;
      await kubectl.cleanup();
    }
  });
});

Deno.test("kubectl auth can-i says yes and no for a restricted service account token", async () => {
  await withWorld({}, async ({ world }) => {
    const token = "restricted-token-0123456789";
    world.addToken(token, { user: "system:serviceaccount:team-b:robot" });
    const kubectl = await Kubectl.create(world);
    try {
      const setup = await kubectl.run(["apply", "-f", "-"], {
        stdin: `apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-cm, namespace: team-b}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: robot-read-cm, namespace: team-b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-cm}
subjects:
- {kind: ServiceAccount, name: robot, namespace: team-b}
`,
      });
      assert.equal(setup.code, 0, setup.stderr);
      const yes = await kubectl.run(["auth", "can-i", "list", "configmaps", "-n", "team-b"], { token });
      assert.equal(yes.stdout.trim(), "yes");
      const no = await kubectl.run(["auth", "can-i", "delete", "configmaps", "-n", "team-b"], { token });
      assert.equal(no.stdout.trim(), "no");
      assert.equal(no.code, 1);
      const elsewhere = await kubectl.run(["auth", "can-i", "list", "configmaps", "-n", "default"], {
        token,
      });
      assert.equal(elsewhere.stdout.trim(), "no");
      const denied = await kubectl.run(["get", "secrets", "-n", "team-b"], { token });
      assert.match(
        denied.stderr,
        /secrets is forbidden: User "system:serviceaccount:team-b:robot" cannot list resource "secrets" in API group "" in the namespace "team-b"/,
      );
      const asAdmin = await kubectl.run(["auth", "can-i", "delete", "namespaces"]);
      assert.equal(asAdmin.stdout.trim(), "yes");
    } finally {
      await kubectl.cleanup();
    }
  });
});
