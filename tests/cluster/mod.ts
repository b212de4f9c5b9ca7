/**
 * @module
 * A real Kubernetes control plane for the end-to-end suite: the published kube-apiserver and
 * kube-controller-manager (built once from the Kubernetes Go modules, see `build.sh`) with embedded
 * etcd, static tokens for an admin and for the operator's service account, RBAC, the admission
 * chain with webhooks, and OpenShift's image and build APIs as CRDs.
 *
 * ```ts
 * await using cluster = await startRealCluster();
 * const result = await cluster.kubectl(["get", "imagestreams", "-A"]);
 * ```
 */
export { ensureKubeApiserverBinary, KubeBinaryError } from "./binary.ts";
export {
  ClusterStartError,
  type ClusterUser,
  type Component,
  DEFAULT_CONTROLLERS,
  type KubectlOptions,
  type KubectlResult,
  OPERATOR_GROUPS,
  OPERATOR_USER,
  type RealCluster,
  startRealCluster,
  type StartRealClusterOptions,
} from "./cluster.ts";
export { applyDeploy, applyDeployVariant, DEPLOY_PARTS, DeployError } from "./deploy.ts";
