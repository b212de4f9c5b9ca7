/**
 * @module
 * The build commands of the Containerfile, read from it so that the tests and the idle-memory benchmark
 * build and run the program the image builds: the `deno bundle` command (its output directory and
 * entry), and the flags `deno compile` bakes into the binary, as `deno run` flags for the bundle.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The Containerfile's text. */
export function readContainerfile(): string {
  return Deno.readTextFileSync(ROOT + "Containerfile");
}

/** The words of the first `deno <command> …` of the Containerfile (continuation lines joined). */
function commandWords(containerfile: string, command: "bundle" | "compile"): string[] {
  const joined = containerfile.replace(/\\\n/g, " ");
  // A command of a RUN instruction, not a mention in a comment.
  const m = new RegExp(`(?:^RUN|&&) +deno ${command} ([^\\n&]*)`, "m").exec(joined);
  assert.ok(m, `no deno ${command} in the Containerfile`);
  return (m[1] as string).trim().split(/\s+/);
}

/** The flags of the `deno compile` command. */
export function compileFlags(containerfile = readContainerfile()): string[] {
  return commandWords(containerfile, "compile").filter((w) => w.startsWith("--"));
}

/** The program `deno compile` compiles (its last word). */
export function compileEntry(containerfile = readContainerfile()): string {
  return commandWords(containerfile, "compile").at(-1) as string;
}

/** The `deno bundle` command: its arguments and the output directory they name. */
export function bundleCommand(containerfile = readContainerfile()): { args: string[]; outdir: string } {
  const args = commandWords(containerfile, "bundle");
  const at = args.indexOf("--outdir");
  assert.ok(at >= 0 && args[at + 1], "the Containerfile's deno bundle has no --outdir <dir>");
  return { args, outdir: args[at + 1] as string };
}

/**
 * `deno bundle` as the Containerfile runs it, into `outdir` instead of the build stage's directory;
 * returns the path of the entry `deno compile` compiles, inside `outdir`.
 */
export async function bundleLikeContainerfile(outdir: string): Promise<string> {
  const { args, outdir: built } = bundleCommand();
  const entry = compileEntry();
  assert.ok(entry.startsWith(built + "/"), `deno compile compiles ${entry}, not a file of ${built}`);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", ...args.map((a) => a === built ? outdir : a)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return outdir + entry.slice(built.length);
}

/**
 * The `deno run` flags that run the bundle as the compiled binary runs (the runtime flags `deno compile`
 * bakes in: permissions, V8 flags), with `extraRead` added to `--allow-read` (a kubeconfig outside the
 * container's paths).
 */
export function bundleRunFlags(extraRead: string[] = []): string[] {
  return compileFlags()
    .filter((f) => !["--no-config", "--no-check"].includes(f) && !f.startsWith("--output"))
    .map((f) => f.startsWith("--allow-read=") && extraRead.length ? `${f},${extraRead.join(",")}` : f);
}
