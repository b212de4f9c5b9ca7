/**
 * @module
 * The reasons of the `QuayApiError`s the Quay client classifies beyond the HTTP status
 * (the others come from `errors.ts`), each from a real answer of Quay (`docs/quay-api.md`).
 */

/** The reasons, and what a caller should do with each. */
export const QuayReason = {
  /** Quay did not accept the token (401, or an anonymous answer to a write: `exchange.ts`). Terminal until a new token. */
  TokenInvalid: "TokenInvalid",
  /** The token works but does not administer the organization. Terminal. */
  OrganizationNotAdministered: "OrganizationNotAdministered",
  /** The name of a deleted organization is not free yet (Quay's namespace GC). Transient, `retryAfterSeconds` set. */
  OrganizationNameNotFree: "OrganizationNameNotFree",
  /** The organization is gone: forget what is known of it and read Quay again. Transient. */
  OrganizationNotFound: "OrganizationNotFound",
  /** The repository is gone: forget it and read Quay again. Transient. */
  RepositoryNotFound: "RepositoryNotFound",
  /** A name Quay's database cannot store (robot `org+short` beyond 255 characters). Terminal. */
  NameTooLong: "NameTooLong",
} as const;
