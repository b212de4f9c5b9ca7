/**
 * @module
 * A minimal HTTPS/1.1 POST client for admission webhook calls. kube-apiserver dials a webhook
 * service at its cluster address but verifies the serving certificate for
 * `<name>.<namespace>.svc`; here the service resolves to a local port, so the client connects to
 * that port and starts TLS with the service's DNS name (`Deno.startTls` verifies against
 * `hostname`), which `fetch` cannot do. It speaks HTTP/1.1 as kube-apiserver does to webhooks.
 * Errors are worded like Go's net/http and crypto/x509 ones, since they end up in Status messages.
 */

/** Options for {@linkcode postJson}. */
export interface PostOptions {
  /** Where to connect. */
  connect: { hostname: string; port: number };
  /** Name the certificate must be valid for (and SNI). */
  serverName: string;
  /** PEM CA bundle; the system roots when absent. */
  caPem?: string;
  /** Path with query, e.g. `/mutate?timeout=10s`. */
  path: string;
  /** The URL as reported in errors (`https://svc.ns.svc:443/mutate?timeout=10s`). */
  displayUrl: string;
  body: Uint8Array;
  timeoutMs: number;
}

/** The outcome of a webhook POST. */
export interface PostResult {
  status: number;
  body: Uint8Array;
}

/** A failed webhook call; `message` reads like Go's `Post "url": <cause>`. */
export class WebhookCallError extends Error {
  override name = "WebhookCallError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function concat(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

function indexOfCrlfCrlf(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}

function dechunk(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (;;) {
    let lineEnd = offset;
    while (lineEnd + 1 < bytes.length && !(bytes[lineEnd] === 13 && bytes[lineEnd + 1] === 10)) lineEnd++;
    const size = parseInt(decoder.decode(bytes.subarray(offset, lineEnd)).split(";")[0] as string, 16);
    if (!Number.isFinite(size) || size === 0) break;
    const start = lineEnd + 2;
    parts.push(bytes.subarray(start, start + size));
    offset = start + size + 2;
    if (offset >= bytes.length) break;
  }
  return concat(parts);
}

function describeTlsError(error: Error, serverName: string): string {
  const text = error.message;
  if (/UnknownIssuer|unknown issuer|BadSignature|invalid peer certificate: Other/i.test(text)) {
    return "tls: failed to verify certificate: x509: certificate signed by unknown authority";
  }
  if (/NotValidForName|not valid for name|CertNotValidForName/i.test(text)) {
    return `tls: failed to verify certificate: x509: certificate is not valid for ${serverName}`;
  }
  if (/Expired|NotValidYet/i.test(text)) {
    return "tls: failed to verify certificate: x509: certificate has expired or is not yet valid";
  }
  return `remote error: ${text}`;
}

/** POSTs JSON over HTTPS/1.1 and reads the whole answer; throws {@linkcode WebhookCallError}. */
export async function postJson(options: PostOptions): Promise<PostResult> {
  const { hostname, port } = options.connect;
  // A plain timer rather than AbortSignal.timeout, so that nothing outlives the call.
  const controller = new AbortController();
  const deadline = controller.signal;
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  let tcp: Deno.TcpConn | undefined;
  let tls: Deno.TlsConn | undefined;
  const closeAll = () => {
    try {
      (tls ?? tcp)?.close();
    } catch {
      // already closed
    }
  };
  deadline.addEventListener("abort", closeAll, { once: true });
  const fail = (cause: string) => new WebhookCallError(`Post "${options.displayUrl}": ${cause}`);
  try {
    try {
      tcp = await Deno.connect({ hostname, port, transport: "tcp" });
    } catch (error) {
      if (deadline.aborted) throw fail("context deadline exceeded");
      const refused = error instanceof Deno.errors.ConnectionRefused;
      throw fail(
        `dial tcp ${hostname}:${port}: connect: ${refused ? "connection refused" : (error as Error).message}`,
      );
    }
    tcp.setNoDelay(true);
    try {
      tls = await Deno.startTls(tcp, {
        hostname: options.serverName,
        caCerts: options.caPem ? [options.caPem] : undefined,
        alpnProtocols: ["http/1.1"],
      });
      await tls.handshake();
    } catch (error) {
      if (deadline.aborted) throw fail("context deadline exceeded");
      throw fail(describeTlsError(error as Error, options.serverName));
    }
    const head = `POST ${options.path} HTTP/1.1\r\nHost: ${options.serverName}:${port}\r\n` +
      `User-Agent: kube-apiserver-admission\r\nAccept: application/json, */*\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${options.body.byteLength}\r\nConnection: close\r\n\r\n`;
    const chunks: Uint8Array[] = [];
    try {
      await writeAll(tls, concat([encoder.encode(head), options.body]));
      const buffer = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await tls.read(buffer);
        if (n === null) break;
        chunks.push(buffer.slice(0, n));
      }
    } catch (error) {
      if (deadline.aborted) {
        throw fail("context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
      }
      if (chunks.length === 0) throw fail(`EOF: ${(error as Error).message}`);
    }
    if (deadline.aborted) {
      throw fail("context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
    }
    const all = concat(chunks);
    const split = indexOfCrlfCrlf(all);
    if (split < 0) throw fail("EOF");
    const headText = decoder.decode(all.subarray(0, split));
    const [statusLine, ...headerLines] = headText.split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1] ?? NaN);
    if (!Number.isFinite(status)) throw fail(`malformed HTTP response ${JSON.stringify(statusLine)}`);
    const headers = new Map(headerLines.map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as [string, string];
    }));
    let body = all.subarray(split + 4);
    if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) body = dechunk(body);
    else if (headers.has("content-length")) body = body.subarray(0, Number(headers.get("content-length")));
    return { status, body };
  } finally {
    clearTimeout(timer);
    deadline.removeEventListener("abort", closeAll);
    closeAll();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}
