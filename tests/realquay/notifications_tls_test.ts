/**
 * @module
 * Quay push notifications delivered by the real Quay over HTTPS, straight to the operator's webhook
 * server as an admin deploys it: `--webhook-mode files` serving a certificate for 127.0.0.2 issued by
 * a CA in Quay's trust bundle (`REQUESTS_CA_BUNDLE`, set by `start.sh`; see `notificationCa`). Shows:
 *
 * - each of five pushes made with the builder robot's credentials becomes the ImageStream's tag, and
 *   prints where the time goes: push → Quay's delivery (its worker polls every 10 s), delivery →
 *   import done (our side), import → tag seen;
 * - once the server's certificate is one Quay's bundle does not hold (the cert dir rewritten with a
 *   certificate from another CA, reloaded by the server), Quay refuses to deliver: the notification's
 *   `number_of_failures` rises, its worker logs the verification failure, nothing reaches the
 *   receiver and nothing is imported; with the trusted certificate back, Quay's retry of that event
 *   arrives and the tag is imported.
 *
 * The operator runs on the test world's Kubernetes and OpenShift behaviours (imports pull from the
 * real Quay); Quay refuses webhook hosts localhost and 127.0.0.1, hence 127.0.0.2.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createCertificateAuthority, issueServingCertificate, type KeyPair } from "../../src/certs/pki.ts";
import { startBridge, synced, until } from "../integration/harness.ts";
import { freePort } from "../cli/process.ts";
import { pushImage } from "../world/quay/registry_client.ts";
import { notificationCa, startRealQuay } from "./mod.ts";
import { integrateRealQuay, openShiftForRealQuay } from "./bridge.ts";

const PUSHES = 5;
const HOST = "127.0.0.2";

/** Writes a pair as a `kubernetes.io/tls` Secret volume holds it; each file replaced whole. */
async function writePair(dir: string, pair: KeyPair): Promise<void> {
  for (const [name, pem] of [["tls.key", pair.keyPem], ["tls.crt", pair.certPem]] as const) {
    await Deno.writeTextFile(join(dir, `.${name}.tmp`), pem);
    await Deno.rename(join(dir, `.${name}.tmp`), join(dir, name));
  }
}

function quantiles(values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
  return `min ${s[0]} / median ${at(0.5)} / max ${s[s.length - 1]} ms (n=${s.length}: ${values.join(", ")})`;
}

Deno.test({
  name:
    "real Quay over HTTPS: pushes imported through a receiver whose certificate Quay trusts; an untrusted certificate gets no delivery",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const real = await startRealQuay();
    const trustedCa = await notificationCa(real);
    const quay = async (method: string, path: string) =>
      (await real.api(method, path)).json as Record<string, never>;
    const certDir = await Deno.makeTempDir({ prefix: "quay-bridge-notify-tls-" });
    await writePair(
      certDir,
      await issueServingCertificate(trustedCa, { commonName: HOST, ipAddresses: [HOST] }),
    );
    const clusterId = `qbt${crypto.randomUUID().slice(0, 8)}`;
    const ns = "team-tls";
    const org = `${clusterId}_${ns}`;
    const port = freePort();
    const notifyBase = `https://${HOST}:${port}`;
    const tags = Array.from({ length: PUSHES + 1 }, (_, i) => `v${i + 1}`);

    const b = await startBridge({
      integration: false,
      start: false,
      flags: [
        "--webhook-mode",
        "files",
        "--webhook-cert-dir",
        certDir,
        "--webhook-host",
        HOST,
        "--webhook-port",
        String(port),
        // The audit log imports pushes too (audit_push_test.ts): off, so the delivery is what imports.
        "--audit-interval",
        "0",
      ],
    });
    const openshift = openShiftForRealQuay(b, real);
    const logged = (msg: string, match: (line: Record<string, unknown>) => boolean) =>
      b.logs.find((l) => l.msg === msg && match(l));
    const at = (line: Record<string, unknown> | undefined) => Date.parse(String(line?.time));
    const imageOf = async (tag: string) => {
      const is = await b.kube.ok("GET", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams/app`);
      return (is.status?.tags ?? []).find((t: { tag: string }) => t.tag === tag)?.items?.[0]?.image as
        | string
        | undefined;
    };
    try {
      await integrateRealQuay(b, real, {
        clusterId,
        namespaces: [ns],
        spec: { notifications: { url: notifyBase } },
      });
      await b.createProject(ns);
      await synced(b, ns, { clusterId, timeoutMs: 60_000 });
      await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams`, {
        metadata: { name: "app" },
        spec: { tags: tags.map((name) => ({ name })) },
      });
      type N = { uuid: string; title: string; number_of_failures: number; config: { url: string } };
      const ours = async () =>
        ((await quay("GET", `/api/v1/repository/${org}/app/notification/`))?.notifications as
          | N[]
          | undefined ?? [])
          .filter((n) => n.title === "quay-bridge:quay");
      const notification = await until("the notification in the real Quay", async () => {
        const list = await ours();
        return list.length === 1 ? list[0] : undefined;
      }, 30_000);
      assert.ok(notification.config.url.startsWith(`${notifyBase}/quay-notifications/quay/${org}/app/`));
      const robot = (await real.api("GET", `/api/v1/organization/${org}/robots/builder`)).json as {
        name: string;
        token: string;
      };
      const push = (tag: string) =>
        pushImage({
          registryUrl: real.url,
          caPem: real.caPem,
          repository: `${org}/app`,
          tag,
          username: robot.name,
          password: robot.token,
        });

      // Five pushes, one at a time, each followed to its tag.
      const toDelivery: number[] = [];
      const deliveryToImported: number[] = [];
      const importedToSeen: number[] = [];
      const pushToSeen: number[] = [];
      for (const tag of tags.slice(0, PUSHES)) {
        const pushed = await push(tag);
        const pushedAt = Date.now();
        await until(`${tag} imported over HTTPS`, async () => (await imageOf(tag)) === pushed.digest, 60_000);
        const seenAt = Date.now();
        const delivered = logged("notification queued imports", (l) => (l.tags as string[]).includes(tag));
        assert.ok(delivered, `Quay's delivery of the push of ${tag} reached the receiver`);
        // The tag can be seen before the operator has read the import's answer and logged it.
        const imported = await until(
          `the import of ${tag} logged`,
          () => logged("image imported after push", (l) => l.tag === `${ns}/app:${tag}`),
          5_000,
        );
        toDelivery.push(at(delivered) - pushedAt);
        deliveryToImported.push(at(imported) - at(delivered));
        importedToSeen.push(seenAt - at(imported));
        pushToSeen.push(seenAt - pushedAt);
      }
      Deno.stdout.writeSync(new TextEncoder().encode(
        `real Quay over HTTPS, ${PUSHES} pushes:\n` +
          `  push -> Quay's delivery (its worker polls every 10 s): ${quantiles(toDelivery)}\n` +
          `  delivery -> import done (the receiver, the queue, the ImageStreamImport pulling from Quay): ${
            quantiles(deliveryToImported)
          }\n` +
          `  import done -> tag seen by the test (polling): ${quantiles(importedToSeen)}\n` +
          `  push -> tag seen: ${quantiles(pushToSeen)}\n`,
      ));
      assert.equal((await ours())[0]?.number_of_failures, 0);

      // A certificate from a CA outside Quay's bundle: the server reloads it, Quay refuses it.
      const other = await createCertificateAuthority({ commonName: "not in Quay's bundle" });
      const rotations = b.logs.filter((l) => l.msg === "webhook certificate rotated").length;
      await writePair(
        certDir,
        await issueServingCertificate(other, { commonName: HOST, ipAddresses: [HOST] }),
      );
      await until(
        "the server serving the untrusted certificate",
        () =>
          Promise.resolve(b.logs.filter((l) => l.msg === "webhook certificate rotated").length > rotations),
        40_000,
      );
      const refusedTag = tags[PUSHES] as string;
      const refused = await push(refusedTag);
      const failed = await until("Quay counting a failed delivery", async () => {
        const n = (await ours())[0];
        return n && n.number_of_failures >= 1 ? n : undefined;
      }, 40_000);
      assert.equal(failed.uuid, notification.uuid);
      assert.equal(
        logged("notification queued imports", (l) => (l.tags as string[]).includes(refusedTag)),
        undefined,
        "nothing reached the receiver",
      );
      assert.equal(await imageOf(refusedTag), undefined, "nothing imported");
      const workerLog = await Deno.readTextFile(`${real.stateDir}/run/notify.log`);
      assert.match(
        workerLog.slice(-200_000),
        new RegExp(`host='${HOST.replaceAll(".", "\\.")}', port=${port}\\b.*CERTIFICATE_VERIFY_FAILED`),
        "Quay's worker logged the certificate verification failure",
      );

      // The trusted certificate back: Quay retries the failed event (30 s later) and it is imported.
      await writePair(
        certDir,
        await issueServingCertificate(trustedCa, { commonName: HOST, ipAddresses: [HOST] }),
      );
      await until(
        `${refusedTag} imported from Quay's retry`,
        async () => (await imageOf(refusedTag)) === refused.digest,
        90_000,
      );
      assert.equal((await ours())[0]?.number_of_failures, 0, "a delivery that went through resets the count");
    } finally {
      await b.running?.stop();
      await openshift.stop();
      await b.close();
      await Deno.remove(certDir, { recursive: true }).catch(() => {});
      await real.api("DELETE", `/api/v1/organization/${org}`).catch(() => {});
    }
  },
});
