/**
 * @module
 * Pushes found in the real Quay's audit log: with no `spec.notifications` (no notification in Quay,
 * no receiver), an image pushed straight to a managed repository with the builder robot's
 * credentials becomes the ImageStream's tag through the audit poll (`push_repo` entry, counted by
 * `GET /api/v1/superuser/aggregatelogs`) at the default `--audit-interval`, within 10 s; a push to
 * a tag the ImageStream does not track is not imported. Prints push → tag for each run.
 *
 * Needs a running real Quay (see `mod.ts`).
 */
import assert from "node:assert/strict";
import { startBridge, synced, until } from "../integration/harness.ts";
import { pushImage } from "../world/quay/registry_client.ts";
import { startRealQuay } from "./mod.ts";
import { integrateRealQuay, openShiftForRealQuay } from "./bridge.ts";

const RUNS = 3;

Deno.test({
  name:
    "real Quay: a robot's push reaches the ImageStream through the audit log within 10 s, notifications off",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const real = await startRealQuay();
    const quayClient = Deno.createHttpClient({ caCerts: [real.caPem] });
    const quay = async (method: string, path: string) => {
      const r = await fetch(real.url + path, {
        method,
        client: quayClient,
        headers: { authorization: `Bearer ${real.token}` },
      });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : undefined };
    };
    const clusterId = `qba${crypto.randomUUID().slice(0, 8)}`;
    const ns = "pushed";
    const org = `${clusterId}_${ns}`;
    // The default flags: the audit interval under test is the shipped one.
    const b = await startBridge({ integration: false, start: false, flags: [] });
    const openshift = openShiftForRealQuay(b, real);
    try {
      await integrateRealQuay(b, real, { clusterId, namespaces: [ns] });
      await b.createProject(ns);
      await synced(b, ns, { clusterId, timeoutMs: 60_000 });
      await b.kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams`, {
        metadata: { name: "app" },
        spec: { tags: [{ name: "v1" }] },
      });
      await until("repository app in the real Quay", async () => {
        return (await quay("GET", `/api/v1/repository/${org}/app`)).status === 200;
      }, 30_000);
      const robot = (await quay("GET", `/api/v1/organization/${org}/robots/builder`)).json;
      const target = {
        registryUrl: real.url,
        caPem: real.caPem,
        repository: `${org}/app`,
        username: robot.name,
        password: robot.token,
      };
      const statusTag = async (tag: string) => {
        const is = await b.kube.ok("GET", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams/app`);
        const found = (is.status?.tags ?? []).find((t: { tag: string }) => t.tag === tag);
        return found?.items?.[0]?.image as string | undefined;
      };

      await pushImage({ ...target, tag: "scratch" });
      const seconds: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const pushed = await pushImage({
          ...target,
          tag: "v1",
          content: `run ${run} ${crypto.randomUUID()}\n`,
        });
        const pushedAt = Date.now();
        await until(
          `v1 (run ${run}) imported`,
          async () => (await statusTag("v1")) === pushed.digest,
          60_000,
        );
        seconds.push((Date.now() - pushedAt) / 1000);
        // Somewhere else in the poll cycle next time.
        await new Promise((r) => setTimeout(r, 1_300 * (run + 1)));
      }
      // Idle: the audit calls of 10 s (the real Quay is shared: other tests' deletions are counted too).
      const metrics = b.running?.metrics;
      const audited = () =>
        ["aggregatelogs", "logs"].map((r) =>
          metrics?.quayRequests.value({ route: `GET /api/v1/superuser/${r}`, code: "200" }) ?? 0
        );
      const [counts0, pages0] = audited();
      await new Promise((r) => setTimeout(r, 10_000));
      const [counts1, pages1] = audited();
      Deno.stdout.writeSync(new TextEncoder().encode(
        `real Quay, audit path: push → ImageStream tag ${seconds.map((s) => s.toFixed(1)).join(", ")} s; ` +
          `idle 10 s: ${(counts1 ?? 0) - (counts0 ?? 0)} count calls, ${
            (pages1 ?? 0) - (pages0 ?? 0)
          } log pages\n`,
      ));
      assert.equal(await statusTag("scratch"), undefined, "an untracked tag is not imported");
      assert.ok(
        b.logs.some((l) => l.msg === "image imported after push" && l.tag === `${ns}/app:v1`),
        "imported by the notification import path",
      );
      assert.ok(
        !b.logs.some((l) => String(l.msg).startsWith("quay audit log counts unavailable")),
        "the real Quay's counts were used",
      );
      const notes = (await quay("GET", `/api/v1/repository/${org}/app/notification/`)).json;
      assert.deepEqual(notes?.notifications, [], "no notification involved");
      for (const s of seconds) assert.ok(s <= 10, `push → tag ${s} s`);
    } finally {
      await b.running?.stop();
      await openshift.stop();
      await b.close();
      await quay("DELETE", `/api/v1/organization/${org}`).catch(() => {});
      quayClient.close();
    }
  },
});
