/**
 * @module
 * `spec.notifications` of a QuayIntegration: where Quay reaches the operator's notification
 * receiver (usually a Route to the operator's webhook Service) and which pushed tags are imported.
 * Absent means off.
 */

/** Parsed `spec.notifications`. */
export interface NotificationSettings {
  /** `https://host[:port]` (or `http://`), no path and no trailing slash. */
  readonly url: string;
  /** Import every pushed tag, not only the tags the ImageStream already has. @default false */
  readonly importAllTags: boolean;
}

/** Parses `spec.notifications`: settings, `undefined` when absent, or the problem. */
export function parseNotificationSettings(
  value: unknown,
): { ok: true; settings: NotificationSettings | undefined } | { ok: false; message: string } {
  if (value === undefined || value === null) return { ok: true, settings: undefined };
  if (typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, message: "spec.notifications must be an object with url (and importAllTags)" };
  }
  const v = value as Record<string, unknown>;
  const raw = typeof v.url === "string" ? v.url.trim() : "";
  if (!raw) {
    return {
      ok: false,
      message: "spec.notifications.url is required: the https:// address at which Quay reaches quay-bridge",
    };
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, message: `spec.notifications.url "${raw}" is not a URL` };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { ok: false, message: `spec.notifications.url "${raw}" must use https:// (or http://)` };
  }
  if (
    (url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username || url.password
  ) {
    return {
      ok: false,
      message: `spec.notifications.url "${raw}" must be only scheme, host and port: the receiver's ` +
        `paths (/quay-notifications/...) are added to it`,
    };
  }
  if (["localhost", "127.0.0.1"].includes(url.hostname.toLowerCase())) {
    return {
      ok: false,
      message: `spec.notifications.url "${raw}": Quay refuses webhooks to localhost and 127.0.0.1`,
    };
  }
  if (v.importAllTags !== undefined && typeof v.importAllTags !== "boolean") {
    return { ok: false, message: "spec.notifications.importAllTags must be true or false" };
  }
  return {
    ok: true,
    settings: Object.freeze({ url: `${url.protocol}//${url.host}`, importAllTags: v.importAllTags === true }),
  };
}
