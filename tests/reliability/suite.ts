/**
 * @module
 * Shared parts of the reliability suite: its size (`RELIABILITY_SIZE=large` runs it at the sizes
 * the README's table reports; the default is small enough for every CI run), the figures each
 * test prints (`reliability: <what>: tried N, held M`), the exact final state a run must reach,
 * and the check that no token appears in any output.
 */
import assert from "node:assert/strict";
import { type Bridge, synced, until } from "../integration/harness.ts";

/** True when the suite runs at full size. */
export const LARGE = Deno.env.get("RELIABILITY_SIZE") === "large";

/** `small` in CI, `large` with `RELIABILITY_SIZE=large`. */
export function size(small: number, large: number): number {
  return LARGE ? large : small;
}

/** Prints one figure line of the suite. */
export function figure(what: string, tried: number, held: number, detail = ""): void {
  Deno.stdout.writeSync(
    new TextEncoder().encode(
      `reliability: ${what}: tried ${tried}, held ${held}${detail ? ` (${detail})` : ""}\n`,
    ),
  );
}

/** The organization of a project under the default integration. */
export function org(ns: string): string {
  return `openshift_${ns}`;
}

/**
 * Waits until Quay and the cluster are exactly as they should be: each `live` project synced
 * with its organization and exactly its three robots, each `gone` namespace deleted with its
 * organization, and no other organization of the integration in Quay.
 */
export async function exactState(
  b: Bridge,
  live: readonly string[],
  gone: readonly string[],
  timeoutMs = 120_000,
): Promise<void> {
  for (const ns of live) await synced(b, ns, { timeoutMs });
  await until("exact state", async () => {
    for (const ns of gone) {
      if ((await b.kube.call("GET", `/api/v1/namespaces/${ns}`)).status !== 404) return false;
    }
    const user = await b.quay.ok("GET", "/api/v1/user/");
    const orgs = (user.organizations as { name: string }[]).map((o) => o.name)
      .filter((n) => n.startsWith("openshift_")).sort();
    if (JSON.stringify(orgs) !== JSON.stringify(live.map(org).sort())) return false;
    for (const ns of live) {
      const robots = await b.quay.ok("GET", `/api/v1/organization/${org(ns)}/robots`);
      const names = (robots.robots as { name: string }[]).map((r) => r.name).sort();
      const want = ["builder", "default", "deployer"].map((sa) => `${org(ns)}+${sa}`);
      if (JSON.stringify(names) !== JSON.stringify(want)) return false;
    }
    return true;
  }, timeoutMs);
}

/** Every secret value a run could leak: the Quay token, the operator's, and each robot's. */
export async function secretsOf(b: Bridge, live: readonly string[]): Promise<string[]> {
  const tokens = [b.quayWorld.adminToken];
  for (const ns of live) {
    const robots = await b.quay.ok("GET", `/api/v1/organization/${org(ns)}/robots?token=true`);
    for (const r of robots.robots as { token: string }[]) tokens.push(r.token);
  }
  const kubeconfig = await Deno.readTextFile(b.kubeconfig);
  const operatorToken = /token: (\S+)/.exec(kubeconfig)?.[1];
  if (operatorToken) tokens.push(operatorToken);
  return tokens.filter((t) => t.length >= 8);
}

/** Asserts that no secret appears in `output`; returns how many were checked. */
export function assertNoSecret(output: string, secrets: readonly string[]): number {
  for (const secret of secrets) {
    assert.ok(!output.includes(secret), `a token (${secret.slice(0, 4)}…) appears in the output`);
    const b64 = btoa(secret);
    assert.ok(!output.includes(b64), `a token (${secret.slice(0, 4)}…) appears base64-encoded in the output`);
  }
  return secrets.length;
}
