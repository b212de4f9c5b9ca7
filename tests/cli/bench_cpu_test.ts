/**
 * @module
 * The benchmark's CPU accounting (`bench/cpu.ts`): the parse of `/proc/<pid>/stat`, and a meter run on a
 * real spinning process.
 */
import assert from "node:assert/strict";
import { cpuMeter, cpuSeconds, parseCpuSeconds, pidsWithArgument } from "../../bench/cpu.ts";

Deno.test("parseCpuSeconds adds utime and stime, even with spaces and parentheses in the command name", () => {
  const rest = "S 1 1 1 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 0 0";
  assert.equal(parseCpuSeconds(`1234 (deno) ${rest}`), 3.25);
  assert.equal(parseCpuSeconds(`1234 (a (b) c) ${rest}`), 3.25);
  assert.equal(parseCpuSeconds("garbage"), undefined);
  assert.equal(parseCpuSeconds("1 (x) S 1"), undefined);
});

Deno.test("cpuMeter measures the CPU a process spends, and finds processes by an argument", async () => {
  const marker = `cpu-meter-${crypto.randomUUID()}`;
  const child = new Deno.Command("sh", {
    args: ["-c", `i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; sleep 5 # ${marker}`],
    stdout: "null",
  }).spawn();
  try {
    const [pid] = await pidsWithArgument(marker);
    assert.equal(pid, child.pid);
    const meter = await cpuMeter({ busy: [pid], both: [pid, Deno.pid], none: [] });
    const started = performance.now();
    // The shell spins, then sleeps: wait until it has used some CPU.
    while (((await cpuSeconds(child.pid)) ?? 0) < 0.2 && performance.now() - started < 4_000) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const spent = await meter.stop();
    assert.ok((spent.busy ?? 0) >= 0.1, `busy ${spent.busy}`);
    assert.ok((spent.both ?? 0) >= (spent.busy ?? 0));
    assert.equal(spent.none, null);
  } finally {
    child.kill();
    await child.status;
  }
});
