import assert from "node:assert/strict";
import { parseArgs as nodeParseArgs } from "node:util";
import { ArgsError, type ArgsOptions, parseArgs } from "./args.ts";

const OPTIONS: ArgsOptions = {
  kubeconfig: { type: "string" },
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
  verbose: { type: "boolean", short: "v" },
};

/** Command lines both parsers accept: the results must agree with Node's `util.parseArgs`. */
const ACCEPTED: string[][] = [
  [],
  ["run"],
  ["run", "--kubeconfig", "/k"],
  ["run", "--kubeconfig=/k"],
  ["run", "--kubeconfig="],
  ["--kubeconfig=a=b", "plan"],
  ["check", "-o", "json"],
  ["check", "-ojson"],
  ["-hv", "run"],
  ["-vo", "json"],
  ["--help", "--kubeconfig", "/a", "--kubeconfig", "/b"],
  ["run", "--", "--help", "-o"],
  ["-", "run"],
  ["--kubeconfig", "-"],
];

Deno.test("parseArgs: the same values and positionals as Node's util.parseArgs", () => {
  for (const args of ACCEPTED) {
    const node = nodeParseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
    const ours = parseArgs(args, OPTIONS);
    assert.deepEqual(ours.values, { ...node.values }, args.join(" "));
    assert.deepEqual(ours.positionals, node.positionals, args.join(" "));
  }
});

/** Command lines both refuse, with the flag ours names. */
const REFUSED: [string[], ArgsError["kind"], string][] = [
  [["run", "--frobnicate"], "unknown", "--frobnicate"],
  [["run", "-x"], "unknown", "-x"],
  [["-hx"], "unknown", "-x"],
  [["plan", "--kubeconfig"], "missing-value", "--kubeconfig"],
  [["plan", "--kubeconfig", "--help"], "missing-value", "--kubeconfig"],
  [["check", "-o"], "missing-value", "-o"],
  [["--help=yes"], "unexpected-value", "--help"],
];

Deno.test("parseArgs: refuses what Node's strict util.parseArgs refuses, naming the flag", () => {
  for (const [args, kind, flag] of REFUSED) {
    assert.throws(() => nodeParseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true }));
    assert.throws(
      () => parseArgs(args, OPTIONS),
      (e: unknown) =>
        e instanceof ArgsError && e.kind === kind && e.flag === flag && e.message.includes(flag),
      args.join(" "),
    );
  }
  assert.match(
    (() => {
      try {
        parseArgs(["--kubeconfig"], OPTIONS);
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })(),
    /^--kubeconfig needs a value \(--kubeconfig <value> or --kubeconfig=<value>\)$/,
  );
});
