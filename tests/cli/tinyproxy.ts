/**
 * @module
 * A real HTTP CONNECT proxy for the proxy tests: Debian's `tinyproxy`, installed with apt-get when
 * missing (as root; otherwise the test fails saying what to install). It runs in a private mount
 * namespace whose `/etc/hosts` maps the given names to 127.0.0.1, so only the proxy can resolve them:
 * a request to such a name that arrives at all went through the proxy. Its log is read to count the
 * tunnels (`CONNECT host:port` requests) per destination.
 */
import { freePort } from "./process.ts";

/** A running tinyproxy. */
export interface Tinyproxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** CONNECT requests received for `host:port` so far. */
  tunnels(authority: string): Promise<number>;
  /** Every CONNECT request line so far. */
  connects(): Promise<string[]>;
  close(): Promise<void>;
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const d = new TextDecoder();
    return { ok: o.success, output: d.decode(o.stdout) + d.decode(o.stderr) };
  } catch (error) {
    return { ok: false, output: (error as Error).message };
  }
}

async function ensureInstalled(): Promise<void> {
  if ((await run("tinyproxy", ["-v"])).ok) return;
  const env = ["DEBIAN_FRONTEND=noninteractive"];
  let install = await run("env", [...env, "apt-get", "install", "-y", "-q", "tinyproxy-bin"]);
  if (!install.ok) {
    await run("env", [...env, "apt-get", "update", "-q"]);
    install = await run("env", [...env, "apt-get", "install", "-y", "-q", "tinyproxy-bin"]);
  }
  if (!install.ok || !(await run("tinyproxy", ["-v"])).ok) {
    throw new Error(
      "the proxy tests need tinyproxy and could not install it with apt-get (run as root, or " +
        `apt-get install tinyproxy-bin): ${install.output.slice(-500)}`,
    );
  }
}

/** Starts tinyproxy; only it resolves `names` (to 127.0.0.1). With `auth`, it demands those credentials. */
export async function startTinyproxy(
  names: readonly string[],
  auth?: { user: string; password: string },
): Promise<Tinyproxy> {
  await ensureInstalled();
  const dir = await Deno.makeTempDir({ prefix: "quay-bridge-tinyproxy-" });
  const port = freePort();
  const hosts = (await Deno.readTextFile("/etc/hosts")) + names.map((n) => `127.0.0.1 ${n}\n`).join("");
  await Deno.writeTextFile(`${dir}/hosts`, hosts);
  const log = `${dir}/tinyproxy.log`;
  await Deno.writeTextFile(
    `${dir}/tinyproxy.conf`,
    [
      `Port ${port}`,
      "Listen 127.0.0.1",
      "Timeout 600",
      `LogFile "${log}"`,
      "LogLevel Info",
      "MaxClients 200",
      "Allow 127.0.0.1",
      "DisableViaHeader Yes",
      ...(auth ? [`BasicAuth ${auth.user} ${auth.password}`] : []),
      "",
    ].join("\n"),
  );
  // The private /etc/hosts: a mount namespace of its own (needs root or user namespaces).
  const child = new Deno.Command("unshare", {
    args: [
      "-m",
      "sh",
      "-c",
      `mount --bind "${dir}/hosts" /etc/hosts && exec tinyproxy -d -c "${dir}/tinyproxy.conf"`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = (async () => {
    const d = new TextDecoder();
    const [out, err] = await Promise.all([
      new Response(child.stdout).arrayBuffer(),
      new Response(child.stderr).arrayBuffer(),
    ]);
    return d.decode(out) + d.decode(err);
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(
        `tinyproxy did not start (it runs under "unshare -m" for a private /etc/hosts, which needs root): ${await output}`,
      );
    }
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`tinyproxy does not listen on ${port}: ${await output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const connects = async () => {
    const text = await Deno.readTextFile(log).catch(() => "");
    return [...text.matchAll(/Request \(file descriptor \d+\): (CONNECT \S+)/g)].map((m) => m[1] as string);
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connects,
    async tunnels(authority) {
      return (await connects()).filter((c) => c === `CONNECT ${authority}`).length;
    },
    async close() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await status;
      await output;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
