/**
 * @module
 * The flag table of docs/configuration.md as {@linkcode FLAGS} renders it: one row per flag with its
 * synopsis, environment variables, default and meaning. The help test compares the document with
 * this; `deno run -A tests/cli/flags_table.ts` prints the rows to paste after a change to FLAGS.
 */
import { flagEnvNames, FLAGS, type FlagSpec, shownDefault } from "../../src/config.ts";

/** The cells of a flag's row. */
export function flagDocCells(f: FlagSpec): [string, string, string, string] {
  const long = `\`--${f.name}${f.placeholder ? ` ${f.placeholder}` : ""}\``;
  const flag = f.short ? `${long} (\`-${f.short}\`)` : long;
  const env = flagEnvNames(f).map((e) => `\`${e}\``).join(", ") || "—";
  const def = f.default !== undefined && f.shownDefault === undefined ? `\`${f.default}\`` : shownDefault(f);
  return [flag, env, def, f.doc ?? f.help];
}

/** The header and rows of the table. */
export function flagDocTable(): string {
  const rows = [
    "| flag | environment | default | meaning |",
    "| --- | --- | --- | --- |",
    ...FLAGS.map((f) => `| ${flagDocCells(f).join(" | ")} |`),
  ];
  return rows.join("\n") + "\n";
}

if (import.meta.main) Deno.stdout.writeSync(new TextEncoder().encode(flagDocTable()));
