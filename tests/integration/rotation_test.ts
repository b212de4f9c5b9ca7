/**
 * Robot credential rotation against the test world (`rotation_scenario.ts`): the world's Quay
 * regenerates tokens as the real one does and its registry refuses the old token at once.
 */
import { startBridge } from "./harness.ts";
import { rotationScenario } from "./rotation_scenario.ts";

Deno.test("rotation: on request and by the interval across restarts; the old token refused, the new one pulls (world)", async () => {
  const b = await startBridge({ integrationSpec: { credentialRotation: { interval: "1h" } } });
  try {
    await b.createProject("rotate");
    await rotationScenario({
      b,
      quay: b.quay,
      registryUrl: b.quayWorld.url,
      registryHost: b.quayWorld.registryHost,
      caPem: b.quayWorld.caPem,
      namespace: "rotate",
      organization: "openshift_rotate",
      clusterId: "openshift",
      flags: [],
    });
  } finally {
    await b.close();
  }
});
