/**
 * @module
 * The MutatingWebhookConfiguration the self-managed certificates keep: outside a cluster the
 * operator creates and maintains all of it (a URL to call instead of a Service); inside, the
 * deployment owns it and only each webhook's `caBundle` is kept in step with the CA.
 */
import { KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { type KubeObject, MUTATING_WEBHOOKS } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import { FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL } from "../names.ts";

/** Name of the webhook in a configuration the operator creates (the upstream operator's). */
export const WEBHOOK_NAME = "quayintegration.quay.redhat.com";

/** What {@linkcode ensureWebhookConfiguration} keeps. */
export interface WebhookConfigurationSpec {
  readonly name: string;
  /** Base64 PEM bundle of the CAs to trust. */
  readonly caBundle: string;
  /** Maintain the whole configuration (outside a cluster); otherwise only its caBundles. */
  readonly manage?: { readonly url: string; readonly operatorNamespace: string } | undefined;
}

/**
 * Makes the configuration trust `caBundle` (and, when managed, hold everything else). Returns false
 * when a configuration the deployment should own does not exist.
 */
export async function ensureWebhookConfiguration(
  kube: KubeClient,
  log: Logger,
  spec: WebhookConfigurationSpec,
): Promise<boolean> {
  const { name, caBundle: bundle, manage } = spec;
  const existing = await kube.get<KubeObject>(MUTATING_WEBHOOKS, name);
  if (manage) {
    const desired = desiredConfiguration({
      name,
      url: manage.url,
      caBundle: bundle,
      operatorNamespace: manage.operatorNamespace,
    });
    if (!existing) {
      try {
        await kube.create(MUTATING_WEBHOOKS, desired);
        log.info("webhook configuration created", { name, url: manage.url });
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 409)) throw error;
      }
      return true;
    }
    if (configurationMatches(existing, desired)) return true;
    await kube.update(MUTATING_WEBHOOKS, {
      ...existing,
      metadata: {
        ...existing.metadata,
        labels: { ...(existing.metadata.labels ?? {}), ...desired.metadata.labels },
      },
      webhooks: desired.webhooks,
    });
    log.info("webhook configuration updated", { name, url: manage.url });
    return true;
  }
  if (!existing) return false;
  const webhooks = Array.isArray(existing.webhooks) ? existing.webhooks as Record<string, unknown>[] : [];
  const patch: unknown[] = [];
  webhooks.forEach((hook, i) => {
    const clientConfig = (hook.clientConfig ?? {}) as Record<string, unknown>;
    if (clientConfig.caBundle === bundle) return;
    patch.push({ op: "test", path: `/webhooks/${i}/name`, value: hook.name });
    if (hook.clientConfig === undefined) {
      patch.push({ op: "add", path: `/webhooks/${i}/clientConfig`, value: { caBundle: bundle } });
    } else {
      patch.push({ op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle });
    }
  });
  if (patch.length === 0) return true;
  await kube.patch(MUTATING_WEBHOOKS, name, patch, { patchType: "json", fieldManager: FIELD_MANAGER });
  log.info("webhook configuration caBundle updated", { name, webhooks: patch.length / 2 });
  return true;
}

/** The configuration the operator creates outside a cluster. */
export function desiredConfiguration(
  options: { name: string; url: string; caBundle: string; operatorNamespace: string },
): KubeObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: {
      name: options.name,
      labels: { "app.kubernetes.io/name": "quay-bridge", [MANAGED_BY_LABEL]: MANAGED_BY },
    },
    webhooks: [{
      name: WEBHOOK_NAME,
      clientConfig: { url: options.url, caBundle: options.caBundle },
      rules: [{
        operations: ["CREATE"],
        apiGroups: ["build.openshift.io"],
        apiVersions: ["v1"],
        resources: ["builds"],
        scope: "Namespaced",
      }],
      // Provisioning on demand is a side effect, which a dry run never triggers.
      sideEffects: "NoneOnDryRun",
      admissionReviewVersions: ["v1", "v1beta1"],
      timeoutSeconds: 10,
      failurePolicy: "Ignore",
      matchPolicy: "Equivalent",
      reinvocationPolicy: "Never",
      // As deploy/webhook/mwc: platform namespaces are not even called.
      namespaceSelector: {
        matchExpressions: [
          {
            key: "kubernetes.io/metadata.name",
            operator: "NotIn",
            values: [
              ...new Set([
                options.operatorNamespace,
                "default",
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "openshift",
                "openshift-config",
                "openshift-infra",
                "openshift-node",
                "management-infra",
              ]),
            ],
          },
          { key: "openshift.io/run-level", operator: "DoesNotExist" },
          { key: "quay-bridge.quay.redhat.com/webhook", operator: "NotIn", values: ["disabled"] },
        ],
      },
    }],
  };
}

/** True when every field the operator sets has the desired value (the server adds defaults). */
function configurationMatches(existing: KubeObject, desired: KubeObject): boolean {
  const have = Array.isArray(existing.webhooks) ? existing.webhooks as Record<string, unknown>[] : [];
  const want = desired.webhooks as Record<string, unknown>[];
  if (have.length !== want.length) return false;
  return want.every((w, i) => {
    const h = have[i] ?? {};
    return Object.entries(w).every(([key, value]) => {
      if (key === "clientConfig") {
        const hc = (h.clientConfig ?? {}) as Record<string, unknown>;
        const wc = value as Record<string, unknown>;
        return hc.url === wc.url && hc.caBundle === wc.caBundle && hc.service === undefined;
      }
      return JSON.stringify(h[key]) === JSON.stringify(value);
    });
  });
}
