/**
 * @module
 * The quay-bridge command line: parses flags and environment once, then starts the chosen command.
 * Signals become one AbortController: the first SIGINT/SIGTERM shuts down gracefully, a second one
 * exits at once.
 */
import { type Config, parseConfig, PROXY_VARIABLES, USAGE, UsageError } from "./src/config.ts";
import { configureProxy } from "./src/http/transport.ts";
import { createLogger } from "./src/log.ts";
import { oneLine, permissionFailure, STARTUP_EXIT_CODE } from "./src/cli/startup.ts";
import { VERSION } from "./src/version.ts";

function readInClusterNamespace(): string | undefined {
  try {
    return Deno.readTextFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace").trim() ||
      undefined;
  } catch {
    return undefined;
  }
}

function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) Deno.exit(130);
    controller.abort();
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(sig, onSignal);
    } catch {
      // Signals are not available on every platform; Ctrl-C still ends the process.
    }
  }
  return controller.signal;
}

function write(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text));
}

/**
 * One line on stderr for a failure before the command runs: JSON for `run` (whose every line is a
 * JSON log line), plain text otherwise.
 */
function startupFailure(args: readonly string[], message: string, fix: string): number {
  const run = args.find((a) => !a.startsWith("-")) === "run";
  const line = run
    ? JSON.stringify({
      time: new Date().toISOString(),
      level: "error",
      msg: "cannot start",
      error: message,
      fix,
    })
    : `quay-bridge: ${message}; ${fix}`;
  Deno.stderr.writeSync(new TextEncoder().encode(oneLine(line) + "\n"));
  return STARTUP_EXIT_CODE;
}

async function main(args: string[]): Promise<number> {
  let config: Config;
  try {
    config = parseConfig({
      args,
      env: (name) => Deno.env.get(name),
      inClusterNamespace: readInClusterNamespace,
    });
  } catch (error) {
    if (error instanceof UsageError) {
      return startupFailure(args, error.message, `"quay-bridge --help" lists the flags and their values`);
    }
    const permission = permissionFailure(error);
    if (permission) return startupFailure(args, permission.message, permission.fix);
    throw error;
  }
  // The operator decides per request with Go's NO_PROXY rules; Deno's fetch would otherwise apply its
  // own reading of the same variables to every client it creates, so they are cleared once read.
  configureProxy(config.proxy);
  for (const name of PROXY_VARIABLES) Deno.env.delete(name);
  if (config.command === "help" || config.help) {
    write(USAGE);
    return 0;
  }
  try {
    return await runCommand(config);
  } catch (error) {
    // A command that could not even begin (a permission the process lacks) is a start-up failure.
    const permission = permissionFailure(error);
    if (permission) return startupFailure(args, permission.message, permission.fix);
    throw error;
  }
}

async function runCommand(config: Config): Promise<number> {
  const logger = createLogger({ level: config.logLevel, fields: { component: "quay-bridge" } });
  switch (config.command) {
    case "version":
      write(`quay-bridge ${VERSION} (deno ${Deno.version.deno})\n`);
      return 0;
    case "run": {
      const { runOperator } = await import("./src/cli/run.ts");
      return await runOperator({ config, logger, signal: shutdownSignal() });
    }
    case "check": {
      const { runCheck } = await import("./src/cli/check.ts");
      return await runCheck({ config, write });
    }
    case "plan": {
      const { runPlan } = await import("./src/cli/plan.ts");
      return await runPlan({ config, write });
    }
    case "demo": {
      // The demo world loads @kubernetes/client-node whole, whose punycode import would print a
      // DeprecationWarning; `run` never loads it, and `node:process` (which silences it) costs memory.
      await import("./src/quiet_deprecations.ts");
      // The demo world is test infrastructure and is not part of the compiled binary: it is loaded
      // from the source tree by a computed specifier the bundler does not follow.
      const demo = ["tests", "demo", "mod.ts"].join("/");
      let mod: {
        runDemo(o: { config: Config; write: (t: string) => void; signal: AbortSignal }): Promise<number>;
      };
      try {
        mod = await import(new URL(`./${demo}`, import.meta.url).href);
      } catch (error) {
        Deno.stderr.writeSync(new TextEncoder().encode(
          `The demo needs the source checkout (it runs the test world from tests/): ` +
            `run it with "deno task demo" from a clone. (${(error as Error).message})\n`,
        ));
        return 1;
      }
      return await mod.runDemo({ config, write, signal: shutdownSignal() });
    }
  }
  return 2;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
