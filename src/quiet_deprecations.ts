/**
 * @module
 * `@kubernetes/client-node` 1.x imports Node's deprecated `punycode` module, and Deno prints a
 * DeprecationWarning line to stderr for it. Operators parse our stderr as JSON log lines, so the
 * warning is turned off before anything loads client-node (docs/runtime.md).
 */
import process from "node:process";

process.noDeprecation = true;
