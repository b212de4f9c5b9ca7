/**
 * @module
 * The real Red Hat Quay under the tests: started (or found running) through `start.sh` beside this
 * file, which runs a quay-server directory's `start.sh` under a lock, so parallel test files share
 * one Quay. The first start on a machine takes 15-25 minutes (pip install); later ones seconds.
 * When Quay cannot come up the call throws {@linkcode RealQuayError} with the reason: the tests
 * that need it fail, they never skip.
 *
 * ```ts
 * const quay = await startRealQuay();
 * const org = uniqueName("parity");
 * await quay.api("POST", "/api/v1/organization/", { body: { name: org, email: `${org}@example.com` } });
 * ```
 *
 * The Quay is shared (other test files, other runs): everything a test creates gets a unique name
 * ({@linkcode uniqueName}) and is deleted afterwards.
 */

/** Raised when the real Quay cannot be started; the message says why. */
export class RealQuayError extends Error {
  override name = "RealQuayError";
}

/** A running real Quay. */
export interface RealQuay {
  /** `https://127.0.0.1:<port>`: API (`/api/v1`) and registry (`/v2`). */
  readonly url: string;
  /** `127.0.0.1:<port>`, the registry host in image references. */
  readonly host: string;
  /** OAuth token of super user `quayadmin` (all scopes). */
  readonly token: string;
  /** PEM of the CA of Quay's serving certificate. */
  readonly caPem: string;
  /** Super user name and password (for `/v2` basic auth). */
  readonly adminUser: string;
  readonly adminPassword: string;
  /** Quay's state directory (`REALQUAY_DIR`: source tree, venv, TLS). */
  readonly stateDir: string;
  /** An HTTP client trusting {@linkcode RealQuay.caPem}; closed at process exit. */
  readonly client: Deno.HttpClient;
  /** One API call as the super user (or `token`; `null`: none); never throws on an HTTP status. */
  api(method: string, path: string, options?: RealQuayCallOptions): Promise<RealQuayAnswer>;
}

/** Options of {@linkcode RealQuay.api}. */
export interface RealQuayCallOptions {
  token?: string | null;
  body?: unknown;
}

/** An answer of {@linkcode RealQuay.api}. */
export interface RealQuayAnswer {
  status: number;
  contentType: string;
  text: string;
  /** The parsed body; `undefined` when it is not JSON. */
  json: unknown;
}

const START_SCRIPT = new URL("./start.sh", import.meta.url).pathname;

const START_FAILURES: Record<number, string> = {
  2: "no quay-server directory (set QUAY_SERVER_DIR; see tests/realquay/README.md)",
  3: "starting Quay needs root or password-less sudo",
  4: "Quay did not come up (its logs are in $REALQUAY_DIR/run/)",
};

let pending: Promise<RealQuay> | undefined;

/** Starts the real Quay once per process and returns how to reach it. */
export function startRealQuay(): Promise<RealQuay> {
  pending ??= start().catch((error) => {
    pending = undefined;
    throw error;
  });
  return pending;
}

async function start(): Promise<RealQuay> {
  let output: Deno.CommandOutput;
  try {
    // stderr is inherited: the first start's progress (pip install) reaches the test log.
    output = await new Deno.Command("bash", { args: [START_SCRIPT], stdout: "piped", stderr: "inherit" })
      .output();
  } catch (cause) {
    throw new RealQuayError(`cannot run ${START_SCRIPT}`, { cause });
  }
  const envPath = new TextDecoder().decode(output.stdout).trim().split("\n").pop() ?? "";
  if (!output.success || envPath === "") {
    throw new RealQuayError(
      `${START_SCRIPT} failed with exit code ${output.code}: ${START_FAILURES[output.code] ?? "see stderr"}`,
    );
  }
  const env = parseEnv(await Deno.readTextFile(envPath));
  const need = (key: string): string => {
    const value = env[key];
    if (!value) throw new RealQuayError(`${envPath} has no ${key}`);
    return value;
  };
  const caPath = need("QUAY_CA");
  const caPem = await Deno.readTextFile(caPath);
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  const url = need("QUAY_URL");
  const token = need("QUAY_TOKEN");
  const quay: RealQuay = {
    url,
    host: need("QUAY_HOST"),
    token,
    caPem,
    adminUser: need("QUAY_ADMIN_USER"),
    adminPassword: need("QUAY_ADMIN_PASSWORD"),
    // quay.env sits in the state directory, the CA in its tls/.
    stateDir: envPath.replace(/\/[^/]+$/, ""),
    client,
    api: (method, path, options = {}) => callApi(url, client, token, method, path, options),
  };
  const check = await quay.api("GET", "/api/v1/user/");
  if (check.status !== 200) {
    throw new RealQuayError(
      `Quay at ${url} refuses the token of ${envPath}: GET /api/v1/user/ answered ${check.status}`,
    );
  }
  return quay;
}

/** One API call with a token; the answer whatever its status. */
export async function callApi(
  baseUrl: string,
  client: Deno.HttpClient,
  defaultToken: string,
  method: string,
  path: string,
  options: RealQuayCallOptions = {},
): Promise<RealQuayAnswer> {
  const headers = new Headers({ accept: "application/json" });
  const token = options.token === undefined ? defaultToken : options.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  let body: string | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers.set("content-type", "application/json");
  }
  const response = await fetch(baseUrl + path, { method, headers, body, client, redirect: "manual" });
  const text = await response.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, contentType: response.headers.get("content-type") ?? "", text, json };
}

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1]) out[m[1]] = (m[2] ?? "").replace(/^["']|["']$/g, "");
  }
  return out;
}

/**
 * A name no other run uses: `prefix` plus random lowercase letters and digits (Quay namespaces are
 * `[a-z0-9_]+`, 2-255 characters).
 */
export function uniqueName(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `${prefix}${[...bytes].map((b) => (b % 36).toString(36)).join("")}`;
}

/**
 * Mints (`"mint"`, returns the token) or revokes (`"revoke"`) an OAuth token of the super user
 * directly in Quay's database, with Quay's own Python (`quay_token.py`), as an admin would in Quay's UI.
 * `"mint-user"` mints one for the plain user named by the last argument (made when missing), who
 * administers nothing.
 */
export async function quayToken(
  quay: RealQuay,
  action: "mint" | "mint-user" | "revoke",
  token?: string,
): Promise<string> {
  const dir = quay.stateDir;
  const output = await new Deno.Command(`${dir}/venv/bin/python`, {
    args: [new URL("./quay_token.py", import.meta.url).pathname, action, ...(token ? [token] : [])],
    cwd: `${dir}/quay`,
    env: {
      REALQUAY_DIR: dir,
      PYTHONPATH: `${dir}/quay`,
      QUAYPATH: ".",
      QUAYDIR: `${dir}/quay`,
      QUAYCONF: `${dir}/quay/conf`,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(output.stdout).trim().split("\n").pop() ?? "";
  if (!output.success || out === "") {
    throw new RealQuayError(
      `quay_token.py ${action} failed: ${new TextDecoder().decode(output.stderr).slice(-500)}`,
    );
  }
  return out;
}

/**
 * The test CA whose certificates Quay's notification worker trusts: `start.sh` makes it once in
 * `$REALQUAY_DIR/notify-ca/` and starts Quay with `REQUESTS_CA_BUNDLE` = the system's bundle plus
 * it (`$REALQUAY_DIR/notify-ca-bundle.pem`). Throws {@linkcode RealQuayError} when the running
 * worker was started without that bundle (a Quay started before `start.sh` set it), saying how to
 * restart it: its HTTPS deliveries to a test receiver would fail for that reason, not the test's.
 */
export async function notificationCa(quay: RealQuay): Promise<{ certPem: string; keyPem: string }> {
  const dir = `${quay.stateDir}/notify-ca`;
  const bundle = `${quay.stateDir}/notify-ca-bundle.pem`;
  let environ: string;
  try {
    const pid = (await Deno.readTextFile(`${quay.stateDir}/run/notify.pid`)).trim();
    // Through `cat`: Deno grants reading /proc/<pid>/environ only with --allow-all, and the task
    // runs with --allow-run, not that.
    const out = await new Deno.Command("cat", {
      args: [`/proc/${pid}/environ`],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).trim());
    environ = new TextDecoder().decode(out.stdout);
  } catch (cause) {
    throw new RealQuayError(`cannot read the environment of Quay's notification worker`, { cause });
  }
  if (!environ.split("\0").includes(`REQUESTS_CA_BUNDLE=${bundle}`)) {
    throw new RealQuayError(
      `Quay's notification worker runs without REQUESTS_CA_BUNDLE=${bundle}: it was started before ` +
        `tests/realquay/start.sh set it; restart Quay (quay-server/stop.sh with REALQUAY_DIR=${quay.stateDir}, ` +
        `then tests/realquay/start.sh)`,
    );
  }
  return {
    certPem: await Deno.readTextFile(`${dir}/ca.pem`),
    keyPem: await Deno.readTextFile(`${dir}/ca.key`),
  };
}

/** Deletes an organization if it exists (cleanup); ignores a 404. */
export async function deleteOrganization(quay: RealQuay, org: string): Promise<void> {
  const r = await quay.api("DELETE", `/api/v1/organization/${encodeURIComponent(org)}`);
  if (r.status !== 204 && r.status !== 404) {
    throw new Error(`cleanup: DELETE organization ${org} answered ${r.status}: ${r.text.slice(0, 200)}`);
  }
}
