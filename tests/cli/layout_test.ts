/**
 * The operator's code never depends on test infrastructure: nothing under src/ imports tests/
 * (the compiled binary must not carry the test world).
 */
import assert from "node:assert/strict";

Deno.test("src/ never imports from tests/", async () => {
  const offenders: string[] = [];
  const walk = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(url);
        for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) {
          if (m[1]?.includes("tests/")) offenders.push(`${url.pathname}: ${m[1]}`);
        }
      }
    }
  };
  await walk(new URL("../../src/", import.meta.url));
  assert.deepEqual(offenders, []);
});
