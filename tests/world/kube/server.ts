/**
 * @module
 * The HTTPS listener, built on `node:https` with `noDelay` rather than `Deno.serve`: Deno.serve
 * leaves Nagle's algorithm on, and a response written as headers plus a body of a few kilobytes then
 * waits for the client's delayed ACK, ~44 ms per request, over HTTP/1.1 and HTTP/2, with string,
 * byte and single-chunk stream bodies alike (measured: 3 KB and 60 KB bodies stall; only tiny bodies
 * without Content-Length escape). With `noDelay` the same requests take well under a millisecond.
 * The adapter turns node's request into a web `Request` and streams the web `Response` back, so
 * watches are written event by event.
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** Options for {@linkcode serveHttps}. */
export interface ServeOptions {
  cert: string;
  key: string;
  /** Bodies above this size are refused with `tooLarge()` before the handler runs. */
  maxBodyBytes: number;
  tooLarge: () => Response;
  handler: (request: Request) => Promise<Response>;
}

/** A running listener. */
export interface HttpsListener {
  port: number;
  close(): Promise<void>;
}

function toHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  }
  return headers;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array<ArrayBuffer> | "too large"> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of req) {
    const bytes = chunk as Uint8Array;
    total += bytes.byteLength;
    if (total > limit) return "too large";
    chunks.push(bytes);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

async function writeResponse(res: ServerResponse, response: Response, head: boolean): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, key) => res.setHeader(key, value));
  if (!response.body || head) {
    await response.body?.cancel();
    res.end();
    return;
  }
  const reader = response.body.getReader();
  if (response.headers.has("content-length")) {
    // A complete body: one write, so it leaves in as few segments as possible.
    const parts: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
    res.end(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    return;
  }
  // A watch may stay quiet for long: the client must get the headers now, not with the first event.
  res.flushHeaders();
  let closed = false;
  res.on("close", () => {
    closed = true;
    reader.cancel().catch(() => {});
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || closed) break;
      res.write(value);
    }
  } catch {
    // the client went away
  }
  if (!closed) res.end();
}

/** Listens on 127.0.0.1, port 0. */
export async function serveHttps(options: ServeOptions): Promise<HttpsListener> {
  const sockets = new Set<Socket>();
  const server = https.createServer({ cert: options.cert, key: options.key, noDelay: true }, (req, res) => {
    void (async () => {
      try {
        const declared = Number(req.headers["content-length"] ?? 0);
        let body: Uint8Array<ArrayBuffer> | undefined;
        if (req.method !== "GET" && req.method !== "HEAD") {
          const read = declared > options.maxBodyBytes
            ? "too large"
            : await readBody(req, options.maxBodyBytes);
          if (read === "too large") {
            await writeResponse(res, options.tooLarge(), false);
            req.destroy();
            return;
          }
          body = read;
        }
        const request = new Request(`https://${req.headers.host ?? "127.0.0.1"}${req.url ?? "/"}`, {
          method: req.method,
          headers: toHeaders(req),
          body: body && body.byteLength > 0 ? body : undefined,
        });
        const response = await options.handler(request);
        await writeResponse(res, response, req.method === "HEAD");
      } catch (error) {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader("content-type", "text/plain");
        }
        res.end(`internal error: ${(error as Error)?.message}`);
      }
    })();
  });
  server.on("secureConnection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
