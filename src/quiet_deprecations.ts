/**
 * @module
 * `@kubernetes/client-node` 1.x, loaded whole, imports Node's deprecated `punycode` module, and Deno
 * prints a DeprecationWarning line to stderr for it. Operators parse our stderr as JSON log lines, so
 * the warning is turned off before anything loads client-node. The operator itself loads only
 * client-node's kubeconfig modules (`src/kube/kubeconfig.ts`), which do not import it; the test
 * world and the benchmarks load the whole package.
 */
import process from "node:process";

(process as { noDeprecation?: boolean }).noDeprecation = true;
