/**
 * @module
 * Reading a request body with a size cap, for the two endpoints the webhook server answers: the
 * admission webhook and the notification receiver. They differ in what an oversized body costs:
 *
 * - `oversized: "cancel"` stops reading at once (the client may see a reset connection instead of
 *   the answer): for a receiver anyone on the network can reach, where reading an attacker's body is
 *   the cost to avoid;
 * - `oversized: { drainUpTo }` reads and discards the rest, up to `drainUpTo` bytes, so the client
 *   reads the answer (kube-apiserver logs a clear 400 instead of a broken pipe); beyond that the
 *   connection is given up as with "cancel".
 *
 * and in invalid UTF-8: `utf8: "strict"` refuses it, `"replace"` decodes it with U+FFFD.
 *
 * ```ts
 * const body = await readBody(request, { limit: 65_536, oversized: "cancel", utf8: "strict" });
 * if (!body.ok) return body.reason === "too_large" ? tooLarge() : badRequest(body.message);
 * ```
 */

/** How {@linkcode readBody} reads. */
export interface ReadBodyOptions {
  /** Largest body accepted, in bytes. */
  readonly limit: number;
  /** What happens to a body over `limit`: see the module comment. */
  readonly oversized: "cancel" | { readonly drainUpTo: number };
  /** Invalid UTF-8: refused (`"strict"`) or decoded with replacement characters. */
  readonly utf8: "strict" | "replace";
}

/** A body read, or why not. */
export type BodyRead =
  | { readonly ok: true; readonly text: string }
  | {
    readonly ok: false;
    /** Over the limit; not UTF-8 (strict); the read failed (the client went away mid-body). */
    readonly reason: "too_large" | "not_utf8" | "unreadable";
    readonly message: string;
  };

function tooLarge(limit: number): BodyRead {
  return { ok: false, reason: "too_large", message: `request body exceeds ${limit} bytes` };
}

function decode(bytes: Uint8Array, utf8: ReadBodyOptions["utf8"]): BodyRead {
  try {
    return { ok: true, text: new TextDecoder("utf-8", { fatal: utf8 === "strict" }).decode(bytes) };
  } catch {
    return { ok: false, reason: "not_utf8", message: "request body is not UTF-8" };
  }
}

/** Reads `request`'s body as text, at most `options.limit` bytes; never throws. */
export async function readBody(request: Request, options: ReadBodyOptions): Promise<BodyRead> {
  try {
    return await read(request, options);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, reason: "unreadable", message: `request body could not be read: ${message}` };
  }
}

async function read(request: Request, options: ReadBodyOptions): Promise<BodyRead> {
  const { limit } = options;
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared)) {
    // HTTP framing holds the body to its declared length: within the cap it is read whole.
    if (declared <= limit) return decode(new Uint8Array(await request.arrayBuffer()), options.utf8);
    if (options.oversized === "cancel") {
      await request.body?.cancel().catch(() => {});
      return tooLarge(limit);
    }
  }
  if (request.body === null) return { ok: true, text: "" };
  const hardCap = options.oversized === "cancel" ? limit : Math.max(limit, options.oversized.drainUpTo);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > hardCap) {
      await reader.cancel().catch(() => {});
      return tooLarge(limit);
    }
    if (total <= limit) chunks.push(value);
  }
  if (total > limit) return tooLarge(limit);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return decode(bytes, options.utf8);
}
