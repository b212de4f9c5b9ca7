/**
 * @module
 * The Quay client against the real Quay, and the same scenarios against the test world's Quay: the
 * answers real Quay gives that used to mislead the operator (a refused token treated as anonymous,
 * a deleted organization's name held until Quay's namespace GC, 204 for deleting a missing
 * repository, `200 []` for the robots of a missing organization, HTML 500s for writes into missing
 * parents) each come out of the client as a well-classified result or error.
 */
import assert from "node:assert/strict";
import { QuayApiError } from "../../src/errors.ts";
import { QuayClient, QuayReason } from "../../src/quay/client.ts";
import { startQuayWorld } from "../world/quay/mod.ts";
import { deleteOrganization, startRealQuay, uniqueName } from "./mod.ts";

interface Side {
  label: string;
  url: string;
  caPem: string;
  token: string;
  cleanup(org: string): Promise<void>;
  close(): Promise<void>;
}

async function realSide(): Promise<Side> {
  const quay = await startRealQuay();
  return {
    label: "real Quay",
    url: quay.url,
    caPem: quay.caPem,
    token: quay.token,
    cleanup: (org) => deleteOrganization(quay, org),
    close: () => Promise.resolve(),
  };
}

async function worldSide(): Promise<Side> {
  // Configured as the real one: no mail, a namespace GC that frees names after a few seconds.
  const world = await startQuayWorld({ requireOrgEmail: false, namespaceGcDelayMs: 3_000 });
  return {
    label: "world Quay",
    url: world.url,
    caPem: world.caPem,
    token: world.adminToken,
    cleanup: () => Promise.resolve(),
    close: () => world.close(),
  };
}

function clientFor(side: Side, token = side.token): QuayClient {
  return new QuayClient({ baseUrl: side.url, caBundle: side.caPem, token: () => token });
}

async function rejectsWith(promise: Promise<unknown>, reason: string, retry?: string): Promise<QuayApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof QuayApiError, String(error));
    assert.equal(error.reason, reason, error.message);
    if (retry) assert.equal(error.retry, retry, error.message);
    return error;
  }
  assert.fail(`expected a ${reason} error`);
}

function bothSides(name: string, fn: (side: Side) => Promise<void>): void {
  for (const make of [worldSide, realSide]) {
    Deno.test(`${name} (${make === realSide ? "real" : "world"} Quay)`, async () => {
      const side = await make();
      try {
        await fn(side);
      } finally {
        await side.close();
      }
    });
  }
}

bothSides("a refused token is TokenInvalid at the first call, whatever the call", async (side) => {
  const admin = clientFor(side);
  const org = uniqueName("clienttok");
  const bad = clientFor(side, "not-a-token-quay-knows");
  try {
    assert.equal(await admin.createOrganization(org, `${org}@example.com`), "created");
    await admin.createRepository(org, "app", "d");
    // Each of these gets an answer from Quay that, unchecked, looks like data: the public view of
    // the organization, an anonymous (empty) repository list, the CSRF refusal of a write.
    await rejectsWith(bad.getUser(), QuayReason.TokenInvalid, "terminal");
    await rejectsWith(bad.getOrganization(org), QuayReason.TokenInvalid, "terminal");
    await rejectsWith(bad.listRepositories(org), QuayReason.TokenInvalid, "terminal");
    await rejectsWith(bad.listRobots(org), QuayReason.TokenInvalid, "terminal");
    await rejectsWith(bad.listPrototypes(org), QuayReason.TokenInvalid, "terminal");
    await rejectsWith(
      bad.createOrganization(uniqueName("clienttok"), "x@example.com"),
      QuayReason.TokenInvalid,
    );
    await rejectsWith(bad.createRepository(org, "other", "d"), QuayReason.TokenInvalid);
    await rejectsWith(bad.createRobot(org, "builder", "d"), QuayReason.TokenInvalid);
    await rejectsWith(bad.deleteRepository(org, "app"), QuayReason.TokenInvalid);
    // The admin still sees the repository: nothing was decided on the anonymous answers.
    assert.deepEqual((await admin.listRepositories(org)).map((r) => r.name), ["app"]);
    assert.equal((await admin.getOrganization(org))?.is_admin, true);
  } finally {
    admin.close();
    bad.close();
    await side.cleanup(org);
  }
});

bothSides("absence is told apart from a misleading answer", async (side) => {
  const client = clientFor(side);
  const org = uniqueName("clientabs");
  const missing = `${org}_none`;
  try {
    await client.createOrganization(org, `${org}@example.com`);
    // Robots of a missing organization are `200 []` on Quay; the client confirms and says missing.
    assert.equal(await client.listRobots(missing), undefined);
    assert.deepEqual(await client.listRobots(org), []);
    assert.equal(await client.getOrganization(missing), undefined);
    await rejectsWith(client.getRobot(missing, "builder"), QuayReason.OrganizationNotFound, "transient");
    await rejectsWith(client.createRobot(missing, "builder", "d"), QuayReason.OrganizationNotFound);
    await rejectsWith(
      client.createPrototype(missing, `${missing}+b`, "read"),
      QuayReason.OrganizationNotFound,
    );
    // Writes into missing parents fail with Quay's HTML 500; the client names the missing parent.
    await rejectsWith(
      client.createRepository(missing, "app", "d"),
      QuayReason.OrganizationNotFound,
      "transient",
    );
    const robot = await client.createRobot(org, "builder", "d");
    await rejectsWith(
      client.setRepositoryPermission(org, "nothing", robot.name, "read"),
      QuayReason.RepositoryNotFound,
      "transient",
    );
    // Deleting reports a deletion only when there was something to delete (Quay answers 204 either way).
    assert.equal(await client.createRepository(org, "app", "d"), "created");
    assert.equal(await client.deleteRepository(org, "app"), true);
    assert.equal(await client.deleteRepository(org, "app"), false);
    assert.equal(await client.deleteRepository(missing, "app"), false);
    // A robot name within Quay's short-name rules but beyond its database column.
    const long = `${org}${"l".repeat(200 - org.length)}`;
    await client.createOrganization(long, `${org}@example.com`);
    try {
      await rejectsWith(client.createRobot(long, "r".repeat(60), "d"), QuayReason.NameTooLong, "terminal");
    } finally {
      await client.deleteOrganization(long);
    }
  } finally {
    client.close();
    await side.cleanup(org);
  }
});

bothSides("a re-created organization waits for Quay to free its name, then is created", async (side) => {
  const client = clientFor(side);
  const org = uniqueName("clientgc");
  try {
    assert.equal(await client.createOrganization(org, `${org}@example.com`), "created");
    assert.equal(await client.deleteOrganization(org), true);
    const started = Date.now();
    const error = await rejectsWith(
      client.createOrganization(org, `${org}@example.com`),
      QuayReason.OrganizationNameNotFree,
      "transient",
    );
    assert.ok((error.retryAfterSeconds ?? 0) >= 15 && (error.retryAfterSeconds ?? 0) <= 30, error.message);
    // As the work queue would retry, but faster: the name must be free within 90 s.
    let result: string | undefined;
    while (result === undefined) {
      try {
        result = await client.createOrganization(org, `${org}@example.com`);
      } catch (e) {
        // The work queue retries every transient error (a dropped connection on a busy Quay too).
        if (!(e instanceof QuayApiError) || e.retry !== "transient") throw e;
        assert.ok(Date.now() - started < 90_000, "the name was not freed within 90 s");
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
    }
    assert.equal(result, "created");
  } finally {
    client.close();
    await side.cleanup(org);
  }
});
