/**
 * @module
 * JSON responses whose body is a single-chunk `ReadableStream`: `Deno.serve` over TLS with HTTP/1.1
 * (how kube-apiserver calls webhooks, and Quay its notification receiver) stalls ~44 ms on string
 * bodies (docs/runtime.md). Shared by the admission webhook and the notification receiver, apart
 * from either so the receiver does not load the webhook's Hono app.
 */

const encoder = new TextEncoder();
const JSON_HEADERS = { "content-type": "application/json" } as const;

/** A JSON response whose body is one stream chunk (see the module comment for why). */
export function jsonStreamResponse(value: unknown, status = 200): Response {
  return jsonTextResponse(JSON.stringify(value), status);
}

/** {@linkcode jsonStreamResponse} for JSON already serialized. */
export function jsonTextResponse(json: string, status = 200): Response {
  const bytes = encoder.encode(json);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
  return new Response(body, { status, headers: JSON_HEADERS });
}
