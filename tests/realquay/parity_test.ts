/**
 * @module
 * The referee of the Quay side: the same calls against the real Quay (see `mod.ts`) and the test
 * world's Quay must get the same answers: status, content type, the shape of the body (keys and
 * value types, not values) and, for errors, the error text with names replaced. The calls are every
 * one `src/quay/client.ts` makes, with the success and error cases the operator meets: missing
 * organization, repository or robot, refused token, a deleted organization's name not yet freed,
 * a robot name too long for Quay's database.
 *
 * A difference is a test-world bug, unless it is listed in {@linkcode EXPLAINED} with the reason it
 * cannot matter to the operator. The count of probes and of explained differences is printed.
 */
import assert from "node:assert/strict";
import { ALL_SCOPES, startQuayWorld } from "../world/quay/mod.ts";
import {
  callApi,
  deleteOrganization,
  quayToken,
  type RealQuayAnswer,
  startRealQuay,
  uniqueName,
} from "./mod.ts";

/** One side of the comparison. */
interface Target {
  readonly label: string;
  /** An OAuth token (every scope but `super:user`) of a plain user who administers nothing. */
  readonly plainToken: string;
  call(
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown },
  ): Promise<RealQuayAnswer>;
  /** `GET /v2/auth` (no scope) with Basic credentials, as a registry client logs in. */
  v2auth(username: string, password: string): Promise<RealQuayAnswer>;
}

/** What is compared of one answer. */
interface Observation {
  status: number;
  contentType: string;
  shape: unknown;
  error?: string;
}

/** A probe: a labelled sequence of calls, each observed. */
interface Probe {
  name: string;
  run(t: Target, names: Names, observe: Observer): Promise<void>;
}

type Observer = (label: string, answer: RealQuayAnswer, names: Names) => void;

interface Names {
  org: string;
  org2: string;
  org3: string;
  missing: string;
  long: string;
}

/**
 * Differences that cannot matter, by observation label, with the reason. Keep it short: each entry
 * is a place where the world may answer differently from Quay.
 */
const EXPLAINED: Record<string, string> = {};

/** The shape of a JSON value: keys with the shapes of their values, arrays by their first element. */
export function shapeOf(value: unknown): unknown {
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? [] : [shapeOf(value[0])];
  if (typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value as object).sort().map((k) => [k, shapeOf((value as Record<string, unknown>)[k])]),
    );
  }
  return typeof value;
}

function errorText(body: unknown, names: Names): string | undefined {
  if (!body || typeof body !== "object") return undefined;
  const b = body as Record<string, unknown>;
  // The registry's errors come as `{errors: [{code, message}]}`.
  const registry = Array.isArray(b.errors)
    ? (b.errors[0] as Record<string, unknown> | undefined)?.message
    : undefined;
  const text = [b.detail, b.error_message, b.message, b.error, registry].find((v) => typeof v === "string") as
    | string
    | undefined;
  if (text === undefined) return undefined;
  let out = text;
  for (const [key, name] of Object.entries(names).sort((a, b) => b[1].length - a[1].length)) {
    out = out.replaceAll(name, `{${key}}`);
  }
  return out;
}

const ROBOT = "builder";
const LONG_ROBOT = "r".repeat(60);

const probes: Probe[] = [
  {
    name: "user",
    async run(t, n, observe) {
      observe("GET /user/ (super user)", await t.call("GET", "/api/v1/user/"), n);
      observe("GET /user/ (bad token)", await t.call("GET", "/api/v1/user/", { token: "bad" }), n);
      observe("GET /user/ (no token)", await t.call("GET", "/api/v1/user/", { token: null }), n);
    },
  },
  {
    name: "organizations",
    async run(t, n, observe) {
      const create = (name: string, email?: string) =>
        t.call("POST", "/api/v1/organization/", { body: email ? { name, email } : { name } });
      observe("POST /organization/", await create(n.org, `${n.org}@example.com`), n);
      observe("POST /organization/ (exists)", await create(n.org, `${n.org}@example.com`), n);
      observe("POST /organization/ (no e-mail)", await create(n.org2), n);
      observe("POST /organization/ (shared e-mail)", await create(n.org3, `${n.org}@example.com`), n);
      observe("POST /organization/ (invalid name)", await create("A!", "x@example.com"), n);
      observe("GET /organization/{org}", await t.call("GET", `/api/v1/organization/${n.org}`), n);
      observe("GET /organization/{missing}", await t.call("GET", `/api/v1/organization/${n.missing}`), n);
      observe(
        "GET /organization/{org} (bad token: public view)",
        await t.call("GET", `/api/v1/organization/${n.org}`, { token: "bad" }),
        n,
      );
      observe(
        "POST /organization/ (bad token: CSRF)",
        await t.call("POST", "/api/v1/organization/", { token: "bad", body: { name: n.missing } }),
        n,
      );
    },
  },
  {
    name: "robots",
    async run(t, n, observe) {
      const base = `/api/v1/organization/${n.org}/robots`;
      observe("GET robots (none)", await t.call("GET", `${base}?token=true&permissions=false`), n);
      observe("PUT robot", await t.call("PUT", `${base}/${ROBOT}`, { body: { description: "d" } }), n);
      observe(
        "PUT robot (exists)",
        await t.call("PUT", `${base}/${ROBOT}`, { body: { description: "d" } }),
        n,
      );
      observe("PUT robot (invalid name)", await t.call("PUT", `${base}/Bad-Name`, { body: {} }), n);
      observe("GET robot", await t.call("GET", `${base}/${ROBOT}`), n);
      observe("GET robot (missing)", await t.call("GET", `${base}/nobody`), n);
      observe("GET robots", await t.call("GET", `${base}?token=true&permissions=false`), n);
      observe(
        "GET robots (bad token)",
        await t.call("GET", `${base}?token=true&permissions=false`, { token: "bad" }),
        n,
      );
      const missing = `/api/v1/organization/${n.missing}/robots`;
      observe("GET robots (missing org)", await t.call("GET", `${missing}?token=true&permissions=false`), n);
      observe("GET robot (missing org)", await t.call("GET", `${missing}/${ROBOT}`), n);
      observe("PUT robot (missing org)", await t.call("PUT", `${missing}/${ROBOT}`, { body: {} }), n);
      observe(
        "PUT robot (bad token: CSRF)",
        await t.call("PUT", `${base}/other`, { token: "bad", body: {} }),
        n,
      );
      observe(
        "PUT robot (full name beyond 255)",
        await t.call("PUT", `/api/v1/organization/${n.long}/robots/${LONG_ROBOT}`, { body: {} }),
        n,
      );
    },
  },
  {
    name: "audit log counts",
    async run(t, n, observe) {
      const day = new Date().toISOString().slice(0, 10).split("-");
      const path = `/api/v1/superuser/aggregatelogs?starttime=${day[1]}/${day[2]}/${day[0]}&endtime=${
        day[1]
      }/${day[2]}/${day[0]}`;
      type Counts = { aggregated?: { kind: string; count: number; datetime: string }[] };
      const count = (a: RealQuayAnswer, kind: string) =>
        ((a.json as Counts)?.aggregated ?? []).filter((c) => c.kind === kind).reduce(
          (s, c) => s + c.count,
          0,
        );
      const before = await t.call("GET", path);
      observe("GET superuser/aggregatelogs", before, n);
      // The day of a count is midnight UTC (both servers run in UTC).
      const midnight = ((before.json as Counts)?.aggregated ?? []).every((c) =>
        / 00:00:00 -0000$/.test(c.datetime)
      );
      observe("GET superuser/aggregatelogs (datetimes at midnight)", {
        ...before,
        json: { [String(midnight)]: 1 },
      }, n);
      await t.call("PUT", `/api/v1/organization/${n.org}/robots/counted`, { body: { description: "d" } });
      await t.call("DELETE", `/api/v1/organization/${n.org}/robots/counted`);
      const after = await t.call("GET", path);
      const grew = [
        count(after, "create_robot") - count(before, "create_robot"),
        count(after, "delete_robot") - count(before, "delete_robot"),
      ];
      // Values, not shapes, are the point here: the growth is the key.
      observe("GET superuser/aggregatelogs (after a robot made and deleted)", {
        ...after,
        json: { [`create_robot+${grew[0]},delete_robot+${grew[1]}`]: 1 },
      }, n);
      observe(
        "GET superuser/aggregatelogs (plain user)",
        await t.call("GET", path, { token: t.plainToken }),
        n,
      );
      observe("GET superuser/aggregatelogs (bad token)", await t.call("GET", path, { token: "bad" }), n);
      const logs = path.replace("aggregatelogs", "logs");
      observe("GET superuser/logs (plain user)", await t.call("GET", logs, { token: t.plainToken }), n);
      observe("GET superuser/logs (bad token)", await t.call("GET", logs, { token: "bad" }), n);
    },
  },
  {
    name: "robot token regeneration",
    async run(t, n, observe) {
      const base = `/api/v1/organization/${n.org}/robots`;
      const robot = `${n.org}+${ROBOT}`;
      const tokenOf = (a: RealQuayAnswer) => (a.json as { token?: unknown } | undefined)?.token;
      const old = tokenOf(await t.call("GET", `${base}/${ROBOT}`));
      assert.equal(typeof old, "string", `${t.label}: the robot's token before`);
      observe("/v2/auth (robot token)", await t.v2auth(robot, String(old)), n);
      const regenerated = await t.call("POST", `${base}/${ROBOT}/regenerate`);
      observe("POST robot regenerate", regenerated, n);
      const fresh = tokenOf(regenerated);
      assert.ok(typeof fresh === "string" && fresh !== old, `${t.label}: a new token in the answer`);
      assert.equal(tokenOf(await t.call("GET", `${base}/${ROBOT}`)), fresh, `${t.label}: GET robot has it`);
      // Regeneration invalidates the old token at once (docs/configuration.md says so to admins).
      observe("/v2/auth (old token after regenerate)", await t.v2auth(robot, String(old)), n);
      observe("/v2/auth (new token after regenerate)", await t.v2auth(robot, String(fresh)), n);
      observe("POST robot regenerate (missing robot)", await t.call("POST", `${base}/nobody/regenerate`), n);
      observe(
        "POST robot regenerate (missing org)",
        await t.call("POST", `/api/v1/organization/${n.missing}/robots/${ROBOT}/regenerate`),
        n,
      );
      observe(
        "POST robot regenerate (bad token: CSRF)",
        await t.call("POST", `${base}/${ROBOT}/regenerate`, { token: "bad" }),
        n,
      );
      const plain = t.plainToken;
      observe(
        "POST robot regenerate (not an admin of the org)",
        await t.call("POST", `${base}/${ROBOT}/regenerate`, { token: plain }),
        n,
      );
      observe(
        "/v2/auth (token after a refused regenerate)",
        await t.v2auth(robot, String(fresh)),
        n,
      );
    },
  },
  {
    name: "default permissions",
    async run(t, n, observe) {
      const base = `/api/v1/organization/${n.org}/prototypes`;
      observe("GET prototypes (none)", await t.call("GET", base), n);
      const created = await t.call("POST", base, {
        body: { role: "write", delegate: { kind: "user", name: `${n.org}+${ROBOT}` } },
      });
      observe("POST prototype", created, n);
      const id = (created.json as { id?: string } | undefined)?.id ?? "none";
      observe("PUT prototype", await t.call("PUT", `${base}/${id}`, { body: { role: "read" } }), n);
      observe(
        "PUT prototype (missing)",
        await t.call("PUT", `${base}/not-an-id`, { body: { role: "read" } }),
        n,
      );
      observe("GET prototypes", await t.call("GET", base), n);
      observe("GET prototypes (bad token)", await t.call("GET", base, { token: "bad" }), n);
      const missing = `/api/v1/organization/${n.missing}/prototypes`;
      observe("GET prototypes (missing org)", await t.call("GET", missing), n);
      observe(
        "POST prototype (missing org)",
        await t.call("POST", missing, {
          body: { role: "read", delegate: { kind: "user", name: `${n.missing}+${ROBOT}` } },
        }),
        n,
      );
      observe(
        "POST prototype (unknown robot)",
        await t.call("POST", base, {
          body: { role: "read", delegate: { kind: "user", name: `${n.org}+ghost` } },
        }),
        n,
      );
    },
  },
  {
    name: "repositories",
    async run(t, n, observe) {
      const create = (namespace: string, repository: string, token?: string) =>
        t.call("POST", "/api/v1/repository", {
          token,
          body: { namespace, repository, visibility: "private", description: "d", repo_kind: "image" },
        });
      const list = (ns: string, token?: string) =>
        t.call("GET", `/api/v1/repository?namespace=${ns}`, { token });
      observe("GET /repository?namespace (none)", await list(n.org), n);
      observe("POST /repository", await create(n.org, "app"), n);
      observe("POST /repository (exists)", await create(n.org, "app"), n);
      observe("POST /repository (invalid name)", await create(n.org, "App!"), n);
      observe("POST /repository (missing org)", await create(n.missing, "app"), n);
      observe("POST /repository (bad token: CSRF)", await create(n.org, "other", "bad"), n);
      observe("GET /repository?namespace", await list(n.org), n);
      observe("GET /repository?namespace (bad token: anonymous)", await list(n.org, "bad"), n);
      observe("GET /repository?namespace (missing org)", await list(n.missing), n);
      observe(
        "GET /repository/{org}/{repo}",
        await t.call("GET", `/api/v1/repository/${n.org}/app?includeStats=false&includeTags=false`),
        n,
      );
      observe(
        "GET /repository/{org}/{missing}",
        await t.call("GET", `/api/v1/repository/${n.org}/nothing?includeStats=false&includeTags=false`),
        n,
      );
      observe(
        "GET /repository/{missing}/{repo}",
        await t.call("GET", `/api/v1/repository/${n.missing}/app?includeStats=false&includeTags=false`),
        n,
      );
      const perm = (repo: string) => `/api/v1/repository/${n.org}/${repo}/permissions/user/${n.org}+${ROBOT}`;
      observe("PUT repository permission", await t.call("PUT", perm("app"), { body: { role: "write" } }), n);
      observe(
        "PUT repository permission (missing repo)",
        await t.call("PUT", perm("nothing"), { body: { role: "write" } }),
        n,
      );
      observe(
        "PUT repository permission (unknown user)",
        await t.call("PUT", `/api/v1/repository/${n.org}/app/permissions/user/${n.org}+ghost`, {
          body: { role: "read" },
        }),
        n,
      );
      observe(
        "DELETE /repository (bad token: CSRF)",
        await t.call("DELETE", `/api/v1/repository/${n.org}/app`, { token: "bad" }),
        n,
      );
      observe("DELETE /repository", await t.call("DELETE", `/api/v1/repository/${n.org}/app`), n);
      observe(
        "DELETE /repository (missing repo)",
        await t.call("DELETE", `/api/v1/repository/${n.org}/app`),
        n,
      );
      observe(
        "DELETE /repository (missing org)",
        await t.call("DELETE", `/api/v1/repository/${n.missing}/app`),
        n,
      );
    },
  },
  {
    name: "organization deletion",
    async run(t, n, observe) {
      observe(
        "DELETE /organization/{org} (bad token: CSRF)",
        await t.call("DELETE", `/api/v1/organization/${n.org}`, { token: "bad" }),
        n,
      );
      observe("DELETE /organization/{org}", await t.call("DELETE", `/api/v1/organization/${n.org}`), n);
      observe("DELETE /organization/{missing}", await t.call("DELETE", `/api/v1/organization/${n.org}`), n);
      observe(
        "POST /organization/ (name not freed yet)",
        await t.call("POST", "/api/v1/organization/", {
          body: { name: n.org, email: `${n.org}@example.com` },
        }),
        n,
      );
      observe(
        "GET robots (deleted org)",
        await t.call("GET", `/api/v1/organization/${n.org}/robots?token=true&permissions=false`),
        n,
      );
    },
  },
];

/** A plain user (no super user, no organization), made in the real Quay on first use and kept. */
const PLAIN_USER = "qbparityplain";

async function v2auth(
  url: string,
  host: string,
  client: Deno.HttpClient,
  username: string,
  password: string,
): Promise<RealQuayAnswer> {
  const r = await fetch(`${url}/v2/auth?service=${encodeURIComponent(host)}`, {
    client,
    headers: { authorization: `Basic ${btoa(`${username}:${password}`)}` },
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, contentType: r.headers.get("content-type") ?? "", text, json };
}

function names(): Names {
  const org = uniqueName("parity");
  return {
    org,
    org2: `${org}_b`,
    org3: `${org}_c`,
    missing: `${org}_none`,
    long: `${org}${"l".repeat(200 - org.length)}`,
  };
}

async function runAll(t: Target, n: Names): Promise<Map<string, Observation>> {
  const seen = new Map<string, Observation>();
  const observe: Observer = (label, answer, names) => {
    const ct = answer.contentType.toLowerCase().replaceAll(" ", "");
    const o: Observation = { status: answer.status, contentType: ct, shape: shapeOf(answer.json) };
    const error = answer.status >= 400 ? errorText(answer.json, names) : undefined;
    if (error !== undefined) o.error = error;
    if (answer.json === undefined && answer.text !== "") o.shape = `text: ${answer.text.slice(0, 40)}`;
    seen.set(label, o);
  };
  // The long-named organization only exists for the robot-name probe.
  await t.call("POST", "/api/v1/organization/", { body: { name: n.long, email: `${n.org}@example.com` } });
  try {
    for (const probe of probes) await probe.run(t, n, observe);
  } finally {
    for (const org of [n.org, n.org2, n.org3, n.long]) await t.call("DELETE", `/api/v1/organization/${org}`);
  }
  return seen;
}

Deno.test("the test world's Quay answers like the real Quay", async () => {
  const quay = await startRealQuay();
  // Configured as the real one: no mail (so organizations need no unique e-mail), a namespace GC
  // that has not run within the test.
  const world = await startQuayWorld({ requireOrgEmail: false, namespaceGcDelayMs: 120_000 });
  const worldClient = Deno.createHttpClient({ caCerts: [world.caPem] });
  const real: Target = {
    label: "real",
    plainToken: await quayToken(quay, "mint-user", PLAIN_USER),
    call: (method, path, options) => quay.api(method, path, options),
    v2auth: (username, password) => v2auth(quay.url, quay.host, quay.client, username, password),
  };
  const imitation: Target = {
    label: "world",
    plainToken: world.createToken({ user: PLAIN_USER, scopes: ALL_SCOPES.filter((s) => s !== "super:user") }),
    call: (method, path, options) => callApi(world.url, worldClient, world.adminToken, method, path, options),
    v2auth: (username, password) => v2auth(world.url, world.registryHost, worldClient, username, password),
  };
  const realNames = names();
  try {
    const expected = await runAll(real, realNames);
    const actual = await runAll(imitation, names());
    const differences: string[] = [];
    const explained: string[] = [];
    for (const [label, want] of expected) {
      const got = actual.get(label);
      try {
        assert.deepEqual(got, want);
      } catch {
        const line = `${label}: real ${JSON.stringify(want)}\n  world ${JSON.stringify(got)}`;
        if (EXPLAINED[label]) explained.push(`${label} (${EXPLAINED[label]})`);
        else differences.push(line);
      }
    }
    // deno-lint-ignore no-console
    console.log(
      `Quay parity: ${expected.size} probes, ${explained.length} explained differences` +
        (explained.length ? `:\n  ${explained.join("\n  ")}` : ""),
    );
    assert.equal(actual.size, expected.size);
    assert.deepEqual(differences, [], `the world answers differently:\n${differences.join("\n")}`);
  } finally {
    worldClient.close();
    await world.close();
    for (const org of [realNames.org2, realNames.org3, realNames.long]) await deleteOrganization(quay, org);
  }
});
