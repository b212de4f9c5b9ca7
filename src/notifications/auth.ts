/**
 * @module
 * Authentication of notification deliveries. Quay sends nothing but the notification's URL back
 * (no header, no signature), so the URL carries the proof: each repository's notification URL ends
 * in `HMAC-SHA256(integration secret, "<integration>/<org>/<repo>")`, base64url. The receiver
 * checks it with Web Crypto's HMAC verification (constant time; the platform's own implementation
 * judges what an outsider presents, the synchronous digest of `sha256.ts` only makes the URLs the
 * operator writes, so a fault there would refuse deliveries, never admit one). Per-repository tokens mean that whoever can read one
 * repository's notification in Quay (its admins) can trigger imports of that repository only, and
 * replacing the integration's secret invalidates every URL at once.
 */
import { hmacSha256, toBase64Url } from "../sha256.ts";

/** Path prefix of the receiver, next to the admission webhook's path. */
export const RECEIVER_PATH_PREFIX = "/quay-notifications/";

/** Bytes of a new integration secret. */
const SECRET_BYTES = 32;

/** A new random integration secret, base64url (what the Secret stores). */
export function newSecret(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** True when a stored secret is usable (decodes to at least 32 bytes). */
export function isUsableSecret(secret: string | undefined): secret is string {
  if (!secret || !/^[A-Za-z0-9_-]+$/.test(secret)) return false;
  return secret.length >= Math.ceil(SECRET_BYTES * 4 / 3);
}

/** The token in a repository's notification URL. */
export function repositoryToken(secret: string, integration: string, org: string, repo: string): string {
  return toBase64Url(hmacSha256(secret, `${integration}/${org}/${repo}`));
}

/** Constant-time check of a presented token (any length, any content), with Web Crypto. */
export async function verifyRepositoryToken(
  secret: string,
  integration: string,
  org: string,
  repo: string,
  presented: string,
): Promise<boolean> {
  let signature: Uint8Array;
  try {
    signature = Uint8Array.fromBase64(presented, { alphabet: "base64url" });
  } catch {
    return false;
  }
  // Only full-length tokens are compared: a prefix of the right bytes is not the token.
  if (signature.length !== 32 || toBase64Url(signature) !== presented) return false;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  return await crypto.subtle.verify(
    "HMAC",
    key,
    signature as Uint8Array<ArrayBuffer>,
    new TextEncoder().encode(`${integration}/${org}/${repo}`),
  );
}

/**
 * The notification URL of a repository: `<base>/quay-notifications/<integration>/<org>/<repo>/<token>`.
 * `base` is `spec.notifications.url` (scheme, host and port; a trailing slash is dropped).
 */
export function notificationUrl(
  base: string,
  secret: string,
  integration: string,
  org: string,
  repo: string,
): string {
  const root = base.replace(/\/+$/, "");
  const token = repositoryToken(secret, integration, org, repo);
  return `${root}${RECEIVER_PATH_PREFIX}${encodeURIComponent(integration)}/${encodeURIComponent(org)}/` +
    `${encodeURIComponent(repo)}/${token}`;
}

/** The parts of a receiver path (`token` empty when absent), or `undefined` when it is not one. */
export function parseReceiverPath(
  pathname: string,
): { integration: string; org: string; repo: string; token: string } | undefined {
  if (!pathname.startsWith(RECEIVER_PATH_PREFIX)) return undefined;
  const parts = pathname.slice(RECEIVER_PATH_PREFIX.length).split("/");
  // Without the token (`…/<repo>` or `…/<repo>/`) it is still a receiver path: the caller gets 401.
  if (parts.length === 3) parts.push("");
  if (parts.length !== 4 || parts.slice(0, 3).some((p) => p === "")) return undefined;
  try {
    const [integration, org, repo, token] = parts.map(decodeURIComponent) as [string, string, string, string];
    return { integration, org, repo, token };
  } catch {
    return undefined;
  }
}
