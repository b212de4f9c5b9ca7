/**
 * In a pod the operator finds its service-account files and the API server from the environment,
 * with only the permissions of the `run` task and the Containerfile (no --allow-sys): client-node's
 * own detection needs --allow-sys=uid under Deno and silently fell back to http://localhost:8080.
 */
import assert from "node:assert/strict";

Deno.test("the in-cluster configuration loads with the run task's permissions", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/token`, "in-cluster-token");
    await Deno.writeTextFile(`${dir}/namespace`, "quay-bridge");
    await Deno.writeTextFile(`${dir}/ca.crt`, "");
    const script = `${root}/probe.ts`;
    const client = new URL("../../src/kube/client.ts", import.meta.url).href;
    const quiet = new URL("../../src/quiet_deprecations.ts", import.meta.url).href;
    const configModule = new URL("../../src/config.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import "${quiet}";\nimport { loadKubeConnection } from "${client}";\n` +
        `import { parseConfig } from "${configModule}";\n` +
        `const config = parseConfig({ args: ["run"], env: (name) => Deno.env.get(name) });\n` +
        `const c = await loadKubeConnection({ kubeconfig: config.kubeconfig, context: config.context, ` +
        `environment: config.kubeEnvironment, inClusterRoot: ${JSON.stringify(root)} });\n` +
        `Deno.stdout.writeSync(new TextEncoder().encode(\`\${c.server} \${await c.authorization()} \${c.inCluster}\`));\n`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        "--unstable-net",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        script,
      ],
      cwd: new URL("../../", import.meta.url).pathname,
      env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.equal(stdout, "https://10.96.0.1:443 Bearer in-cluster-token true");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
