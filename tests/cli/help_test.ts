/**
 * `--help`, docs/configuration.md and the parser tell the same story: every flag the parser accepts
 * is in `--help` with its environment variables and default, and in the documentation's table with
 * the same synopsis, variables, default and meaning; nothing is documented that the parser refuses.
 */
import assert from "node:assert/strict";
import {
  flagEnvName,
  flagEnvNames,
  FLAGS,
  flagSynopsis,
  parseConfig,
  shownDefault,
} from "../../src/config.ts";
import { flagDocCells, flagDocTable } from "./flags_table.ts";
import { runCli } from "./process.ts";

const DOC = await Deno.readTextFile(new URL("../../docs/configuration.md", import.meta.url));

/** The rows of the flag table in the docs, as trimmed cells. */
function docRows(): string[][] {
  const start = DOC.indexOf("| flag ");
  assert.ok(start >= 0, "docs/configuration.md has no flag table");
  const rows: string[][] = [];
  for (const line of DOC.slice(start).split("\n").slice(2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.slice(1, -1).split(" | ").map((c) => c.trim()));
  }
  return rows;
}

Deno.test("docs/configuration.md documents exactly the parser's flags, with variables and defaults", () => {
  const rows = docRows();
  const expected = FLAGS.map(flagDocCells);
  assert.deepEqual(
    rows,
    expected,
    `the flag table differs from FLAGS; the rows FLAGS gives are:\n${flagDocTable()}`,
  );
});

Deno.test("--help lists every flag with its environment variables and default", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  const lines = help.stdout.split("\n");
  const listed = lines.map((l) => /^\s{2}(-{1,2}\S.*?)\s{2,}/.exec(l)?.[1]).filter((x) => x !== undefined);
  assert.deepEqual(listed, FLAGS.map(flagSynopsis), "the flags of --help differ from the parser's table");
  for (const f of FLAGS) {
    const i = lines.findIndex((l) => l.trimStart().startsWith(flagSynopsis(f) + " "));
    const details = lines[i + 1] ?? "";
    for (const env of flagEnvNames(f)) {
      assert.ok(details.includes(env), `--help does not show ${env} for --${f.name}: ${details}`);
    }
    assert.ok(details.includes(`default: ${shownDefault(f)}`), `--help lacks the default of --${f.name}`);
    assert.ok(lines[i]?.includes(f.help), `--help lacks the description of --${f.name}`);
  }
  for (
    const flag of ["--lease-duration", "--renew-deadline", "--retry-period", "--ops-host", "--webhook-host"]
  ) {
    assert.ok(help.stdout.includes(flag), `--help lacks ${flag}`);
  }
  assert.match(help.stdout, /-o, --output <fmt>/);
});

Deno.test("every flag of the table is accepted by the parser, from the command line and the environment", () => {
  const sample: Record<string, string> = {
    duration: "3s",
    port: "1234",
    count: "3",
    bool: "false",
    string: "x",
  };
  for (const f of FLAGS) {
    if (f.kind === "switch") {
      const on = parseConfig({ args: ["demo", `--${f.name}`], env: () => undefined });
      if (f.commandLineOnly) continue;
      const fromEnv = parseConfig({
        args: ["demo"],
        env: (n) => (n === flagEnvName(f.name) ? "true" : undefined),
      });
      assert.deepEqual(
        { ...fromEnv, podName: "" },
        { ...on, podName: "" },
        `--${f.name} and its variable disagree`,
      );
      continue;
    }
    const value = typeof f.kind === "object" ? f.kind.oneOf[0] as string : sample[f.kind] as string;
    const fromFlag = parseConfig({ args: ["run", `--${f.name}`, value], env: () => undefined });
    const fromEnv = parseConfig({
      args: ["run"],
      env: (name) => (name === flagEnvName(f.name) ? value : undefined),
    });
    assert.deepEqual(
      { ...fromFlag, podName: f.name === "pod-name" ? fromFlag.podName : "" },
      { ...fromEnv, podName: f.name === "pod-name" ? fromEnv.podName : "" },
      `--${f.name} and ${flagEnvName(f.name)} disagree`,
    );
  }
  // Defaults in the table are the parser's defaults.
  const defaults = parseConfig({ args: ["run"], env: () => undefined });
  assert.equal(defaults.resyncMs, 600_000);
  assert.equal(defaults.opsPort, Number(FLAGS.find((f) => f.name === "ops-port")?.default));
  assert.equal(defaults.webhookHost, FLAGS.find((f) => f.name === "webhook-host")?.default);
});
