/**
 * @module
 * The mutating admission webhook that points OpenShift Builds at Quay.
 *
 * Use: build the app over an {@linkcode AdmissionPort}, then serve it over HTTPS from a
 * certificate directory (hot reload) or from in-memory PEMs (`rotate` for self-managed certs):
 *
 * ```ts
 * const app = createWebhookApp({ admissionPort, logger, onAdmission: (outcome, ms) => metrics.observe(outcome, ms) });
 * const server = await serveWebhookFromDirectory({ handler: app.fetch, certDir, port: 8443, logger });
 * // or: const server = serveWebhook({ handler: app.fetch, certPem, keyPem, port: 8443, logger });
 * await server.rotate(newCertPem, newKeyPem);
 * await server.close();
 * ```
 *
 * Decisions beyond the predecessor's contract (docs/predecessor.md):
 * - Only CREATE is mutated: a Build's spec is immutable after create, so UPDATEs pass unchanged.
 * - An output ImageStreamTag in another namespace is allowed unchanged with an AdmissionReview
 *   warning (v1 answers only; v1beta1 answers carry none): the build namespace's robot cannot push
 *   to the other namespace's organization.
 * - An ImageStream name that is not a valid Quay repository name, or a tag that is not a valid image
 *   tag, is denied (code 422) with a message saying what to change.
 * - A selected namespace that is not provisioned yet is provisioned on demand within the budget
 *   (default 7 s of the apiserver's 10 s); if it is still not ready the Build is denied (code 503,
 *   retryable). A dry run never provisions (the webhook's side effects are `NoneOnDryRun`).
 * - Unparseable bodies, a missing `request.uid` and bodies over 3 MiB get HTTP 400 with a Status
 *   body; malformed Builds (missing spec/output/to, wrong types) are allowed unchanged — the
 *   apiserver's own validation answers for them. A port that throws or returns a malformed target
 *   gives a denial with code 500, never an HTTP 500.
 * - Logs: denials and warnings at info, internal errors at error, routine answers at debug;
 *   `onAdmission(outcome, durationMs)` sees every request to the path, for metrics.
 *
 * Serving (server.ts): responses are single-chunk streams (no 44 ms TLS stall); a rotation overlaps
 * listeners with `SO_REUSEPORT` (needs `--unstable-net`, probed; without it new connections are
 * refused for ~1 ms per rotation) and retires the old listener with `Connection: close` answers for
 * `drainGraceMs` (default 1 s) before shutting it down, so keep-alive clients never write into a
 * closing connection. `close()` retires the same way.
 */
export type { AdmissionPort, NamespaceTarget } from "./port.ts";
export {
  type AdmissionContext,
  type AdmissionOutcome,
  type AdmissionVerdict,
  decideAdmission,
  ProvisionTimeoutError,
  sharedProvisioner,
} from "./admission.ts";
export {
  type BuildFacts,
  type BuildInspection,
  buildOutputPatch,
  inspectBuildAdmission,
  type PushTarget,
  quayPullSpec,
} from "./build_patch.ts";
export {
  ADMISSION_VERSIONS,
  type AdmissionAnswer,
  type AdmissionVersion,
  type JsonPatchOperation,
  parseAdmissionReview,
} from "./review.ts";
export {
  createWebhookApp,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_PROVISION_BUDGET_MS,
  DEFAULT_WEBHOOK_PATH,
  jsonStreamResponse,
  type WebhookAppOptions,
} from "./app.ts";
export {
  CertificateError,
  type CertificateSummary,
  checkKeyPair,
  reusePortAvailable,
  ServerClosedError,
  serveWebhook,
  type WebhookServer,
  type WebhookServerOptions,
} from "./server.ts";
export {
  CERTIFICATE_FILE_NAMES,
  type CertificateFiles,
  type DirectoryServerOptions,
  readCertificateDirectory,
  serveWebhookFromDirectory,
} from "./cert_dir.ts";
