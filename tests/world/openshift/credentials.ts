/**
 * @module
 * Registry credentials as OpenShift finds them: docker config Secrets (`kubernetes.io/dockerconfigjson`
 * and the older `kubernetes.io/dockercfg`), matched to a registry by host, and the secrets a
 * ServiceAccount links for pushing (`secrets`) or pulling (`imagePullSecrets`).
 */
import { type KubeClient, type KubeObject, resourcePath } from "./kube_client.ts";

/** A user name and password for a registry's token realm. */
export interface RegistryCredential {
  username: string;
  password: string;
  /** `namespace/name` of the Secret it came from, for messages. */
  source: string;
}

const SECRETS = { group: "", version: "v1", resource: "secrets" };
const SERVICE_ACCOUNTS = { group: "", version: "v1", resource: "serviceaccounts" };

/** A parsed image reference `host[:port]/path[:tag|@digest]`. */
export interface ImageReference {
  host: string;
  /** `org/repo` (everything between the host and the tag or digest). */
  repository: string;
  /** Tag or `sha256:` digest. */
  reference: string;
}

/** Parses a pull spec with an explicit registry host; the tag defaults to `latest`. */
export function parseImageReference(spec: string): ImageReference {
  const slash = spec.indexOf("/");
  if (slash < 0) throw new Error(`Image reference "${spec}" names no registry host`);
  const host = spec.slice(0, slash);
  let rest = spec.slice(slash + 1);
  let reference = "latest";
  const at = rest.indexOf("@");
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon > rest.lastIndexOf("/")) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
  }
  if (!rest) throw new Error(`Image reference "${spec}" names no repository`);
  return { host, repository: rest, reference };
}

/** The host of a docker config key (`https://host/v1/`, `host`, `host/org`). */
function hostOfKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").split("/")[0] ?? "";
}

function decodeBase64(text: string): string {
  return new TextDecoder().decode(Uint8Array.fromBase64(text));
}

/** The credentials a docker config Secret holds for `host`, if any. */
export function credentialForHost(secret: KubeObject, host: string): RegistryCredential | undefined {
  const data = (secret.data ?? {}) as Record<string, string>;
  let auths: Record<string, { auth?: string; username?: string; password?: string }> | undefined;
  try {
    if (secret.type === "kubernetes.io/dockerconfigjson" && data[".dockerconfigjson"]) {
      auths = JSON.parse(decodeBase64(data[".dockerconfigjson"])).auths;
    } else if (secret.type === "kubernetes.io/dockercfg" && data[".dockercfg"]) {
      auths = JSON.parse(decodeBase64(data[".dockercfg"]));
    }
  } catch {
    return undefined; // A malformed Secret gives no credentials, as the kubelet would treat it.
  }
  for (const [key, entry] of Object.entries(auths ?? {})) {
    if (hostOfKey(key) !== host) continue;
    let { username, password } = entry;
    if (entry.auth) {
      const decoded = decodeBase64(entry.auth);
      const colon = decoded.indexOf(":");
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    if (username === undefined) continue;
    return {
      username,
      password: password ?? "",
      source: `${secret.metadata.namespace}/${secret.metadata.name}`,
    };
  }
  return undefined;
}

/** Reads Secrets by name, skipping missing ones (a dangling reference is not an error in Kubernetes). */
export async function readSecrets(
  client: KubeClient,
  namespace: string,
  names: readonly string[],
  signal?: AbortSignal,
): Promise<KubeObject[]> {
  const found: KubeObject[] = [];
  for (const name of names) {
    const secret = await client.get(resourcePath(SECRETS, namespace, name), signal);
    if (secret) found.push(secret);
  }
  return found;
}

/** Names of the secrets a ServiceAccount links in `secrets` or `imagePullSecrets` ([] if it is absent). */
export async function serviceAccountSecretNames(
  client: KubeClient,
  namespace: string,
  serviceAccount: string,
  field: "secrets" | "imagePullSecrets",
  signal?: AbortSignal,
): Promise<string[]> {
  const sa = await client.get(resourcePath(SERVICE_ACCOUNTS, namespace, serviceAccount), signal);
  const refs = (sa?.[field] ?? []) as { name?: string }[];
  return refs.map((r) => r.name ?? "").filter((n) => n !== "");
}

/** Every docker config Secret of a namespace. */
export async function dockerConfigSecrets(
  client: KubeClient,
  namespace: string,
  signal?: AbortSignal,
): Promise<KubeObject[]> {
  const list = await client.request("GET", resourcePath(SECRETS, namespace), { signal });
  return ((list.items ?? []) as KubeObject[]).filter((s) =>
    s.type === "kubernetes.io/dockerconfigjson" || s.type === "kubernetes.io/dockercfg"
  );
}

/** Credentials for `host` from `secrets`, in order, without duplicates. */
export function credentialsForHost(secrets: readonly KubeObject[], host: string): RegistryCredential[] {
  const out: RegistryCredential[] = [];
  for (const secret of secrets) {
    const credential = credentialForHost(secret, host);
    if (
      credential && !out.some((c) => c.username === credential.username && c.password === credential.password)
    ) {
      out.push(credential);
    }
  }
  return out;
}
