/**
 * @module
 * A TCP front for a `Deno.serve` listener that enforces the timeouts `Deno.serve` lacks (Deno 2.9
 * has no header, body or idle timeout, so a slow or silent client holds a connection, a socket
 * and memory for as long as it likes). The front accepts on the public address and pipes bytes to
 * the real server on a loopback port; it never decrypts, so it judges a connection only by who is
 * waiting for whom:
 *
 * - a new connection must send its first byte within `firstByteTimeoutMs` (the TLS ClientHello or
 *   the request line);
 * - once the client has sent bytes the server has not answered, the server must start answering
 *   within `requestTimeoutMs` — which bounds the time to send headers and body (a slowloris
 *   trickling one byte at a time is cut) plus the handler's own time;
 * - a connection with no bytes either way for `idleTimeoutMs` is closed (longer than Go's 90 s
 *   idle timeout, so kube-apiserver closes its idle keep-alive connections first and never writes
 *   a request into one being closed);
 * - at most `maxConnections` are open; beyond, new ones are closed at once;
 * - a connection the server drops before answering anything (a listener retired by a certificate
 *   rotation resets what is left in its accept queue) is reopened and the client's first bytes are
 *   replayed, so the client does not see it.
 *
 * Why not `node:https` with `headersTimeout`: in Deno it is built on the same server and does not
 * enforce those options; and hand-parsing HTTP inside TLS would be a server of our own.
 */

/** Why the guard closed a connection. */
export type GuardReason = "first-byte-timeout" | "request-timeout" | "idle-timeout" | "too-many-connections";

/** Options for {@linkcode guardConnections}. */
export interface GuardOptions {
  /** Public address. */
  hostname: string;
  /** Public port; 0 picks one. */
  port: number;
  /** The loopback port of the server behind. */
  targetPort: () => number;
  /** @default 10_000 */
  firstByteTimeoutMs?: number;
  /** @default 15_000 */
  requestTimeoutMs?: number;
  /** @default 120_000 */
  idleTimeoutMs?: number;
  /** @default 1_000 */
  maxConnections?: number;
  /** Called for every connection the guard closes (metrics, debug logs). */
  onClose?: (reason: GuardReason) => void;
}

/** A running guard. */
export interface ConnectionGuard {
  readonly addr: Deno.NetAddr;
  /** Connections open now. */
  readonly open: number;
  /**
   * Stops accepting, lets connections end on their own for up to `graceMs` (the server behind,
   * shutting down, closes them after their last response, which is forwarded first), then closes
   * the rest.
   */
  close(graceMs?: number): Promise<void>;
}

interface Tracked {
  readonly client: Deno.Conn;
  upstream?: Deno.Conn;
  readonly openedAt: number;
  lastActivity: number;
  /** When the client started sending bytes the server has not answered yet. */
  waitingSince: number | undefined;
  sawClientByte: boolean;
  closed: boolean;
}

/** Client bytes kept for a replay; beyond, a connection the server drops unanswered is not retried. */
const REPLAY_LIMIT_BYTES = 64 * 1024;

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // already closed
  }
}

/** Starts a guard in front of the server at `127.0.0.1:targetPort()`. */
export function guardConnections(options: GuardOptions): ConnectionGuard {
  const firstByteMs = options.firstByteTimeoutMs ?? 10_000;
  const requestMs = options.requestTimeoutMs ?? 15_000;
  const idleMs = options.idleTimeoutMs ?? 120_000;
  const max = options.maxConnections ?? 1_000;
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const connections = new Set<Tracked>();
  const tasks = new Set<Promise<void>>();

  const end = (t: Tracked, reason?: GuardReason) => {
    if (t.closed) return;
    t.closed = true;
    connections.delete(t);
    closeQuietly(t.client);
    closeQuietly(t.upstream);
    if (reason) options.onClose?.(reason);
  };

  // One sweep for all connections rather than a timer each.
  const tick = Math.max(50, Math.min(firstByteMs, requestMs, idleMs) / 10);
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const t of connections) {
      if (!t.sawClientByte && now - t.openedAt > firstByteMs) end(t, "first-byte-timeout");
      else if (t.waitingSince !== undefined && now - t.waitingSince > requestMs) end(t, "request-timeout");
      else if (now - t.lastActivity > idleMs) end(t, "idle-timeout");
    }
  }, tick);

  async function writeAll(to: Deno.Conn, bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += await to.write(bytes.subarray(written));
  }

  /** Connects to the server behind, retrying briefly while a rotation rebinds its port. */
  async function connectUpstream(): Promise<Deno.Conn | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        return await Deno.connect({ hostname: "127.0.0.1", port: options.targetPort() });
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
    return undefined;
  }

  async function serve(client: Deno.Conn): Promise<void> {
    const now = performance.now();
    const t: Tracked = {
      client,
      openedAt: now,
      lastActivity: now,
      waitingSince: undefined,
      sawClientByte: false,
      closed: false,
    };
    if (connections.size >= max) {
      t.closed = true;
      closeQuietly(client);
      options.onClose?.("too-many-connections");
      return;
    }
    connections.add(t);
    t.upstream = await connectUpstream();
    if (!t.upstream || t.closed) return end(t);
    // The client's bytes until the server's first answer (the TLS ClientHello): if the server's
    // connection dies before it answered anything — a listener retired by a certificate rotation
    // resets the connections still in its accept queue — they are replayed on a new connection,
    // so the client never sees that failure.
    const replay: Uint8Array[] = [];
    let replayBytes = 0;
    let answered = false;

    const fromClient = (async () => {
      const buffer = new Uint8Array(16 * 1024);
      try {
        for (;;) {
          const n = await client.read(buffer);
          if (n === null) break;
          const now = performance.now();
          t.lastActivity = now;
          t.sawClientByte = true;
          t.waitingSince ??= now;
          // A copy only while it may be replayed; after that the buffer is written out before the next read.
          const keep = !answered && replayBytes <= REPLAY_LIMIT_BYTES;
          const chunk = keep ? buffer.slice(0, n) : buffer.subarray(0, n);
          if (keep) {
            replay.push(chunk);
            replayBytes += chunk.length;
          }
          try {
            await writeAll(t.upstream as Deno.Conn, chunk);
          } catch {
            // The server's side broke: the other direction reconnects (and replays) or ends.
            if (answered) break;
          }
        }
      } catch {
        // the client went away
      }
      end(t);
    })();

    const buffer = new Uint8Array(16 * 1024);
    for (let attempt = 0; !t.closed; attempt++) {
      const upstream = t.upstream as Deno.Conn;
      try {
        for (;;) {
          const n = await upstream.read(buffer);
          if (n === null) break;
          answered = true;
          replay.length = 0;
          t.lastActivity = performance.now();
          t.waitingSince = undefined;
          await writeAll(client, buffer.subarray(0, n));
        }
      } catch {
        // the server's side broke
      }
      if (answered || attempt >= 3 || t.closed || replayBytes > REPLAY_LIMIT_BYTES) break;
      closeQuietly(upstream);
      const next = await connectUpstream();
      if (!next) break;
      try {
        for (let i = 0; i < replay.length; i++) await writeAll(next, replay[i] as Uint8Array);
      } catch {
        closeQuietly(next);
        break;
      }
      // No await between the last replayed chunk and the switch: later chunks go to `next`.
      t.upstream = next;
    }
    end(t);
    await fromClient;
  }

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const task = serve(conn);
        tasks.add(task);
        task.finally(() => tasks.delete(task));
      }
    } catch {
      // listener closed
    }
  })();

  let closing: Promise<void> | undefined;
  return {
    addr: listener.addr as Deno.NetAddr,
    get open() {
      return connections.size;
    },
    close(graceMs = 1_000) {
      closing ??= (async () => {
        try {
          listener.close();
        } catch {
          // already closed
        }
        await accepting;
        const until = performance.now() + graceMs;
        while (connections.size > 0 && performance.now() < until) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        clearInterval(sweeper);
        for (const t of [...connections]) end(t);
        await Promise.allSettled([...tasks]);
      })();
      return closing;
    },
  };
}
