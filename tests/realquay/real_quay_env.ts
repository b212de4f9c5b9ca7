/**
 * @module
 * Where the real Quay for these tests is: `QUAY_URL`, `QUAY_TOKEN` (super user) and `QUAY_CA` (PEM
 * file) in the environment, or the `quay.env` that `quay-server/start.sh` writes to
 * `~/.cache/quay-bridge/realquay/`. Throws a message saying so when neither is there.
 */

/** The real Quay's URL, super-user token and CA. */
export function realQuay(): { url: string; token: string; caPem: string } {
  let env: Record<string, string | undefined> = {
    QUAY_URL: Deno.env.get("QUAY_URL"),
    QUAY_TOKEN: Deno.env.get("QUAY_TOKEN"),
    QUAY_CA: Deno.env.get("QUAY_CA"),
  };
  if (!env.QUAY_URL) {
    const file = `${Deno.env.get("HOME")}/.cache/quay-bridge/realquay/quay.env`;
    try {
      env = Object.fromEntries(
        Deno.readTextFileSync(file).split("\n").filter((l) => l.includes("=")).map((l) => {
          const at = l.indexOf("=");
          return [l.slice(0, at), l.slice(at + 1)];
        }),
      );
    } catch {
      throw new Error(
        `No real Quay: set QUAY_URL, QUAY_TOKEN and QUAY_CA, or start one with quay-server/start.sh (${file})`,
      );
    }
  }
  if (!env.QUAY_URL || !env.QUAY_TOKEN || !env.QUAY_CA) {
    throw new Error("QUAY_URL, QUAY_TOKEN and QUAY_CA are needed");
  }
  return { url: env.QUAY_URL, token: env.QUAY_TOKEN, caPem: Deno.readTextFileSync(env.QUAY_CA) };
}
