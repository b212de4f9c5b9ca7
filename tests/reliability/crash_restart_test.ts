/**
 * Crash-restart: the operator is SIGKILLed at random points while projects are provisioned and
 * deleted, many times in a row; one last run must reach the exact state (every live project synced
 * with exactly its organization and robots, every deleted one gone with its organization), and no
 * token appears in any output.
 */
import { OPERATOR_NAMESPACE, startBridge } from "../integration/harness.ts";
import { type OperatorProcess, startOperatorProcess } from "../cli/process.ts";
import { assertNoSecret, exactState, figure, secretsOf, size } from "./suite.ts";
import { seededRandom } from "../world/quay/faults.ts";

const KILLS = size(6, 50);

Deno.test(`crash-restart: ${KILLS} SIGKILLs during provisioning and deletion, then the exact state`, async () => {
  const b = await startBridge({ start: false });
  const random = seededRandom(Number(Deno.env.get("RELIABILITY_SEED") ?? 12));
  const output: string[] = [];
  const start = (): OperatorProcess =>
    startOperatorProcess([
      "--kubeconfig",
      b.kubeconfig,
      "--namespace",
      OPERATOR_NAMESPACE,
      "--pod-name",
      "crashing",
      "--webhook-mode",
      "off",
      "--ops-port",
      "0",
    ], { NO_PROXY: "localhost,127.0.0.1" });
  const live: string[] = [];
  const gone: string[] = [];
  let last: OperatorProcess | undefined;
  try {
    for (let round = 0; round < KILLS; round++) {
      const p = start();
      if (live.length < 2 || random() < 0.6) {
        for (const ns of [`crash-${round}-a`, `crash-${round}-b`]) {
          await b.createProject(ns);
          live.push(ns);
        }
      } else {
        const [ns] = live.splice(Math.floor(random() * live.length), 1);
        if (ns) {
          await b.kube.ok("DELETE", `/api/v1/namespaces/${ns}`);
          gone.push(ns);
        }
      }
      await new Promise((r) => setTimeout(r, 100 + random() * 1_900));
      p.kill("SIGKILL");
      await p.status;
      output.push(...p.lines);
    }
    last = start();
    await exactState(b, live, gone);
    last.kill("SIGTERM");
    await last.status;
    output.push(...last.lines);
    const checked = assertNoSecret(output.join("\n"), await secretsOf(b, live));
    figure(
      "crash-restart",
      KILLS,
      KILLS,
      `${live.length} live and ${gone.length} deleted namespaces exact; ${checked} tokens absent from ` +
        `${output.length} log lines`,
    );
  } finally {
    last?.kill("SIGKILL");
    await last?.status;
    await b.close();
  }
});
