/**
 * @module
 * `deno task world --state-out <file>`: serves the test world until SIGINT or SIGTERM, for poking at
 * with `kubectl` or running the operator against by hand. Writes `{kubeconfig, quayUrl, quayToken,
 * registryHost, caFile}` to the state file (removed again on exit), then prints the single line
 * `world ready`.
 */
import { startWorld } from "./mod.ts";

function write(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text));
}

function stateOutOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--state-out") return args[i + 1];
    if (arg.startsWith("--state-out=")) return arg.slice("--state-out=".length);
  }
  return undefined;
}

async function main(): Promise<number> {
  const stateOut = stateOutOf(Deno.args);
  const world = await startWorld();
  const state = {
    kubeconfig: world.kubeconfigPath,
    quayUrl: world.quayUrl,
    quayToken: world.quayToken,
    registryHost: world.registryHost,
    caFile: world.quayCaFile,
  };
  if (stateOut) await Deno.writeTextFile(stateOut, JSON.stringify(state, null, 2) + "\n");
  const stopped = Promise.withResolvers<void>();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, () => stopped.resolve());
  write("world ready\n");
  await stopped.promise;
  await world.close();
  if (stateOut) await Deno.remove(stateOut).catch(() => {});
  return 0;
}

if (import.meta.main) Deno.exit(await main());
