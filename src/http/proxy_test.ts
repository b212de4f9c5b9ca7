/**
 * The proxy choice against the cases of Go's `golang.org/x/net/http/httpproxy` tests
 * (`TestUseProxy`, `TestAllNoProxy`, `TestInvalidNoProxy`, `TestProxyForURL`), so a `NO_PROXY` means
 * to quay-bridge what it means to the Go components of a cluster.
 */
import assert from "node:assert/strict";
import { ProxyResolver, redactProxyUrl, validateProxyEnvironment } from "./proxy.ts";

const NO_PROXY = "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, " +
  "10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, 2002:db8:a::45/64";

/** host → proxied? (request on port 80), from Go's `UseProxyTests`. */
const USE_PROXY: [string, boolean][] = [
  ["localhost", false],
  ["127.0.0.1", false],
  ["127.0.0.2", false],
  ["[::1]", false],
  ["[::2]", true],
  ["192.168.1.1", false],
  ["192.168.1.2", true],
  ["192.168.1.3", false],
  ["192.168.1.4", true],
  ["10.0.0.2", false],
  ["[2001:db8::52:0:1]", false],
  ["[2001:db8::52:0:2]", true],
  ["[2001:db8::52:0:3]", false],
  ["[2002:db8:a::123]", false],
  ["[fe80::424b:c8be:1643:a1b6]", true],
  ["barbaz.net", true],
  ["www.barbaz.net", false],
  ["foobar.com", false],
  ["www.foobar.com", false],
  ["foofoobar.com", true],
  ["baz.com", true],
  ["localhost.net", true],
  ["local.localhost", true],
  ["barbarbaz.net", true],
  ["wildcard.io", true],
  ["nested.wildcard.io", false],
  ["awildcard.io", true],
];

Deno.test("NO_PROXY: Go's UseProxyTests", () => {
  const resolver = new ProxyResolver({ noProxy: NO_PROXY, httpProxy: "http://proxy:3128" });
  for (const [host, proxied] of USE_PROXY) {
    assert.equal(resolver.useProxy(host, "80"), proxied, `${host}:80`);
    // The same through a request URL.
    assert.equal(resolver.proxyFor(`http://${host}:80/`) !== undefined, proxied, `http://${host}:80/`);
  }
});

Deno.test("NO_PROXY=* proxies nothing; a malformed entry is ignored", () => {
  const all = new ProxyResolver({ noProxy: "*", httpProxy: "proxy" });
  for (const [host] of USE_PROXY) assert.equal(all.useProxy(host, "80"), false, host);
  const invalid = new ProxyResolver({ noProxy: ":1", httpProxy: "proxy" });
  assert.equal(invalid.useProxy("example.com", "80"), true);
});

/** Go's `proxyForURLTests` (the CGI cases aside: the operator is no CGI handler). */
const PROXY_FOR_URL: {
  http?: string;
  https?: string;
  noProxy?: string;
  req?: string;
  want: string | null;
}[] = [
  { http: "127.0.0.1:8080", want: "http://127.0.0.1:8080" },
  { http: "cache.corp.example.com:1234", want: "http://cache.corp.example.com:1234" },
  { http: "cache.corp.example.com", want: "http://cache.corp.example.com" },
  { http: "localhost", want: "http://localhost" },
  { http: "https://cache.corp.example.com", want: "https://cache.corp.example.com" },
  { http: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080" },
  { http: "https://127.0.0.1:8080", want: "https://127.0.0.1:8080" },
  {
    http: "http.proxy.tld",
    https: "secure.proxy.tld",
    req: "http://insecure.tld/",
    want: "http://http.proxy.tld",
  },
  {
    http: "http.proxy.tld",
    https: "secure.proxy.tld",
    req: "https://secure.tld/",
    want: "http://secure.proxy.tld",
  },
  {
    http: "http.proxy.tld",
    https: "https://secure.proxy.tld",
    req: "https://secure.tld/",
    want: "https://secure.proxy.tld",
  },
  { http: "http.proxy.tld", req: "https://secure.tld/", want: null },
  { http: "http.proxy.tld", req: "ftp://insecure.tld/", want: null },
  { want: null },
  { noProxy: "example.com", http: "proxy", req: "http://example.com/", want: null },
  { noProxy: ".example.com", http: "proxy", req: "http://example.com/", want: "http://proxy" },
  { noProxy: "ample.com", http: "proxy", req: "http://example.com/", want: "http://proxy" },
  { noProxy: "example.com", http: "proxy", req: "http://foo.example.com/", want: null },
  { noProxy: ".foo.com", http: "proxy", req: "http://example.com/", want: "http://proxy" },
  { noProxy: ".示例.com", http: "proxy", req: "http://www.示例.com", want: null },
  { noProxy: "xn--fsq092h.com", http: "proxy", req: "http://www.示例.com", want: null },
  { noProxy: "示例.com", http: "proxy", req: "http://www.xn--fsq092h.com", want: null },
];

Deno.test("proxy for a URL: Go's proxyForURLTests", () => {
  for (const c of PROXY_FOR_URL) {
    const resolver = new ProxyResolver({ httpProxy: c.http, httpsProxy: c.https, noProxy: c.noProxy });
    const got = resolver.proxyFor(c.req ?? "http://example.com")?.url ?? null;
    assert.equal(got, c.want, JSON.stringify(c));
  }
});

Deno.test("ports in NO_PROXY entries, the default port of the scheme, credentials kept out of the URL", () => {
  const r = new ProxyResolver({
    httpsProxy: "http://user:p%40ss@proxy.corp:3128",
    noProxy: "quay.corp:8443,registry.corp",
  });
  assert.equal(r.proxyFor("https://quay.corp:8443/api/v1/user/"), undefined);
  assert.deepEqual(r.proxyFor("https://quay.corp/api/v1/user/"), {
    url: "http://proxy.corp:3128",
    username: "user",
    password: "p@ss",
  });
  assert.equal(r.proxyFor("https://registry.corp:5000/v2/"), undefined);
  assert.equal(redactProxyUrl("http://user:secret@proxy.corp:3128"), "http://proxy.corp:3128");
  assert.ok(!redactProxyUrl("user:secret@proxy.corp:3128").includes("secret"));
});

Deno.test("unusable proxy variables are refused", () => {
  assert.throws(() => validateProxyEnvironment({ httpsProxy: "socks5://proxy:1080" }), /not supported/);
  assert.throws(() => validateProxyEnvironment({ httpsProxy: "http://exa mple:3128" }), /not a proxy URL/);
  validateProxyEnvironment({ httpsProxy: "proxy.corp:3128", httpProxy: "http://proxy.corp" });
});
