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
 * in ports and loopback, while client-node ignores the variables altogether. Addresses are parsed
 * here too rather than with `node:net` (`isIP`, `BlockList`): any `node:` module brings Deno's Node
 * compatibility layer into the process (about 10 MiB resident), and this module is loaded by every
 * process.
 */

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

type Matcher = (host: string, port: string, ip: Ip | undefined) => boolean;

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443", "socks5:": "1080" };

const IPV4_PART = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)$/;

/** The 4 bytes of a dotted-quad IPv4 address (Node's `isIPv4` grammar: no leading zeros). */
function ipv4Bytes(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => IPV4_PART.test(p))) return undefined;
  return parts.map(Number);
}

/** The 16 bytes of an IPv6 address (`::` shorthand, a dotted IPv4 tail, a `%zone` ignored). */
function ipv6Bytes(text: string): number[] | undefined {
  const zone = text.indexOf("%");
  if (zone >= 0 && !/^[0-9a-zA-Z.:-]+$/.test(text.slice(zone + 1))) return undefined;
  const address = zone >= 0 ? text.slice(0, zone) : text;
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string, last: boolean): number[] | undefined => {
    if (half === "") return [];
    const words: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (last && i === parts.length - 1 && part.includes(".")) {
        const v4 = ipv4Bytes(part);
        if (!v4) return undefined;
        words.push((v4[0] as number) << 8 | (v4[1] as number), (v4[2] as number) << 8 | (v4[3] as number));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) words.push(parseInt(part, 16));
      else return undefined;
    }
    return words;
  };
  const head = groups(halves[0] as string, halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1] as string, true) : [];
  if (!head || !tail) return undefined;
  const count = head.length + tail.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const words = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

interface Ip {
  readonly ip: string;
  readonly family: 4 | 6;
  readonly bytes: readonly number[];
}

/** `[v6]` → `v6`, and the IP version and bytes of a host (undefined for a name). */
function ipOf(host: string): Ip | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const v4 = ipv4Bytes(bare);
  if (v4) return { ip: bare, family: 4, bytes: v4 };
  const v6 = ipv6Bytes(bare);
  return v6 ? { ip: bare, family: 6, bytes: v6 } : undefined;
}

/** Whether the first `prefix` bits of two addresses of one family agree. */
function samePrefix(a: readonly number[], b: readonly number[], prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit += 8) {
    const mask = prefix - bit >= 8 ? 0xff : (0xff << (8 - (prefix - bit))) & 0xff;
    if ((((a[bit / 8] as number) ^ (b[bit / 8] as number)) & mask) !== 0) return false;
  }
  return true;
}

const LOOPBACK_V6 = ipv6Bytes("::1") as number[];
const MAPPED_LOOPBACK_V4 = ipv6Bytes("::ffff:127.0.0.0") as number[];

function isLoopback(ip: Ip): boolean {
  if (ip.family === 4) return ip.bytes[0] === 127;
  return samePrefix(ip.bytes, LOOPBACK_V6, 128) || samePrefix(ip.bytes, MAPPED_LOOPBACK_V4, 104);
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

/**
 * A domain name's ASCII (punycode) form, as WHATWG URL host parsing gives it (what Node's
 * `domainToASCII` does); "" when it is not a valid host.
 */
function domainToASCII(name: string): string {
  // Characters that would end the host in a URL are never part of a valid one.
  if (name === "" || /[\s/?#@:\[\]\\%]/.test(name)) return "";
  try {
    return new URL(`http://${name}/`).hostname;
  } catch {
    return "";
  }
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
        ipMatchers.push((_h, _p, ip) =>
          ip !== undefined && ip.family === base.family && samePrefix(ip.bytes, base.bytes, prefix)
        );
        continue;
      }
    }
    let { host, port } = splitHostPort(p);
    const ip = ipOf(host);
    if (ip) {
      ipMatchers.push((_h, reqPort, reqIp) =>
        reqIp !== undefined && reqIp.family === ip.family &&
        samePrefix(reqIp.bytes, ip.bytes, ip.family === 4 ? 32 : 128) && (port === "" || port === reqPort)
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
    if (ip && this.#noProxy.ip.some((m) => m(lower, port, ip))) return false;
    const name = ip ? lower : ascii(lower);
    return !this.#noProxy.domain.some((m) => m(name, port, ip));
  }
}
