/**
 * @module
 * A CPU profile of a running Deno process through its inspector (`--inspect=host:port`), summed by
 * function and by module: where an operator's CPU goes during a burst. Run it beside a benchmark
 * whose quay-bridge was started with `QUAY_BRIDGE_BENCH_DENO_FLAGS=--inspect=127.0.0.1:<port>`:
 *
 *   deno run -A bench/profile.ts --port=9339 --seconds=30 [--out=profile.cpuprofile] [--top=40]
 *
 * It waits for the inspector to come up, samples for `--seconds`, and prints the top functions by
 * self time and the modules by self time. `--out` keeps the raw profile (Chrome DevTools opens it).
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time in ms by function and by module of a V8 CPU profile. */
export function summarize(profile: Profile): { functions: [string, number][]; modules: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] as number);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^.*\/(node_modules|main|src|registry\.npmjs\.org)\//, "$1/") || "(native)";
    const name = `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`;
    fn.set(name, (fn.get(name) ?? 0) + ms);
    mod.set(where, (mod.get(where) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { functions: sorted(fn), modules: sorted(mod) };
}

async function debuggerUrl(port: number, waitMs: number): Promise<string> {
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      const list = await (await fetch(`http://127.0.0.1:${port}/json`)).json() as {
        webSocketDebuggerUrl: string;
      }[];
      if (list[0]) return list[0].webSocketDebuggerUrl;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`no inspector on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function takeProfile(port: number, seconds: number): Promise<Profile> {
  const ws = new WebSocket(await debuggerUrl(port, 600_000));
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let next = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.onmessage = (e) => {
    const message = JSON.parse(e.data);
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  };
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 500 });
  await send("Profiler.start");
  Deno.stderr.writeSync(new TextEncoder().encode(`profiling for ${seconds} s\n`));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { profile } = await send("Profiler.stop") as { profile: Profile };
  ws.close();
  return profile;
}

if (import.meta.main) {
  const arg = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const profile = await takeProfile(Number(arg("port") ?? 9339), Number(arg("seconds") ?? 30));
  const out = arg("out");
  if (out) await Deno.writeTextFile(out, JSON.stringify(profile));
  const top = Number(arg("top") ?? 40);
  const { functions, modules } = summarize(profile);
  const total = modules.reduce((a, [, ms]) => a + ms, 0);
  const lines = [
    `total ${Math.round(total)} ms sampled`,
    "",
    "by module (self ms):",
    ...modules.slice(0, top).map(([m, ms]) => `${ms.toFixed(0).padStart(8)}  ${m}`),
    "",
    "by function (self ms):",
    ...functions.slice(0, top).map(([f, ms]) => `${ms.toFixed(0).padStart(8)}  ${f}`),
  ];
  Deno.stdout.writeSync(new TextEncoder().encode(lines.join("\n") + "\n"));
}
