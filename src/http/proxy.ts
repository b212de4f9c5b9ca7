/**
 * @module
 * Which proxy, if any, a request goes through: the rules of Go's `golang.org/x/net/http/httpproxy`
 * (what the upstream operator, `oc` and OpenShift's own components follow), so one `NO_PROXY` means
 * the same to every component of a cluster. `HTTPS_PROXY` serves `https:` URLs, `HTTP_PROXY` `http:`
 * ones. `NO_PROXY` is a comma-separated list of: `*` (no proxy at all); an IP address, optionally with
 * a port (`1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:443`); a CIDR (`10.0.0.0/8`); a domain name,
 * optionally with a port, matching the name and its subdomains (`foo.com`), or only its subdomains
 * with a leading `.` or `*.` (`.foo.com`). `localhost` and loopback addresses are never proxied.
 *
 * Hand-written because no npm package implements these rules exactly: `proxy-from-env` has no CIDRs
 * and a different meaning for `*.` and ports, and Deno's built-in handling (reqwest's rules) differs
 * in ports and loopback, while client-node ignores the variables altogether.
 */
import net from "node:net";
import { domainToASCII } from "node:url";

/** The proxy variables as read from the environment (by `src/config.ts`). */
export interface ProxyEnvironment {
  readonly httpsProxy?: string | undefined;
  readonly httpProxy?: string | undefined;
  readonly noProxy?: string | undefined;
}

/** A proxy to send a request through. */
export interface ProxyTarget {
  /** `http://host:port` (or https), without credentials: safe to log. */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
}

/** A proxy URL that cannot be used; `variable` says which one. */
export class ProxyConfigError extends Error {
  readonly variable: "httpsProxy" | "httpProxy";
  constructor(message: string, variable: "httpsProxy" | "httpProxy") {
    super(message);
    this.name = "ProxyConfigError";
    this.variable = variable;
  }
}

/**
 * Parses a proxy variable as Go does: a full URL (`http`, `https`, `socks5`), or `host[:port]` with
 * `http://` assumed.
 */
export function parseProxyUrl(value: string | undefined): URL | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const v = value.trim();
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    url = undefined;
  }
  if (!url || !["http:", "https:", "socks5:"].includes(url.protocol) || url.hostname === "") {
    try {
      url = new URL(`http://${v}`);
    } catch {
      return undefined;
    }
  }
  return url;
}

/** Throws {@linkcode ProxyConfigError} for a proxy variable no request could use. */
export function validateProxyEnvironment(env: ProxyEnvironment): void {
  for (const variable of ["httpsProxy", "httpProxy"] as const) {
    const value = env[variable];
    if (value === undefined || value.trim() === "") continue;
    const url = parseProxyUrl(value);
    // A proxy is an origin: anything after it (a path) means the value was mistyped.
    if (!url || url.hostname === "" || !["", "/"].includes(url.pathname)) {
      throw new ProxyConfigError(
        `"${redactProxyUrl(value)}" is not a proxy URL (e.g. http://proxy:3128)`,
        variable,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ProxyConfigError(
        `${url.protocol.slice(0, -1)} proxies are not supported (use an http:// or https:// proxy)`,
        variable,
      );
    }
  }
}

/** The URL with any user name and password removed, for logs and messages. */
export function redactProxyUrl(value: string): string {
  const url = parseProxyUrl(value);
  if (!url) return value.replace(/\/\/[^@/]*@/, "//");
  return `${url.protocol}//${url.host}`;
}

type Matcher = (host: string, port: string, ip: string | undefined) => boolean;

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443", "socks5:": "1080" };

/** `[v6]` → `v6`, and the IP version of a host (0 for a name). */
function ipOf(host: string): { ip: string; family: 4 | 6 } | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const family = net.isIP(bare);
  return family === 0 ? undefined : { ip: bare, family: family as 4 | 6 };
}

function isLoopback(ip: { ip: string; family: 4 | 6 }): boolean {
  if (ip.family === 4) return ip.ip.startsWith("127.");
  const loop = new net.BlockList();
  loop.addAddress("::1", "ipv6");
  loop.addSubnet("::ffff:127.0.0.0", 104, "ipv6");
  return loop.check(ip.ip, "ipv6");
}

/** `host`, `host:port`, `[v6]:port` → host and port (port "" when absent). */
function splitHostPort(entry: string): { host: string; port: string } {
  const v6 = /^\[([^\]]*)\](?::(\d*))?$/.exec(entry);
  if (v6) return { host: v6[1] ?? "", port: v6[2] ?? "" };
  const colons = entry.split(":").length - 1;
  if (colons === 1) {
    const [host, port] = entry.split(":") as [string, string];
    return { host, port };
  }
  return { host: entry, port: "" };
}

function ascii(name: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(name)) return name;
  const converted = domainToASCII(name.replace(/^\./, ""));
  return converted === "" ? name : (name.startsWith(".") ? "." : "") + converted;
}

function compileNoProxy(noProxy: string): { all: boolean; ip: Matcher[]; domain: Matcher[] } {
  const ipMatchers: Matcher[] = [];
  const domainMatchers: Matcher[] = [];
  for (const raw of noProxy.split(",")) {
    const p = raw.trim().toLowerCase();
    if (p === "") continue;
    if (p === "*") return { all: true, ip: [], domain: [] };
    const cidr = /^(.+)\/(\d{1,3})$/.exec(p);
    if (cidr) {
      const base = ipOf(cidr[1] ?? "");
      const prefix = Number(cidr[2]);
      if (base && prefix <= (base.family === 4 ? 32 : 128)) {
        const list = new net.BlockList();
        list.addSubnet(base.ip, prefix, base.family === 4 ? "ipv4" : "ipv6");
        const type = base.family === 4 ? "ipv4" : "ipv6";
        ipMatchers.push((_h, _p, ip) =>
          ip !== undefined && net.isIP(ip) === base.family && list.check(ip, type)
        );
        continue;
      }
    }
    let { host, port } = splitHostPort(p);
    const ip = ipOf(host);
    if (ip) {
      const list = new net.BlockList();
      list.addAddress(ip.ip, ip.family === 4 ? "ipv4" : "ipv6");
      const type = ip.family === 4 ? "ipv4" : "ipv6";
      ipMatchers.push((_h, reqPort, reqIp) =>
        reqIp !== undefined && net.isIP(reqIp) === ip.family && list.check(reqIp, type) &&
        (port === "" || port === reqPort)
      );
      continue;
    }
    if (host === "") continue; // malformed, e.g. ":1": ignored, as Go does
    if (host.startsWith("*.")) host = host.slice(1);
    const matchHost = !host.startsWith(".");
    if (matchHost) host = "." + host;
    host = ascii(host);
    const suffix = host;
    domainMatchers.push((reqHost, reqPort) =>
      (reqHost.endsWith(suffix) || (matchHost && reqHost === suffix.slice(1))) &&
      (port === "" || port === reqPort)
    );
  }
  return { all: false, ip: ipMatchers, domain: domainMatchers };
}

/** Decides the proxy of each request URL from one {@linkcode ProxyEnvironment}. */
export class ProxyResolver {
  readonly #https: URL | undefined;
  readonly #http: URL | undefined;
  readonly #noProxy: ReturnType<typeof compileNoProxy>;

  constructor(env: ProxyEnvironment = {}) {
    this.#https = parseProxyUrl(env.httpsProxy);
    this.#http = parseProxyUrl(env.httpProxy);
    this.#noProxy = compileNoProxy(env.noProxy ?? "");
  }

  /** True when some proxy is configured at all. */
  get configured(): boolean {
    return this.#https !== undefined || this.#http !== undefined;
  }

  /** The proxy for `url`, or `undefined` to connect directly. */
  proxyFor(url: string | URL): ProxyTarget | undefined {
    const u = typeof url === "string" ? new URL(url) : url;
    const proxy = u.protocol === "https:" ? this.#https : u.protocol === "http:" ? this.#http : undefined;
    if (!proxy) return undefined;
    const port = u.port || DEFAULT_PORTS[u.protocol] || "";
    if (!this.useProxy(u.hostname, port)) return undefined;
    return {
      url: `${proxy.protocol}//${proxy.host}`,
      ...(proxy.username ? { username: decodeURIComponent(proxy.username) } : {}),
      ...(proxy.password ? { password: decodeURIComponent(proxy.password) } : {}),
    };
  }

  /** Go's `useProxy`: whether a request to `host` (a name, an IPv4 or a `[v6]`) and `port` is proxied. */
  useProxy(host: string, port: string): boolean {
    if (host === "") return true;
    const lower = host.toLowerCase().trim();
    if (lower === "localhost") return false;
    const ip = ipOf(lower);
    if (ip && isLoopback(ip)) return false;
    if (this.#noProxy.all) return false;
    if (ip && this.#noProxy.ip.some((m) => m(lower, port, ip.ip))) return false;
    const name = ip ? lower : ascii(lower);
    return !this.#noProxy.domain.some((m) => m(name, port, ip?.ip));
  }
}
