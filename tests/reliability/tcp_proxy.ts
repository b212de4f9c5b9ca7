/**
 * @module
 * A TCP proxy in front of the test world's API server that can cut it off, as a network partition
 * or an API server outage would: `refuse` closes every connection as soon as it is accepted,
 * `stall` accepts and never answers; either mode first drops the connections in progress (watches
 * included). TLS passes through untouched, so clients verify the world's own certificate.
 */

/** What the proxy does with connections. */
export type ProxyMode = "open" | "refuse" | "stall";

/** A running proxy. */
export interface TcpProxy {
  /** `https://127.0.0.1:<port>` of the proxy. */
  readonly url: string;
  readonly port: number;
  set(mode: ProxyMode): void;
  close(): Promise<void>;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Proxies `127.0.0.1:<port>` to `target` (`https://127.0.0.1:<port>`). */
export function startTcpProxy(target: string): TcpProxy {
  const upstream = new URL(target);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let mode: ProxyMode = "open";
  const live = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();

  const track = (p: Promise<void>) => {
    tasks.add(p);
    p.finally(() => tasks.delete(p));
  };

  async function serve(conn: Deno.Conn): Promise<void> {
    live.add(conn);
    if (mode === "refuse") {
      live.delete(conn);
      closeQuietly(conn);
      return;
    }
    if (mode === "stall") return; // held until the mode changes or the proxy closes
    let up: Deno.Conn;
    try {
      up = await Deno.connect({ hostname: upstream.hostname, port: Number(upstream.port) });
    } catch {
      live.delete(conn);
      closeQuietly(conn);
      return;
    }
    live.add(up);
    const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
      try {
        await from.readable.pipeTo(to.writable, { preventClose: true });
      } catch {
        // the other side went away
      }
      live.delete(from);
      live.delete(to);
      closeQuietly(from);
      closeQuietly(to);
    };
    await Promise.all([pipe(conn, up), pipe(up, conn)]);
  }

  const accepting = (async () => {
    try {
      for await (const conn of listener) track(serve(conn));
    } catch {
      // listener closed
    }
  })();

  return {
    url: `https://127.0.0.1:${port}`,
    port,
    set(next) {
      mode = next;
      for (const conn of [...live]) {
        live.delete(conn);
        closeQuietly(conn);
      }
    },
    async close() {
      listener.close();
      for (const conn of [...live]) closeQuietly(conn);
      live.clear();
      await accepting;
      await Promise.allSettled([...tasks]);
    },
  };
}

/** A copy of `kubeconfig` whose server is `url`. */
export async function kubeconfigVia(kubeconfig: string, url: string): Promise<string> {
  const text = await Deno.readTextFile(kubeconfig);
  const path = `${kubeconfig}-via-${new URL(url).port}`;
  await Deno.writeTextFile(path, text.replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: ${url}`));
  return path;
}
