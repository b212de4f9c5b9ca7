/**
 * Every start-up failure ends `quay-bridge` with exit code 2 and exactly one line on stderr that
 * names the cause and the flag or file to change — never a stack trace. For `run`, whose every line
 * is a JSON log line, that line is JSON too. None of these needs a cluster: they fail before the
 * first request to the API server.
 */
import assert from "node:assert/strict";
import { freePort } from "./process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
const RUN_PERMISSIONS = ["--unstable-net", "--allow-net", "--allow-env", "--allow-read"];

async function cli(args: string[], permissions = RUN_PERMISSIONS, env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, MAIN, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** Asserts exit code 2 and one stderr line matching each pattern; returns the line. */
function assertOneLine(
  r: { code: number; stderr: string; stdout: string },
  ...patterns: RegExp[]
): string {
  assert.equal(r.code, 2, `exit code ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  const line = lines[0] as string;
  assert.doesNotMatch(r.stderr + r.stdout, /^\s+at /m, "a stack trace");
  assert.doesNotMatch(r.stderr, /Uncaught|error: Uncaught/);
  for (const p of patterns) assert.match(line, p);
  return line;
}

/** A kubeconfig that loads (the server is never contacted by these tests). */
async function kubeconfig(dir: string): Promise<string> {
  const path = `${dir}/kubeconfig`;
  await Deno.writeTextFile(
    path,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`,
  );
  return path;
}

/** Whether this process may bind a port below 1024 (root may; then there is no forbidden port). */
function privileged(): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: 80 }).close();
    return true;
  } catch {
    return false;
  }
}

function json(line: string): { level: string; msg: string; error: string; fix: string } {
  return JSON.parse(line);
}

Deno.test("unknown flag, missing value and bad values name the flag or variable", async () => {
  const unknown = assertOneLine(await cli(["run", "--frobnicate"]), /--frobnicate/);
  assert.equal(json(unknown).msg, "cannot start");
  assertOneLine(
    await cli(["check", "--output", "yaml"]),
    /^quay-bridge: --output: "yaml" must be text, json/,
  );
  assertOneLine(await cli(["run", "--resync", "soon"]), /--resync: \\"soon\\" is not a duration/);
  assertOneLine(
    await cli(["run", "--ops-port", "70000"]),
    /--ops-port: \\"70000\\" must be an integer from 0 to 65535/,
  );
  assertOneLine(await cli(["plan", "--ops-port"]), /--ops-port needs a value/);
  assertOneLine(await cli(["run"], RUN_PERMISSIONS, { QUAY_BRIDGE_RESYNC: "soon" }), /QUAY_BRIDGE_RESYNC: /);
  assertOneLine(await cli(["frobnicate"]), /unknown command "frobnicate"/);
  assertOneLine(
    await cli(["run"], RUN_PERMISSIONS, { HTTPS_PROXY: "http://exa mple:3128" }),
    /HTTPS_PROXY: /,
  );
});

Deno.test("an unreadable kubeconfig is named with the flag", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = json(assertOneLine(await cli(["run", "--kubeconfig", `${dir}/nope`]), /--kubeconfig/));
    assert.match(missing.error, new RegExp(`${dir}/nope: no such file`));
    assertOneLine(await cli(["run", "--kubeconfig", dir]), /is a directory/, /--kubeconfig/);
    await Deno.writeTextFile(`${dir}/broken`, "clusters: [ {");
    assertOneLine(
      await cli(["run"], RUN_PERMISSIONS, { KUBECONFIG: `${dir}/broken` }),
      /broken/,
      /KUBECONFIG/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an empty or missing certificate directory is named with --webhook-cert-dir", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kc = await kubeconfig(dir);
    const args = ["run", "--kubeconfig", kc, "--ops-port", "0", "--webhook-port", String(freePort())];
    const empty = json(
      assertOneLine(
        await cli([...args, "--webhook-mode", "files", "--webhook-cert-dir", dir]),
        /--webhook-cert-dir/,
      ),
    );
    assert.match(empty.error, new RegExp(`no serving certificate in ${dir}`));
    assertOneLine(
      await cli(args, RUN_PERMISSIONS, { WEBHOOK_CERT_DIR: `${dir}/absent` }),
      /absent/,
      /WEBHOOK_CERT_DIR/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a busy ops or webhook port, or an address not of this machine, is named with its flag", async () => {
  const dir = await Deno.makeTempDir();
  const busy = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = String((busy.addr as Deno.NetAddr).port);
  try {
    const kc = await kubeconfig(dir);
    const ops = json(assertOneLine(
      await cli(["run", "--kubeconfig", kc, "--webhook-mode", "off", "--ops-port", port]),
      /already in use/,
      /--ops-port/,
    ));
    assert.equal(ops.level, "error");
    assert.match(ops.fix, /--ops-port/);
    assertOneLine(
      await cli([
        "run",
        "--kubeconfig",
        kc,
        "--webhook-mode",
        "self-managed",
        "--ops-port",
        "0",
        "--webhook-port",
        port,
      ]),
      /already in use/,
      /--webhook-port/,
    );
    assertOneLine(
      await cli(["run", "--kubeconfig", kc, "--webhook-mode", "off", "--ops-host", "192.0.2.1"]),
      /192\.0\.2\.1 is not an address of this machine/,
      /--ops-host/,
    );
    if (!privileged()) {
      // Ports below 1024 are forbidden to an unprivileged user (root may bind them).
      assertOneLine(
        await cli(["run", "--kubeconfig", kc, "--webhook-mode", "off", "--ops-port", "80"]),
        /ports below 1024 need privileges/,
        /--ops-port/,
      );
    }
  } finally {
    busy.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing Deno permission names the --allow flag", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kc = await kubeconfig(dir);
    const args = ["run", "--kubeconfig", kc, "--webhook-mode", "off", "--ops-port", String(freePort())];
    assertOneLine(await cli(args, ["--allow-net", "--allow-read"]), /env access/, /--allow-env/);
    assertOneLine(
      await cli(args, ["--allow-net", "--allow-env", "--allow-read=/nonexistent"]),
      /--allow-read/,
    );
    assertOneLine(
      await cli(args, ["--unstable-net", "--allow-net=127.0.0.1:1", "--allow-env", "--allow-read"]),
      /net access/,
      /--allow-net/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
