/**
 * The operator behind a real HTTP CONNECT proxy (tinyproxy, see `tinyproxy.ts`) that alone resolves
 * the Quay host name of the QuayIntegration and the API server's name in the operator's kubeconfig:
 * the seed walkthrough passes through it (the proxy's log counts the tunnels), `quay-bridge check`
 * names the proxy, with `NO_PROXY` matching the Quay host the operator connects directly (and so
 * cannot resolve the name), and an unreachable proxy gives `QuayUnreachable` naming the proxy but
 * never its credentials.
 */
import assert from "node:assert/strict";
import { startWorld, type World } from "../world/mod.ts";
import { runWalkthrough, type StepResult } from "../walkthrough/mod.ts";
import { openShiftActions } from "../walkthrough/openshift_actions.ts";
import { installCrds, installIntegration, installRbac, jsonClient } from "../walkthrough/setup.ts";
import { OPERATOR_SERVICE_ACCOUNT } from "../walkthrough/setup.ts";
import { freePort, type OperatorProcess, runCli, startOperatorProcess } from "./process.ts";
import { startTinyproxy, type Tinyproxy } from "./tinyproxy.ts";
import { startQuayWorld } from "../world/quay/mod.ts";
import { ProxyResolver } from "../../src/http/proxy.ts";
import { QuayClient } from "../../src/quay/client.ts";
import type { QuayApiError } from "../../src/errors.ts";
import { createFetchTransport, createInsecureTransport, TransportError } from "../../src/http/transport.ts";

/** Resolvable only by the proxies (`.test` is reserved: no DNS server knows it). */
const QUAY_NAME = "quay.proxy-only.test";
/** A name in the test API server's certificate that this machine does not resolve. */
const KUBE_NAME = "kubernetes.default.svc";
const NAMESPACE = "quay-bridge";

function say(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text + "\n"));
}

interface QuayCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

async function quayReachable(kube: ReturnType<typeof jsonClient>): Promise<QuayCondition | undefined> {
  const qi = await kube.call("GET", "/apis/quay.redhat.com/v1/quayintegrations/quay");
  return (qi.body?.status?.conditions as QuayCondition[] | undefined)?.find((c) =>
    c.type === "QuayReachable"
  );
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function operatorFlags(kubeconfig: string): string[] {
  return [
    "--kubeconfig",
    kubeconfig,
    "--namespace",
    NAMESPACE,
    "--webhook-mode",
    "self-managed",
    "--webhook-host",
    "127.0.0.1",
    "--webhook-port",
    String(freePort()),
    "--ops-port",
    "0",
    "--leader-elect",
    "false",
  ];
}

async function stop(operator: OperatorProcess | undefined): Promise<void> {
  if (!operator) return;
  operator.kill("SIGTERM");
  await operator.status;
}

Deno.test("the walkthrough through a real CONNECT proxy; NO_PROXY goes direct; an unreachable proxy is named", async () => {
  const previous = { https: Deno.env.get("HTTPS_PROXY"), no: Deno.env.get("NO_PROXY") };
  let operatorProxy: Tinyproxy | undefined;
  let worldProxy: Tinyproxy | undefined;
  let world: World | undefined;
  let operator: OperatorProcess | undefined;
  const closers: (() => void)[] = [];
  try {
    // Two proxies: one for the operator (its tunnels are what this test counts), one for the test
    // world's OpenShift behaviours (builds pushing, imports, pulls), which must reach Quay by the
    // same proxy-only name the operator gives them.
    operatorProxy = await startTinyproxy([QUAY_NAME, KUBE_NAME]);
    worldProxy = await startTinyproxy([QUAY_NAME]);
    world = await startWorld({ quay: { dnsNames: [QUAY_NAME] } });
    const quayPort = new URL(world.quayUrl).port;
    const quayAuthority = `${QUAY_NAME}:${quayPort}`;
    const quayUrl = `https://${quayAuthority}`;
    const kubePort = new URL(world.kubeUrl).port;
    const kubeAuthority = `${KUBE_NAME}:${kubePort}`;
    // Deno's fetch in this process (the world) follows the environment's proxy variables.
    Deno.env.set("HTTPS_PROXY", worldProxy.url);
    Deno.env.set("NO_PROXY", "localhost,127.0.0.1");

    const kube = jsonClient(world.kubeUrl, world.adminToken, world.kubeCaPem);
    const quay = jsonClient(world.quayUrl, world.quayToken, world.quayCaPem);
    closers.push(() => kube.close(), () => quay.close());
    await installCrds(kube);
    await installIntegration(kube, {
      operatorNamespace: NAMESPACE,
      quayUrl,
      quayToken: world.quayToken,
      quayCaPem: world.quayCaPem,
    });
    await installRbac(kube);
    const directKubeconfig = await world.serviceAccountKubeconfig(NAMESPACE, OPERATOR_SERVICE_ACCOUNT);
    // The operator reaches the API server by a name only its proxy resolves, too.
    const proxiedKubeconfig = `${world.dir}/proxied-kubeconfig`;
    await Deno.writeTextFile(
      proxiedKubeconfig,
      (await Deno.readTextFile(directKubeconfig)).replaceAll(world.kubeUrl, `https://${kubeAuthority}`),
    );

    // 1. Through the proxy: the walkthrough passes.
    const proxyEnv = { HTTPS_PROXY: operatorProxy.url, NO_PROXY: "localhost,127.0.0.1" };
    operator = startOperatorProcess(operatorFlags(proxiedKubeconfig), proxyEnv);
    const reachable = await until("QuayReachable=True through the proxy", 60_000, async () => {
      const c = await quayReachable(kube);
      return c?.status === "True" ? c : undefined;
    });
    assert.equal(reachable.reason, "Reachable");
    const actions = openShiftActions({
      kubeUrl: world.kubeUrl,
      kubeToken: world.adminToken,
      kubeCaPem: world.kubeCaPem,
      quayCaPem: world.quayCaPem,
    });
    closers.push(() => actions.close());
    const steps: StepResult[] = [];
    const passed = await runWalkthrough(
      { kube, quay, registryHost: quayAuthority, ...actions },
      (step) => steps.push(step),
    );
    assert.ok(
      passed,
      steps.filter((s) => !s.ok).map((s) => `${s.title}: ${s.detail}`).join("\n") +
        `\noperator:\n${operator.lines.slice(-20).join("\n")}`,
    );
    const quayTunnels = await operatorProxy.tunnels(quayAuthority);
    const kubeTunnels = await operatorProxy.tunnels(kubeAuthority);
    say(
      `proxy log: ${quayTunnels} CONNECT tunnels to ${quayAuthority} and ${kubeTunnels} to ${kubeAuthority} ` +
        `from the operator; ${await worldProxy.tunnels(quayAuthority)} from the test world's OpenShift`,
    );
    assert.ok(quayTunnels > 0, "no tunnel to Quay in the proxy's log");
    assert.ok(kubeTunnels > 0, "no tunnel to the API server in the proxy's log");
    const other = (await operatorProxy.connects()).filter(
      (c) => c !== `CONNECT ${quayAuthority}` && c !== `CONNECT ${kubeAuthority}`,
    );
    assert.deepEqual(other, [], "the operator tunnelled somewhere else");

    // `check` names the proxy for the QuayIntegration and reaches Quay through it.
    const check = await runCli(
      ["check", "--kubeconfig", proxiedKubeconfig, "--namespace", NAMESPACE],
      proxyEnv,
    );
    assert.match(
      check.stdout,
      new RegExp(
        `✓ QuayIntegration quay .*connection to ${quayUrl} — through the proxy ${operatorProxy.url}`,
      ),
      check.stdout + check.stderr,
    );
    assert.match(check.stdout, new RegExp(`✓ QuayIntegration quay .*: Quay reachable at ${quayUrl}`));
    await stop(operator);
    operator = undefined;

    // 2. NO_PROXY matches the Quay host: the operator connects directly, so the proxy-only name
    //    does not resolve and no new tunnel appears.
    const before = await operatorProxy.tunnels(quayAuthority);
    operator = startOperatorProcess(operatorFlags(directKubeconfig), {
      HTTPS_PROXY: operatorProxy.url,
      NO_PROXY: "localhost,127.0.0.1,.proxy-only.test",
    });
    const direct = await until("QuayReachable=False without the proxy", 60_000, async () => {
      const c = await quayReachable(kube);
      return c?.status === "False" ? c : undefined;
    });
    assert.equal(direct.reason, "QuayUnreachable");
    assert.doesNotMatch(direct.message, /through the proxy/);
    assert.match(direct.message, /dns|lookup|resolve|name/i, direct.message);
    assert.equal(await operatorProxy.tunnels(quayAuthority), before, "a tunnel despite NO_PROXY");
    say(`NO_PROXY=.proxy-only.test: direct, ${direct.reason}: ${direct.message}`);
    await stop(operator);

    // 3. An unreachable proxy with credentials: QuayUnreachable names the proxy, never the password.
    const deadPort = freePort();
    operator = startOperatorProcess(operatorFlags(directKubeconfig), {
      HTTPS_PROXY: `http://proxyuser:s3cr3t-pw@127.0.0.1:${deadPort}`,
      NO_PROXY: "localhost,127.0.0.1",
    });
    const dead = await until("QuayReachable=False naming the proxy", 60_000, async () => {
      const c = await quayReachable(kube);
      return c?.status === "False" && c.message.includes(`127.0.0.1:${deadPort}`) ? c : undefined;
    });
    assert.equal(dead.reason, "QuayUnreachable");
    assert.match(dead.message, new RegExp(`through the proxy http://127\\.0\\.0\\.1:${deadPort}`));
    say(`unreachable proxy: ${dead.reason}: ${dead.message}`);
    await stop(operator);
    const qi = await kube.call("GET", "/apis/quay.redhat.com/v1/quayintegrations/quay");
    assert.ok(!JSON.stringify(qi.body).includes("s3cr3t-pw"), "the proxy password reached the status");
    assert.ok(!operator.lines.join("\n").includes("s3cr3t-pw"), "the proxy password reached the log");
    operator = undefined;
  } finally {
    await stop(operator);
    for (const close of closers) close();
    await world?.close();
    await operatorProxy?.close();
    await worldProxy?.close();
    for (const [name, value] of [["HTTPS_PROXY", previous.https], ["NO_PROXY", previous.no]] as const) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
});

Deno.test("API and registry requests through the proxy: with a caBundle, and with insecureRegistry", async () => {
  // The proxy demands credentials: both transports must send the ones in HTTPS_PROXY.
  const proxy = await startTinyproxy([QUAY_NAME], { user: "bridge", password: "pw" });
  const quayWorld = await startQuayWorld({ dnsNames: [QUAY_NAME] });
  const authority = `${QUAY_NAME}:${new URL(quayWorld.url).port}`;
  const resolver = new ProxyResolver({ httpsProxy: `http://bridge:pw@127.0.0.1:${proxy.port}` });
  const transports = {
    caBundle: createFetchTransport({ caCerts: [quayWorld.caPem], proxy: resolver }),
    insecure: createInsecureTransport({ proxy: resolver }),
  };
  try {
    for (const [name, transport] of Object.entries(transports)) {
      const before = await proxy.tunnels(authority);
      for (const path of ["/api/v1/user/", "/v2/"]) {
        const response = await transport.send({
          method: "GET",
          url: `https://${authority}${path}`,
          headers: { Authorization: `Bearer ${quayWorld.adminToken}`, Accept: "application/json" },
          signal: AbortSignal.timeout(10_000),
        });
        // /v2/ answers 401 with a bearer challenge to an OAuth token: Quay answered either way.
        assert.ok(
          [200, 401].includes(response.status),
          `${name} ${path}: ${response.status} ${response.text}`,
        );
        if (path === "/api/v1/user/") assert.equal(JSON.parse(response.text).username, "quayadmin");
      }
      const tunnels = (await proxy.tunnels(authority)) - before;
      say(`${name}: ${tunnels} CONNECT tunnel(s) to ${authority} for an API and a registry request`);
      assert.ok(tunnels >= 1, `${name}: no tunnel`);
    }
    // Without the proxy the name does not resolve here: the requests above could only go through it.
    const direct = createFetchTransport({ caCerts: [quayWorld.caPem], proxy: new ProxyResolver() });
    await assert.rejects(
      direct.send({
        method: "GET",
        url: `https://${authority}/v2/`,
        headers: {},
        signal: AbortSignal.timeout(10_000),
      }),
      /dns|lookup|resolve/i,
    );
    direct.close();
    // Wrong credentials: the proxy refuses the tunnel, and the error names the proxy, not the password.
    const wrong = createInsecureTransport({
      proxy: new ProxyResolver({ httpsProxy: `http://bridge:nope@127.0.0.1:${proxy.port}` }),
    });
    await assert.rejects(
      wrong.send({
        method: "GET",
        url: `https://${authority}/v2/`,
        headers: {},
        signal: AbortSignal.timeout(10_000),
      }),
      (error: Error) =>
        error.message.includes(`through the proxy http://127.0.0.1:${proxy.port}`) &&
        / 40[17] /.test(error.message) &&
        !error.message.includes("nope"),
    );
    wrong.close();
    // A proxy that accepts and never answers: the deadline expires, and the error still names it.
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of silent) held.push(conn);
    })();
    const silentUrl = `http://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`;
    for (const make of [createFetchTransport, createInsecureTransport]) {
      const t = make({ proxy: new ProxyResolver({ httpsProxy: silentUrl }) });
      await assert.rejects(
        t.send({
          method: "GET",
          url: `https://${authority}/v2/`,
          headers: {},
          signal: AbortSignal.timeout(500),
        }),
        (error: TransportError) => error.timedOut && error.proxy === silentUrl,
      );
      t.close();
    }
    // The Quay client's QuayUnreachable after the deadline names the silent proxy too.
    const transport = createFetchTransport({ proxy: new ProxyResolver({ httpsProxy: silentUrl }) });
    const client = new QuayClient({
      baseUrl: `https://${authority}`,
      token: () => quayWorld.adminToken,
      timeoutMs: 300,
      maxAttempts: 1,
      transport,
    });
    await assert.rejects(
      client.getUser(),
      (error: QuayApiError) =>
        error.reason === "QuayUnreachable" && error.message.includes(`through the proxy ${silentUrl}`),
    );
    transport.close();
    silent.close();
    for (const conn of held) conn.close();
    await accepting.catch(() => {});
  } finally {
    for (const t of Object.values(transports)) t.close();
    await quayWorld.close();
    await proxy.close();
  }
});
