/**
 * @module
 * The operator against the real Quay on the real kube-apiserver: a project deleted and re-created
 * with the same name is synced again within 90 s, although Quay holds a deleted organization's name
 * until its namespace GC has run (400 "Username is not available" until then).
 */
import { synced, until, withOperator } from "./operator.ts";
import { deleteOrganization, startRealQuay, uniqueName } from "./mod.ts";

Deno.test("a project deleted and re-created with the same name is synced again within 90 s (real Quay)", async () => {
  const quay = await startRealQuay();
  const project = uniqueName("rq-again-");
  const org = `openshift_${project}`;
  try {
    await withOperator(quay, quay.token, async ({ kube, lines }) => {
      await kube.ok("POST", "/api/v1/namespaces", { metadata: { name: project } });
      await synced(quay, org, 120_000);
      await kube.ok("DELETE", `/api/v1/namespaces/${project}`);
      await until("the organization to go", 120_000, async () => {
        return (await quay.api("GET", `/api/v1/organization/${org}`)).status === 404 ? true : undefined;
      });
      await until("the namespace to go", 120_000, async () => {
        return (await kube.call("GET", `/api/v1/namespaces/${project}`)).status === 404 ? true : undefined;
      });
      const started = Date.now();
      await kube.ok("POST", "/api/v1/namespaces", { metadata: { name: project } });
      try {
        await synced(quay, org, 90_000);
      } catch (error) {
        throw new Error(`${(error as Error).message}\n--- operator ---\n${lines()}`);
      }
      // deno-lint-ignore no-console
      console.log(`re-created project synced again in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  } finally {
    await deleteOrganization(quay, org);
  }
});
