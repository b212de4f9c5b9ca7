/**
 * @module
 * CPU time of processes, from `/proc/<pid>/stat`: what a burst cost each process on the shared
 * cores (the operator, the kube-apiserver, the bench process serving the test-world Quay). On two
 * cores a burst's time to converge is bounded by the CPU all three need, so these figures say where
 * that time went, and they do not move with the machine's speed as much as the times do.
 */

/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux everywhere in practice). */
const TICKS_PER_SECOND = 100;

/** User plus system CPU seconds of one `/proc/<pid>/stat` line. */
export function parseCpuSeconds(stat: string): number | undefined {
  // The command name (field 2) is in parentheses and may hold spaces: fields are counted after it.
  const close = stat.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = stat.slice(close + 2).trim().split(/\s+/);
  // Fields 14 (utime) and 15 (stime) of proc(5); the first after ')' is field 3.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / TICKS_PER_SECOND;
}

/**
 * CPU seconds each of `pids` has used so far (absent: gone). Read through `cat`, as `rssMiB` reads
 * `/proc`: Deno lets a program read `/proc` itself only with `--allow-all`.
 */
export async function cpuSecondsOf(pids: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (pids.length === 0) return out;
  const output = await new Deno.Command("cat", {
    args: pids.map((pid) => `/proc/${pid}/stat`),
    stdout: "piped",
    stderr: "null",
  }).output();
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    const pid = Number(/^(\d+) /.exec(line)?.[1]);
    const seconds = parseCpuSeconds(line);
    if (Number.isInteger(pid) && seconds !== undefined) out.set(pid, seconds);
  }
  return out;
}

/** CPU seconds `pid` has used so far; undefined once it is gone. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  return (await cpuSecondsOf([pid])).get(pid);
}

/**
 * Pids of processes whose command line matches `needle` (e.g. a cluster's temp dir), by `pgrep -f`:
 * Deno lets a program list `/proc` only with `--allow-all`, and the bench runs without it. `pgrep`
 * reads `needle` as an extended regular expression; a path's dots then match any character, which
 * is harmless for a temp dir's unique name.
 */
export async function pidsWithArgument(needle: string): Promise<number[]> {
  const output = await new Deno.Command("pgrep", {
    args: ["-f", "--", needle],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  return new TextDecoder().decode(output.stdout).split("\n").filter((line) => /^\d+$/.test(line)).map(Number);
}

/**
 * CPU seconds each named group of processes used between the meter's start and `stop` (the sum over
 * its pids; null for a group with a process that went away, or none).
 */
export async function cpuMeter(
  groups: Readonly<Record<string, readonly number[]>>,
): Promise<{ stop(): Promise<Record<string, number | null>> }> {
  const read = async () => {
    const seconds = await cpuSecondsOf([...new Set(Object.values(groups).flat())]);
    const out: Record<string, number | undefined> = {};
    for (const [name, pids] of Object.entries(groups)) {
      const each = pids.map((pid) => seconds.get(pid));
      out[name] = pids.length === 0 || each.some((s) => s === undefined)
        ? undefined
        : each.reduce((a: number, s) => a + (s as number), 0);
    }
    return out;
  };
  const before = await read();
  return {
    async stop() {
      const after = await read();
      return Object.fromEntries(
        Object.keys(groups).map((name) => {
          const a = after[name];
          const b = before[name];
          return [name, a === undefined || b === undefined ? null : Math.round((a - b) * 100) / 100];
        }),
      );
    },
  };
}
