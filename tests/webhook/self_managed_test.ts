/**
 * Self-managed certificates as deployed in a cluster (the MutatingWebhookConfiguration from
 * deploy/webhook/mwc points at the Service): the leader stores the CA and serving certificate in
 * the Secret and patches the caBundle of the deployed configuration; a follower serves what the
 * Secret holds; the serving certificate is renewed at two thirds of its lifetime and both replicas
 * rotate to it.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { certificateValidity } from "../../src/certs/pki.ts";
import { KubeClient, tokenConnection } from "../../src/kube/client.ts";
import { silentLogger } from "../../src/log.ts";
import { CertificateController } from "../../src/webhook/certificate_controller.ts";
import { SelfManagedCertificates, servingNames } from "../../src/webhook/self_managed.ts";
import { startKubeWorld } from "../world/kube/mod.ts";

const NS = "quay-bridge";

function decode(b64: string): string {
  return new TextDecoder().decode(Uint8Array.fromBase64(b64));
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await check().catch(() => undefined);
    if (v !== undefined && v !== false) return v as T;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("self-managed certificates in a cluster: caBundle patched, follower follows, renewal at 2/3 of life", async () => {
  const world = await startKubeWorld();
  const kube = new KubeClient(tokenConnection(world.url, world.caPem, world.adminToken));
  const controllers: CertificateController[] = [];
  try {
    await kube.create({
      group: "",
      version: "v1",
      plural: "namespaces",
      kind: "Namespace",
      namespaced: false,
    }, {
      metadata: { name: NS },
    });
    const mwc = parse(
      await Deno.readTextFile(
        new URL("../../deploy/webhook/mwc/mutatingwebhookconfiguration.yaml", import.meta.url),
      ),
    );
    await kube.raw("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", mwc);

    const names = servingNames({ serviceName: "quay-bridge-webhook", namespace: NS, outsideCluster: false });
    assert.deepEqual(names.ipAddresses, []);
    assert.ok(names.dnsNames.includes("quay-bridge-webhook.quay-bridge.svc"));
    assert.ok(names.dnsNames.includes("quay-bridge-webhook.quay-bridge.svc.cluster.local"));
    const make = (leader: boolean) =>
      new SelfManagedCertificates({
        kube,
        logger: silentLogger,
        namespace: NS,
        secretName: "quay-bridge-webhook-certs",
        configName: "quay-bridge",
        names,
        isLeader: () => leader,
        servingValidityMs: 3_000,
        checkIntervalMs: 200,
      });
    const follower = make(false);
    const leader = make(true);
    const served = { leader: [] as string[], follower: [] as string[] };
    const followerInitial = await follower.initial();
    const leaderInitial = await leader.initial();
    assert.notEqual(followerInitial.ca.certPem, leaderInitial.ca.certPem, "no Secret yet: each has its own");
    leader.serveWith((cert) => Promise.resolve(void served.leader.push(cert)));
    follower.serveWith((cert) => Promise.resolve(void served.follower.push(cert)));
    for (const certificates of [leader, follower]) {
      const controller = new CertificateController(certificates, { logger: silentLogger });
      controllers.push(controller);
      controller.start();
    }

    const secretPath = `/api/v1/namespaces/${NS}/secrets/quay-bridge-webhook-certs`;
    const mwcPath = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/quay-bridge";
    // deno-lint-ignore no-explicit-any
    const secret = await until("Secret", () => kube.raw("GET", secretPath) as Promise<any>);
    const ca = decode(secret.data["ca.crt"]);
    assert.equal(ca, leaderInitial.ca.certPem, "the leader stored the pair it was already serving");
    await until("caBundle", async () => {
      // deno-lint-ignore no-explicit-any
      const got = await kube.raw("GET", mwcPath) as any;
      return got.webhooks.every((w: { clientConfig: { caBundle?: string } }) =>
        w.clientConfig.caBundle && decode(w.clientConfig.caBundle) === ca
      );
    });
    // deno-lint-ignore no-explicit-any
    const stored = await kube.raw("GET", mwcPath) as any;
    assert.equal(stored.webhooks[0].clientConfig.service.name, "quay-bridge-webhook", "the Service is kept");
    await until("follower adopts the Secret", () => Promise.resolve(follower.current?.ca.certPem === ca));

    // Renewal at 2/3 of 3 s: a new serving certificate under the same CA, served by both.
    const first = decode(secret.data["tls.crt"]);
    const renewed = await until("renewal", async () => {
      // deno-lint-ignore no-explicit-any
      const s = await kube.raw("GET", secretPath) as any;
      const tls = decode(s.data["tls.crt"]);
      return tls !== first ? s : undefined;
    });
    assert.equal(decode(renewed.data["ca.crt"]), ca);
    const tls = decode(renewed.data["tls.crt"]);
    const v = certificateValidity(tls);
    assert.ok(v.notAfter.getTime() - v.notBefore.getTime() <= 4_000);
    await until(
      "both serve the renewed certificate",
      () => Promise.resolve(served.leader.includes(tls) && served.follower.includes(tls)),
    );
  } finally {
    await Promise.all(controllers.map((c) => c.shutdown(1_000)));
    kube.close();
    await world.close();
  }
});
