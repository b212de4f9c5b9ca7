/**
 * @module
 * The QuayIntegration CustomResourceDefinitions, as data: the one source of the API's schema. The
 * YAML in `deploy/crds/` is generated from here (`deno task generate`), and a test fails when the
 * two differ. Validation in the schema gives admins immediate feedback from `kubectl apply`; the
 * operator validates again (an older CRD may be installed) and reports through status conditions.
 */

type Schema = Record<string, unknown>;

const str = (description: string, extra: Schema = {}): Schema => ({ type: "string", description, ...extra });
const bool = (description: string, extra: Schema = {}): Schema => ({
  type: "boolean",
  description,
  ...extra,
});
const strings = (description: string): Schema => ({ type: "array", description, items: { type: "string" } });

const LABEL_SELECTOR: Schema = {
  type: "object",
  description: "Label selector of the namespaces to manage, ANDed with the allow and deny lists.",
  properties: {
    matchLabels: { type: "object", additionalProperties: { type: "string" } },
    matchExpressions: {
      type: "array",
      items: {
        type: "object",
        required: ["key", "operator"],
        properties: {
          key: { type: "string" },
          operator: { type: "string", enum: ["In", "NotIn", "Exists", "DoesNotExist"] },
          values: { type: "array", items: { type: "string" } },
        },
      },
    },
  },
  "x-kubernetes-map-type": "atomic",
};

const STATUS: Schema = {
  type: "object",
  properties: {
    conditions: {
      type: "array",
      description: "Ready, CredentialsValid, QuayReachable, Degraded and AuditLogFollowed.",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
      items: {
        type: "object",
        required: ["type", "status", "lastTransitionTime", "reason", "message"],
        properties: {
          type: { type: "string", maxLength: 316 },
          status: { type: "string", enum: ["True", "False", "Unknown"] },
          observedGeneration: { type: "integer", format: "int64", minimum: 0 },
          lastTransitionTime: { type: "string", format: "date-time" },
          reason: { type: "string", maxLength: 1024 },
          message: { type: "string", maxLength: 32768 },
        },
      },
    },
    observedGeneration: { type: "integer", format: "int64" },
    managedNamespaces: { type: "integer", description: "Namespaces in sync." },
    organizations: { type: "integer", description: "Quay organizations managed." },
    repositories: { type: "integer", description: "Quay repositories known in the managed organizations." },
    organizationPrefix: { type: "string", description: "Organization name prefix in use at the last sync." },
    lastSync: { type: "string", format: "date-time" },
    lastUpdate: { type: "string", description: "Same as lastSync (upstream field)." },
    leftBehindOrganizations: {
      type: "array",
      description:
        "Quay organizations of deleted namespaces that could not be deleted within --deletion-budget; deletion is retried with backoff and the entry removed once the organization is gone.",
      maxItems: 200,
      items: {
        type: "object",
        required: ["organization", "namespace"],
        properties: {
          organization: { type: "string" },
          namespace: { type: "string" },
          since: { type: "string", format: "date-time" },
          attempts: { type: "integer", minimum: 0 },
          nextAttemptAt: { type: "string", format: "date-time" },
          lastError: { type: "string", maxLength: 32768 },
        },
      },
    },
  },
};

const COMMON_SPEC: Record<string, Schema> = {
  clusterID: str(
    "Unique per cluster sharing the Quay; lower-cased into organization (<clusterID>_<namespace>) and Secret names.",
    { default: "openshift", maxLength: 63, pattern: "^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$" },
  ),
  quayHostname: str("Quay's URL, https://host[:port]. The registry host of pull specs is taken from it.", {
    minLength: 1,
  }),
  insecureRegistry: bool("Skip TLS verification of Quay's API and registry (also for image imports).", {
    default: false,
  }),
  organizationPrefix: str("Replaces the cluster ID as the organization name prefix."),
  scheduledImageStreamImport: bool("Imported tags are re-imported periodically (importPolicy.scheduled).", {
    default: false,
  }),
};

const V1_SPEC: Schema = {
  type: "object",
  required: ["credentialsSecret", "quayHostname"],
  properties: {
    ...COMMON_SPEC,
    credentialsSecret: {
      type: "object",
      description: "Secret holding the OAuth access token of a Quay application.",
      required: ["namespace", "name"],
      properties: {
        namespace: { type: "string", minLength: 1 },
        name: { type: "string", minLength: 1 },
        key: { type: "string", default: "token", description: "Key of the token in the Secret." },
      },
    },
    caBundle: str("PEM CA certificates trusted for Quay's API and registry (instead of insecureRegistry)."),
    allowlistNamespaces: strings(
      "Only these namespaces are managed (when non-empty); also overrides the default denials.",
    ),
    denylistNamespaces: strings("These namespaces are never managed."),
    namespaceSelector: LABEL_SELECTOR,
    serviceAccounts: {
      type: "object",
      description:
        "Service account name to the Quay role of its robot. Default: builder: write, default: read, deployer: read.",
      additionalProperties: { type: "string", enum: ["read", "write", "admin"] },
    },
    organizationDeletionPolicy: str("What happens to the organization when its namespace is deleted.", {
      enum: ["Delete", "Retain"],
      default: "Delete",
    }),
    repositoryDeletionPolicy: str("What happens to a repository when its ImageStream is deleted.", {
      enum: ["Retain", "Delete"],
      default: "Retain",
    }),
    notifications: {
      type: "object",
      description:
        "Quay push notifications: a push to a managed repository is imported into its ImageStream " +
        "at once (docs/notifications.md). Off when absent.",
      required: ["url"],
      properties: {
        url: str(
          "Where Quay reaches quay-bridge's notification receiver (usually a Route to the webhook Service): " +
            "https://host[:port], no path.",
          { pattern: "^https?://[^/?#]+/?$" },
        ),
        importAllTags: bool("Import every pushed tag, not only the tags the ImageStream already has.", {
          default: false,
        }),
      },
    },
    credentialRotation: {
      type: "object",
      description: "Regenerate every robot's token this often and update its Secret in place. " +
        "A namespace annotated quay.redhat.com/rotate-credentials rotates at once, with or without it.",
      required: ["interval"],
      properties: {
        interval: str("At least 1m, e.g. 720h. Each namespace rotates within the last tenth of it.", {
          pattern: "^([0-9]+(\\.[0-9]+)?(h|ms|m|s))+$",
        }),
      },
    },
  },
};

const LEGACY_SPEC: Schema = {
  type: "object",
  required: ["credentialsSecretName", "quayHostname"],
  properties: {
    ...COMMON_SPEC,
    credentialsSecretName: str('<namespace>/<name> of the Secret holding the token under the key "token".', {
      pattern: "^[^/]+/[^/]+$",
    }),
    whitelistNamespaces: strings("Only these namespaces are managed (when non-empty)."),
    blacklistNamespaces: strings("These namespaces are never managed."),
  },
};

const PRINTER_COLUMNS = [
  { name: "Quay", type: "string", jsonPath: ".spec.quayHostname" },
  { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: "Namespaces", type: "integer", jsonPath: ".status.managedNamespaces" },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

function crd(group: string, version: string, spec: Schema, deprecated: boolean) {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `quayintegrations.${group}`, labels: { "app.kubernetes.io/name": "quay-bridge" } },
    spec: {
      group,
      names: {
        kind: "QuayIntegration",
        listKind: "QuayIntegrationList",
        plural: "quayintegrations",
        singular: "quayintegration",
        shortNames: deprecated ? [] : ["qi"],
        categories: ["quay"],
      },
      scope: "Cluster",
      versions: [{
        name: version,
        served: true,
        storage: true,
        ...(deprecated
          ? {
            deprecated: true,
            deprecationWarning:
              "redhatcop.redhat.io/v1alpha1 QuayIntegration is deprecated; use quay.redhat.com/v1",
          }
          : {}),
        subresources: { status: {} },
        additionalPrinterColumns: PRINTER_COLUMNS,
        schema: {
          openAPIV3Schema: {
            type: "object",
            description: "Makes a Red Hat Quay registry the image registry of this cluster.",
            required: ["spec"],
            properties: {
              apiVersion: { type: "string" },
              kind: { type: "string" },
              metadata: { type: "object" },
              spec,
              status: STATUS,
            },
          },
        },
      }],
    },
  };
}

/** `quayintegrations.quay.redhat.com`. */
export const QUAY_INTEGRATION_CRD = crd("quay.redhat.com", "v1", V1_SPEC, false);
/** `quayintegrations.redhatcop.redhat.io` (the predecessor's API). */
export const LEGACY_QUAY_INTEGRATION_CRD = crd("redhatcop.redhat.io", "v1alpha1", LEGACY_SPEC, true);
