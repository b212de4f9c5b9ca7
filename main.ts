/**
 * @module
 * The quay-bridge command line: parses flags and environment once, then starts the chosen command.
 * Signals become one AbortController: the first SIGINT/SIGTERM shuts down gracefully, a second one
 * exits at once.
 */
import "./src/quiet_deprecations.ts";
import { type Config, parseConfig, USAGE, UsageError } from "./src/config.ts";
import { createLogger } from "./src/log.ts";
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

async function main(args: string[]): Promise<number> {
  let config: Config;
  try {
    config = parseConfig({
      args,
      env: (name) => Deno.env.get(name),
      inClusterNamespace: readInClusterNamespace,
    });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    Deno.stderr.writeSync(new TextEncoder().encode(`error: ${error.message}\n\n${USAGE}`));
    return 2;
  }
  if (config.command === "help" || config.help) {
    write(USAGE);
    return 0;
  }
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
