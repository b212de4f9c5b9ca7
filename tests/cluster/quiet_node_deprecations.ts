/**
 * @module
 * Silences the `punycode` DeprecationWarning that `@kubernetes/client-node` 1.x triggers when it
 * is imported (see docs/runtime.md). Import it before client-node.
 */
import process from "node:process";

process.noDeprecation = true;
