/**
 * @module
 * The version of quay-bridge, printed by `quay-bridge version` and sent as User-Agent.
 */

/** Semantic version of this build. */
export const VERSION = "0.1.0";
