/**
 * @module
 * Decoding of `application/vnd.kubernetes.protobuf` request bodies for the types kubectl's
 * generator commands send that way (`kubectl create namespace|configmap|secret|serviceaccount|
 * role|rolebinding|clusterrole|clusterrolebinding`): the `k8s\0` envelope around a
 * `runtime.Unknown`, and the messages of `k8s.io/api` with their field numbers from
 * `generated.proto`. Other kinds are refused with 415, as they are not needed here.
 */

type FieldType = "string" | "bytes" | "bool" | "int64" | "time";

interface Field {
  name: string;
  type?: FieldType;
  message?: Message;
  repeated?: boolean;
  /** A `map<string, string>` or `map<string, bytes>`. */
  map?: "string" | "bytes";
}

type Message = Record<number, Field>;

const OWNER_REFERENCE: Message = {
  1: { name: "kind", type: "string" },
  3: { name: "name", type: "string" },
  4: { name: "uid", type: "string" },
  5: { name: "apiVersion", type: "string" },
  6: { name: "controller", type: "bool" },
  7: { name: "blockOwnerDeletion", type: "bool" },
};

const OBJECT_META: Message = {
  1: { name: "name", type: "string" },
  2: { name: "generateName", type: "string" },
  3: { name: "namespace", type: "string" },
  5: { name: "uid", type: "string" },
  6: { name: "resourceVersion", type: "string" },
  7: { name: "generation", type: "int64" },
  8: { name: "creationTimestamp", type: "time" },
  11: { name: "labels", map: "string" },
  12: { name: "annotations", map: "string" },
  13: { name: "ownerReferences", message: OWNER_REFERENCE, repeated: true },
  14: { name: "finalizers", type: "string", repeated: true },
};

const OBJECT_REFERENCE: Message = {
  1: { name: "kind", type: "string" },
  2: { name: "namespace", type: "string" },
  3: { name: "name", type: "string" },
  4: { name: "uid", type: "string" },
  5: { name: "apiVersion", type: "string" },
  6: { name: "resourceVersion", type: "string" },
  7: { name: "fieldPath", type: "string" },
};

const POLICY_RULE: Message = {
  1: { name: "verbs", type: "string", repeated: true },
  2: { name: "apiGroups", type: "string", repeated: true },
  3: { name: "resources", type: "string", repeated: true },
  4: { name: "resourceNames", type: "string", repeated: true },
  5: { name: "nonResourceURLs", type: "string", repeated: true },
};

const SUBJECT: Message = {
  1: { name: "kind", type: "string" },
  2: { name: "apiGroup", type: "string" },
  3: { name: "name", type: "string" },
  4: { name: "namespace", type: "string" },
};

const ROLE_REF: Message = {
  1: { name: "apiGroup", type: "string" },
  2: { name: "kind", type: "string" },
  3: { name: "name", type: "string" },
};

const LABEL_SELECTOR: Message = {
  1: { name: "matchLabels", map: "string" },
  2: {
    name: "matchExpressions",
    repeated: true,
    message: {
      1: { name: "key", type: "string" },
      2: { name: "operator", type: "string" },
      3: { name: "values", type: "string", repeated: true },
    },
  },
};

const META = { name: "metadata", message: OBJECT_META } as const;
const BINDING: Message = {
  1: META,
  2: { name: "subjects", message: SUBJECT, repeated: true },
  3: { name: "roleRef", message: ROLE_REF },
};

const RESOURCE_ATTRIBUTES: Message = {
  1: { name: "namespace", type: "string" },
  2: { name: "verb", type: "string" },
  3: { name: "group", type: "string" },
  4: { name: "version", type: "string" },
  5: { name: "resource", type: "string" },
  6: { name: "subresource", type: "string" },
  7: { name: "name", type: "string" },
};
const NON_RESOURCE_ATTRIBUTES: Message = {
  1: { name: "path", type: "string" },
  2: { name: "verb", type: "string" },
};
const ACCESS_REVIEW_SPEC: Message = {
  1: { name: "resourceAttributes", message: RESOURCE_ATTRIBUTES },
  2: { name: "nonResourceAttributes", message: NON_RESOURCE_ATTRIBUTES },
  3: { name: "user", type: "string" },
  4: { name: "groups", type: "string", repeated: true },
  6: { name: "uid", type: "string" },
};

const KINDS: Record<string, Message> = {
  SelfSubjectAccessReview: { 1: META, 2: { name: "spec", message: ACCESS_REVIEW_SPEC } },
  SubjectAccessReview: { 1: META, 2: { name: "spec", message: ACCESS_REVIEW_SPEC } },
  LocalSubjectAccessReview: { 1: META, 2: { name: "spec", message: ACCESS_REVIEW_SPEC } },
  SelfSubjectRulesReview: {
    1: META,
    2: { name: "spec", message: { 1: { name: "namespace", type: "string" } } },
  },
  Namespace: {
    1: META,
    2: { name: "spec", message: { 1: { name: "finalizers", type: "string", repeated: true } } },
  },
  ConfigMap: {
    1: META,
    2: { name: "data", map: "string" },
    3: { name: "binaryData", map: "bytes" },
    4: { name: "immutable", type: "bool" },
  },
  Secret: {
    1: META,
    2: { name: "data", map: "bytes" },
    3: { name: "type", type: "string" },
    4: { name: "stringData", map: "string" },
    5: { name: "immutable", type: "bool" },
  },
  ServiceAccount: {
    1: META,
    2: { name: "secrets", message: OBJECT_REFERENCE, repeated: true },
    3: { name: "imagePullSecrets", message: { 1: { name: "name", type: "string" } }, repeated: true },
    4: { name: "automountServiceAccountToken", type: "bool" },
  },
  Role: { 1: META, 2: { name: "rules", message: POLICY_RULE, repeated: true } },
  ClusterRole: {
    1: META,
    2: { name: "rules", message: POLICY_RULE, repeated: true },
    3: {
      name: "aggregationRule",
      message: { 1: { name: "clusterRoleSelectors", message: LABEL_SELECTOR, repeated: true } },
    },
  },
  RoleBinding: BINDING,
  ClusterRoleBinding: BINDING,
};

/** Raised for a protobuf body the world cannot decode. */
export class ProtobufError extends Error {
  override name = "ProtobufError";
}

class Reader {
  offset = 0;
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.offset >= this.bytes.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.offset >= this.bytes.length) throw new ProtobufError("truncated varint");
      const b = this.bytes[this.offset++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }

  chunk(): Uint8Array {
    const length = Number(this.varint());
    const out = this.bytes.subarray(this.offset, this.offset + length);
    if (out.length !== length) throw new ProtobufError("truncated field");
    this.offset += length;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.offset += 8;
    else if (wire === 2) this.chunk();
    else if (wire === 5) this.offset += 4;
    else throw new ProtobufError(`unsupported wire type ${wire}`);
  }
}

const decoder = new TextDecoder();

function decodeMessage(bytes: Uint8Array, schema: Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const r = new Reader(bytes);
  while (!r.done) {
    const key = Number(r.varint());
    const number = key >>> 3;
    const wire = key & 7;
    const field = schema[number];
    if (!field) {
      r.skip(wire);
      continue;
    }
    let value: unknown;
    if (field.map) {
      const entry = new Reader(r.chunk());
      let k = "";
      let v: unknown = field.map === "string" ? "" : "";
      while (!entry.done) {
        const ek = Number(entry.varint());
        if (ek >>> 3 === 1) k = decoder.decode(entry.chunk());
        else if (ek >>> 3 === 2) {
          const raw = entry.chunk();
          v = field.map === "string" ? decoder.decode(raw) : raw.toBase64();
        } else entry.skip(ek & 7);
      }
      const map = (out[field.name] ??= {}) as Record<string, unknown>;
      map[k] = v;
      continue;
    }
    if (field.message) value = decodeMessage(r.chunk(), field.message);
    else if (field.type === "string") value = decoder.decode(r.chunk());
    else if (field.type === "bytes") value = r.chunk().toBase64();
    else if (field.type === "bool") value = r.varint() !== 0n;
    else if (field.type === "int64") value = Number(BigInt.asIntN(64, r.varint()));
    else if (field.type === "time") {
      const t = decodeMessage(r.chunk(), { 1: { name: "seconds", type: "int64" } });
      value = new Date(Number(t.seconds ?? 0) * 1000).toISOString().replace(/\.\d+Z$/, "Z");
    }
    // Go's JSON drops empty strings (omitempty); protobuf still sends them.
    if (value === "" && !field.repeated) continue;
    if (field.repeated) ((out[field.name] ??= []) as unknown[]).push(value);
    else out[field.name] = value;
  }
  return out;
}

/** True when `bytes` start with the `k8s\0` magic of the protobuf envelope. */
export function isProtobufEnvelope(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x6b && bytes[1] === 0x38 && bytes[2] === 0x73 && bytes[3] === 0;
}

/** Decodes a protobuf request body into the JSON form of the object. */
export function decodeProtobufObject(bytes: Uint8Array): Record<string, unknown> {
  if (!isProtobufEnvelope(bytes)) {
    throw new ProtobufError(
      "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
    );
  }
  const unknown = decodeMessage(bytes.subarray(4), {
    1: {
      name: "typeMeta",
      message: { 1: { name: "apiVersion", type: "string" }, 2: { name: "kind", type: "string" } },
    },
    2: { name: "raw", type: "bytes" },
  });
  const typeMeta = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
  const kind = typeMeta.kind ?? "";
  const schema = KINDS[kind];
  if (!schema) throw new ProtobufError(`the world cannot decode ${kind || "this kind"} from protobuf`);
  const raw = Uint8Array.fromBase64(String(unknown.raw ?? ""));
  const object = decodeMessage(raw, schema);
  return { apiVersion: typeMeta.apiVersion, kind, ...object, metadata: object.metadata ?? {} };
}
