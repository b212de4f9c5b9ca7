/**
 * @module
 * A token revoked in Quay must turn `CredentialsValid` False with reason `TokenInvalid` within 60 s.
 * Quay answers a revoked token as anonymous (the CSRF 403 on writes); the Quay client turns that into
 * `TokenInvalid` at the first call, and the reconcile reports it to the integration's status at once.
 */
import assert from "node:assert/strict";
import { synced, until, withOperator } from "./operator.ts";
import { deleteOrganization, quayToken, startRealQuay, uniqueName } from "./mod.ts";

Deno.test("a token revoked in Quay turns CredentialsValid False with TokenInvalid within 60 s (real Quay)", async () => {
  const quay = await startRealQuay();
  const token = await quayToken(quay, "mint");
  const project = uniqueName("rq-revoke-");
  const org = `openshift_${project}`;
  try {
    await withOperator(quay, token, async ({ kube, lines }) => {
      await kube.ok("POST", "/api/v1/namespaces", { metadata: { name: project } });
      await synced(quay, org, 120_000);
      const condition = async () => {
        const cr = await kube.ok("GET", "/apis/quay.redhat.com/v1/quayintegrations/quay");
        return (cr.status?.conditions ?? []).find((c: { type: string }) => c.type === "CredentialsValid") as
          | { status: string; reason: string; message: string }
          | undefined;
      };
      await until(
        "CredentialsValid True",
        60_000,
        async () => (await condition())?.status === "True" || undefined,
      );
      assert.equal(await quayToken(quay, "revoke", token), "1");
      const started = Date.now();
      // The next thing the operator does with Quay meets the revoked token.
      await kube.ok("POST", "/api/v1/namespaces", { metadata: { name: `${project}-b` } });
      let last: unknown;
      try {
        await until("CredentialsValid False with reason TokenInvalid", 60_000, async () => {
          last = await condition();
          const c = last as { status: string; reason: string } | undefined;
          return c?.status === "False" && c.reason === "TokenInvalid" ? true : undefined;
        });
      } catch (error) {
        throw new Error(
          `${(error as Error).message}; last ${JSON.stringify(last)}\n--- operator ---\n${lines()}`,
        );
      }
      // deno-lint-ignore no-console
      console.log(`revoked token reported in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  } finally {
    await deleteOrganization(quay, org);
    await deleteOrganization(quay, `${org}-b`);
  }
});
