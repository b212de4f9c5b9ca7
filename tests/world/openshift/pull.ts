/**
 * @module
 * "Would a pod running as this ServiceAccount start?" without pods: pull the image's manifest with
 * the credentials the kubelet would use, the SA's `imagePullSecrets` for the image's host.
 */
import { RegistryClientError } from "../quay/registry_client.ts";
import {
  credentialsForHost,
  parseImageReference,
  readSecrets,
  serviceAccountSecretNames,
} from "./credentials.ts";
import { pullWithCredentials } from "./image_import.ts";
import { type KubeAccess, KubeClient } from "./kube_client.ts";

/** Options of {@linkcode pullAsServiceAccount}. */
export interface PullAsServiceAccountOptions {
  /** A client, or how to reach the API server (a client is then made and closed). */
  kube: KubeClient | KubeAccess;
  ns: string;
  sa: string;
  /** `host[:port]/org/repo[:tag|@digest]` */
  image: string;
  /** CA PEM trusted for the registry. */
  caPem?: string;
}

/** The outcome of a pull. */
export interface PullResult {
  ok: boolean;
  digest?: string;
  /** HTTP status of the registry's answer (200 on success, 0 when it could not be reached). */
  status: number;
  message: string;
}

/** Pulls `image` as the kubelet would for a pod of `ns/sa`; never throws for a refused pull. */
export async function pullAsServiceAccount(options: PullAsServiceAccountOptions): Promise<PullResult> {
  const client = options.kube instanceof KubeClient ? options.kube : new KubeClient(options.kube);
  try {
    const host = parseImageReference(options.image).host;
    const names = await serviceAccountSecretNames(client, options.ns, options.sa, "imagePullSecrets");
    const credentials = credentialsForHost(await readSecrets(client, options.ns, names), host);
    const pulled = await pullWithCredentials(options.image, credentials, options.caPem);
    if (pulled.ok) {
      return { ok: true, digest: pulled.digest, status: 200, message: `pulled ${options.image}` };
    }
    const status = pulled.error instanceof RegistryClientError ? pulled.error.status : 0;
    return { ok: false, status, message: pulled.error.message };
  } finally {
    if (client !== options.kube) client.close();
  }
}
