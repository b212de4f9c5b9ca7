/**
 * CustomResourceDefinitions: a created CRD is established and served, its schema validates,
 * defaults and prunes custom resources, its status subresource and printer columns work, and
 * deleting it stops serving and removes its objects.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { eventually, withWorld } from "./test_helpers.ts";

const QI_CRD = parse(
  await Deno.readTextFile(
    new URL("../../../deploy/crds/quay.redhat.com_quayintegrations.yaml", import.meta.url),
  ),
);
const QIS = "/apis/quay.redhat.com/v1/quayintegrations";

function widgetCrd(): Record<string, unknown> {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "widgets.example.com" },
    spec: {
      group: "example.com",
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", shortNames: ["wd"] },
      versions: [{
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: "Size", type: "integer", jsonPath: ".spec.size" },
          { name: "Phase", type: "string", jsonPath: ".status.phase" },
        ],
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                properties: {
                  size: { type: "integer", minimum: 1, maximum: 10, default: 3 },
                  color: { type: "string", enum: ["red", "blue"] },
                  extra: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                  ports: {
                    type: "array",
                    maxItems: 2,
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    items: {
                      type: "object",
                      required: ["name"],
                      properties: { name: { type: "string" }, port: { type: "integer" } },
                    },
                  },
                },
              },
              status: { type: "object", properties: { phase: { type: "string" } } },
            },
          },
        },
      }],
    },
  };
}

Deno.test("a created CRD is established, listed in discovery and served", async () => {
  await withWorld({}, async ({ request }) => {
    const created = await request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
      body: widgetCrd(),
    });
    assert.equal(created.status, 201);
    const conditions = created.body.status.conditions.map((c: { type: string; status: string }) =>
      `${c.type}=${c.status}`
    );
    assert.deepEqual(conditions, ["NamesAccepted=True", "Established=True"]);
    assert.deepEqual(created.body.status.storedVersions, ["v1"]);
    assert.deepEqual(created.body.metadata.finalizers, ["customresourcecleanup.apiextensions.k8s.io"]);
    const groups = await request("GET", "/apis");
    assert.ok(groups.body.groups.some((g: { name: string }) => g.name === "example.com"));
    const resources = await request("GET", "/apis/example.com/v1");
    assert.deepEqual(resources.body.resources.map((r: { name: string }) => r.name), [
      "widgets",
      "widgets/status",
    ]);
    assert.deepEqual(resources.body.resources[0].shortNames, ["wd"]);
    const list = await request("GET", "/apis/example.com/v1/namespaces/default/widgets");
    assert.equal(list.status, 200);
    assert.equal(list.body.kind, "WidgetList");
  });
});

Deno.test("custom resources are validated against the CRD schema with the apiserver's field errors", async () => {
  await withWorld({}, async ({ request }) => {
    await request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", { body: QI_CRD });
    const bad = await request("POST", QIS, {
      body: {
        apiVersion: "quay.redhat.com/v1",
        kind: "QuayIntegration",
        metadata: { name: "q1" },
        spec: {
          clusterID: "Bad_ID!",
          insecureRegistry: "yes",
          credentialsSecret: { name: "" },
          organizationDeletionPolicy: "Nope",
        },
      },
    });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.reason, "Invalid");
    assert.deepEqual(bad.body.details.group, "quay.redhat.com");
    assert.deepEqual(bad.body.details.kind, "QuayIntegration");
    const causes = new Map(
      bad.body.details.causes.map((c: { field: string; reason: string; message: string }) => [c.field, c]),
    );
    assert.deepEqual(causes.get("spec.quayHostname"), {
      reason: "FieldValueRequired",
      message: "Required value",
      field: "spec.quayHostname",
    });
    assert.deepEqual(causes.get("spec.credentialsSecret.namespace"), {
      reason: "FieldValueRequired",
      message: "Required value",
      field: "spec.credentialsSecret.namespace",
    });
    assert.deepEqual(causes.get("spec.insecureRegistry"), {
      reason: "FieldValueTypeInvalid",
      message: 'Invalid value: "string": spec.insecureRegistry in body must be of type boolean: "string"',
      field: "spec.insecureRegistry",
    });
    assert.deepEqual(causes.get("spec.organizationDeletionPolicy"), {
      reason: "FieldValueNotSupported",
      message: 'Unsupported value: "Nope": supported values: "Delete", "Retain"',
      field: "spec.organizationDeletionPolicy",
    });
    assert.deepEqual(causes.get("spec.clusterID"), {
      reason: "FieldValueInvalid",
      message:
        `Invalid value: "Bad_ID!": spec.clusterID in body should match '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$'`,
      field: "spec.clusterID",
    });
    assert.deepEqual(causes.get("spec.credentialsSecret.name"), {
      reason: "FieldValueInvalid",
      message: 'Invalid value: "": spec.credentialsSecret.name in body should be at least 1 chars long',
      field: "spec.credentialsSecret.name",
    });
    assert.match(bad.body.message, /^QuayIntegration\.quay\.redhat\.com "q1" is invalid: \[/);
  });
});

Deno.test("custom resources are defaulted and pruned, strictly when fieldValidation asks", async () => {
  await withWorld({}, async ({ request }) => {
    await request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", { body: widgetCrd() });
    const path = "/apis/example.com/v1/namespaces/default/widgets";
    const body = {
      apiVersion: "example.com/v1",
      kind: "Widget",
      metadata: { name: "w" },
      spec: { color: "red", unknown: 1, extra: { anything: { goes: true } } },
      status: { phase: "Ignored" },
    };
    const strict = await request("POST", `${path}?fieldValidation=Strict`, { body });
    assert.equal(strict.status, 400);
    assert.equal(
      strict.body.message,
      'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.unknown"',
    );
    const warned = await request("POST", path, { body });
    assert.equal(warned.status, 201);
    assert.equal(warned.headers.get("warning"), '299 - "unknown field \\"spec.unknown\\""');
    assert.deepEqual(warned.body.spec, { color: "red", extra: { anything: { goes: true } }, size: 3 });
    assert.equal(warned.body.status, undefined, "status is dropped on create with a status subresource");
    assert.equal(warned.body.metadata.generation, 1);
    const tooBig = await request("PATCH", `${path}/w`, {
      body: { spec: { size: 11 } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(tooBig.status, 422);
    assert.equal(
      tooBig.body.details.causes[0].message,
      "Invalid value: 11: spec.size in body should be less than or equal to 10",
    );
    const status = await request("PATCH", `${path}/w/status`, {
      body: { status: { phase: "Ready" } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(status.status, 200);
    assert.equal(status.body.status.phase, "Ready");
    assert.equal(status.body.metadata.generation, 1);
    const unconditional = await request("PUT", `${path}/w`, {
      body: { ...warned.body, metadata: { name: "w" } },
    });
    assert.equal(unconditional.status, 422, "custom resources need a resourceVersion on update");
    assert.match(
      unconditional.body.message,
      /metadata\.resourceVersion: Invalid value: "": must be specified for an update/,
    );
    const smp = await request("PATCH", `${path}/w`, {
      body: {},
      contentType: "application/strategic-merge-patch+json",
    });
    assert.equal(smp.status, 415);
    assert.equal(
      smp.body.message,
      "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    );
  });
});

Deno.test("custom resources print their additionalPrinterColumns in Tables", async () => {
  await withWorld({}, async ({ request }) => {
    await request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", { body: widgetCrd() });
    const path = "/apis/example.com/v1/namespaces/default/widgets";
    await request("POST", path, {
      body: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" }, spec: { size: 5 } },
    });
    await request("PATCH", `${path}/w/status`, {
      body: { status: { phase: "Ready" } },
      contentType: "application/merge-patch+json",
    });
    const table = await request("GET", path, {
      headers: { accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" },
    });
    assert.equal(table.body.kind, "Table");
    assert.deepEqual(
      table.body.columnDefinitions.map((c: { name: string; type: string }) => `${c.name}:${c.type}`),
      [
        "Name:string",
        "Size:integer",
        "Phase:string",
      ],
    );
    assert.deepEqual(table.body.rows[0].cells, ["w", 5, "Ready"]);
    assert.equal(table.body.rows[0].object.kind, "PartialObjectMetadata");
  });
});

Deno.test("deleting a CRD removes its objects, waiting for their finalizers, then stops serving it", async () => {
  await withWorld({}, async ({ request, watch }) => {
    await request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", { body: widgetCrd() });
    const path = "/apis/example.com/v1/namespaces/default/widgets";
    await request("POST", path, {
      body: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "a" } },
    });
    await request("POST", path, {
      body: {
        apiVersion: "example.com/v1",
        kind: "Widget",
        metadata: { name: "b", finalizers: ["example.com/keep"] },
      },
    });
    const w = await watch(`${path}?watch=1`);
    try {
      const deleted = await request(
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
      );
      assert.equal(deleted.status, 200);
      await eventually(async () => (await request("GET", `${path}/a`)).status === 404, 3000, "a to go");
      assert.ok((await request("GET", `${path}/b`)).body.metadata.deletionTimestamp);
      assert.equal(
        (await request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"))
          .status,
        200,
      );
      await request("PATCH", `${path}/b`, {
        body: { metadata: { finalizers: null } },
        contentType: "application/merge-patch+json",
      });
      await eventually(
        async () => (await request("GET", "/apis/example.com/v1")).status === 404,
        3000,
        "the group to go",
      );
      assert.equal((await request("GET", path)).status, 404);
      assert.equal(
        (await request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"))
          .status,
        404,
      );
      let event;
      do event = await w.next(); while (event !== undefined);
    } finally {
      await w.close();
    }
  });
});

Deno.test("server-side apply merges a CRD's map lists by key and removes what the manager dropped", async () => {
  await withWorld({}, async ({ request }) => {
    await request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", { body: widgetCrd() });
    const path = "/apis/example.com/v1/namespaces/default/widgets/w?fieldManager=team-a";
    const apply = (spec: unknown, manager = "team-a") =>
      request("PATCH", path.replace("team-a", manager), {
        raw: JSON.stringify({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" }, spec }),
        contentType: "application/apply-patch+yaml",
      });
    const created = await apply({ color: "red", ports: [{ name: "http", port: 80 }] });
    assert.equal(created.status, 201);
    const other = await apply({ ports: [{ name: "metrics", port: 9090 }] }, "team-b");
    assert.equal(other.status, 200);
    assert.deepEqual(other.body.spec.ports, [{ name: "http", port: 80 }, { name: "metrics", port: 9090 }]);
    const dropped = await apply({ ports: [{ name: "http", port: 8080 }] });
    assert.equal(dropped.status, 200);
    assert.deepEqual(dropped.body.spec.ports, [{ name: "http", port: 8080 }, {
      name: "metrics",
      port: 9090,
    }]);
    assert.equal(dropped.body.spec.color, undefined, "a field the manager stopped applying is removed");
    const conflict = await apply({ ports: [{ name: "metrics", port: 1 }] }, "team-a");
    assert.equal(conflict.status, 409);
    assert.equal(
      conflict.body.message,
      'Apply failed with 1 conflict: conflict with "team-b" using example.com/v1: .spec.ports[name="metrics"].port',
    );
    const yaml = await request(
      "PATCH",
      "/apis/example.com/v1/namespaces/default/widgets/y?fieldManager=yaml",
      {
        raw: "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: y\nspec:\n  size: 2\n",
        contentType: "application/apply-patch+yaml",
      },
    );
    assert.equal(yaml.status, 201);
    assert.equal(yaml.body.spec.size, 2);
  });
});
