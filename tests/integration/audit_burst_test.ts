/**
 * @module
 * What one audit poll costs after a burst of new namespaces, with and without Quay's counts: the
 * world's Quay is given what the operator logs for each new namespace (an organization, three
 * robots, three default permissions, a repository: 8 entries) plus a pull of each repository, and
 * a poll from the cursor of before the burst is made both ways by the operator's own code
 * (`pollAuditLog`). `QUAY_BRIDGE_BURST` sets the namespaces (default 50; 1000 for the figure in
 * docs/architecture.md). Prints the calls of both.
 */
import assert from "node:assert/strict";
import { QuayClient } from "../../src/quay/client.ts";
import { pollAuditLog } from "../../src/controller/quay_audit.ts";
import { startQuayWorld } from "../world/quay/mod.ts";

const NAMESPACES = Number(Deno.env.get("QUAY_BRIDGE_BURST") ?? 50);

Deno.test("after a burst of new namespaces, a poll with counts is one call; without, a page per 20 entries", async () => {
  const quay = await startQuayWorld({ requireOrgEmail: false });
  const client = new QuayClient({ baseUrl: quay.url, caBundle: quay.caPem, token: () => quay.adminToken });
  try {
    // The cursor, with the counts, from before the burst.
    const before = await pollAuditLog(client, undefined, { now: Date.now() });
    assert.ok(before.cursor.counts, "the world's Quay serves the counts");
    // The burst, eight namespaces at a time.
    for (let i = 0; i < NAMESPACES; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, NAMESPACES - i) }, async (_, j) => {
        const org = `openshift_burst-${i + j}`;
        await client.createOrganization(org, `${org}@example.com`);
        for (const sa of ["builder", "default", "deployer"]) {
          const robot = await client.createRobot(org, sa, "quay-bridge");
          await client.createPrototype(org, robot.name, sa === "builder" ? "write" : "read");
        }
        await client.createRepository(org, "app", "quay-bridge");
      }));
    }
    const now = Date.now() + 1_000;
    const plain = await pollAuditLog(client, before.cursor, { now, counts: false });
    const counted = await pollAuditLog(client, before.cursor, { now, counts: true });
    // deno-lint-ignore no-console
    console.log(
      `audit poll after ${NAMESPACES} new namespaces (${NAMESPACES * 8} entries): ` +
        `${plain.calls} Quay calls without counts, ${counted.calls} with`,
    );
    assert.equal(plain.complete, true);
    assert.ok(plain.calls >= (NAMESPACES * 8) / 20, "every page down to the cursor");
    assert.equal(counted.calls, 1, "nothing counted was logged: the counts alone");
    assert.equal(counted.pages, 0);
    assert.equal(counted.complete, true);
    // A robot deleted by hand under the burst's entries: found on the first page.
    const http = Deno.createHttpClient({ caCerts: [quay.caPem] });
    const deleted = await fetch(`${quay.url}/api/v1/organization/openshift_burst-3/robots/deployer`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${quay.adminToken}` },
      client: http,
    });
    await deleted.body?.cancel();
    http.close();
    assert.equal(deleted.status, 204);
    const drift = await pollAuditLog(client, counted.cursor, { now: now + 5_000 });
    assert.deepEqual([...drift.organizations], ["openshift_burst-3"]);
    assert.equal(drift.pages, 1);
    assert.equal(drift.calls, 3, "the counts, the page, the counts again");
  } finally {
    client.close();
    await quay.close();
  }
});
