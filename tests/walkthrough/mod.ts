/**
 * @module
 * The seed walkthrough as a list of checked steps, run against any cluster and Quay: the demo world
 * (`quay-bridge demo`, the integration tests) and the real kube-apiserver (the e2e suite) play the
 * same steps, so a behaviour that differs between them shows up as a failing step.
 *
 * project -> organization, robots, secrets, SA links -> ImageStream -> repository -> Build rewritten
 * -> pushed -> tag imported -> pull works -> project deleted -> organization gone.
 */

/** A JSON API client (Kubernetes or Quay) with admin rights. */
export interface Api {
  call(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
    // deno-lint-ignore no-explicit-any
  ): Promise<{ status: number; body: any }>;
  // deno-lint-ignore no-explicit-any
  ok(method: string, path: string, body?: unknown, contentType?: string): Promise<any>;
}

/** What the walkthrough needs from its world. */
export interface WalkthroughEnv {
  kube: Api;
  quay: Api;
  /** `host:port` of Quay's registry. */
  registryHost: string;
  /** @default "openshift" */
  clusterId?: string;
  /** @default "e2e-demo" */
  project?: string;
  /** Starts a build of a BuildConfig, as `oc start-build` does; returns the Build's name. */
  startBuild(namespace: string, buildConfig: string): Promise<string>;
  /** Pulls `image` with the image pull secrets of a service account (a pod would). */
  pull(namespace: string, serviceAccount: string, image: string): Promise<{ ok: boolean; message?: string }>;
  /** Per-step deadline. @default 30_000 */
  stepTimeoutMs?: number;
}

/** The outcome of one step. */
export interface StepResult {
  title: string;
  ok: boolean;
  detail: string;
  ms: number;
}

const SAS = ["builder", "default", "deployer"] as const;
const ROLES: Record<string, string> = { builder: "write", default: "read", deployer: "read" };

async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      last = `: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Plays the walkthrough, reporting each step as it ends; true when every step held. */
export async function runWalkthrough(
  env: WalkthroughEnv,
  report: (result: StepResult) => void,
): Promise<boolean> {
  const ns = env.project ?? "e2e-demo";
  const cluster = env.clusterId ?? "openshift";
  const org = `${cluster}_${ns}`;
  const timeout = env.stepTimeoutMs ?? 30_000;
  const { kube, quay } = env;
  const image = `${env.registryHost}/${org}/hello:latest`;
  let build = "";
  let imported = "";

  const steps: { title: string; run: () => Promise<string> }[] = [
    {
      title: `Create project ${ns}`,
      run: async () => {
        await kube.ok("POST", "/api/v1/namespaces", {
          metadata: { name: ns, annotations: { "openshift.io/requester": "developer" } },
        });
        await until("the project's service accounts and SCC annotation", timeout, async () => {
          const got = await kube.ok("GET", `/api/v1/namespaces/${ns}`);
          return got.metadata?.annotations?.["openshift.io/sa.scc.mcs"];
        });
        return "namespace, service accounts and openshift.io/sa.scc.mcs in place";
      },
    },
    {
      title: `Organization ${org} created in Quay`,
      run: async () => {
        const got = await until("the organization", timeout, async () => {
          const r = await quay.call("GET", `/api/v1/organization/${org}`);
          return r.status === 200 ? r.body : undefined;
        });
        return `organization ${got.name}`;
      },
    },
    {
      title: "Robot accounts with default permissions",
      run: async () => {
        const found = await until("three robots with prototypes", timeout, async () => {
          const robots = (await quay.ok("GET", `/api/v1/organization/${org}/robots`)).robots as {
            name: string;
          }[];
          const prototypes = (await quay.ok("GET", `/api/v1/organization/${org}/prototypes`)).prototypes as {
            delegate: { name: string };
            role: string;
          }[];
          const roles = Object.fromEntries(prototypes.map((p) => [p.delegate.name, p.role]));
          const ok = SAS.every((sa) =>
            robots.some((r) => r.name === `${org}+${sa}`) && roles[`${org}+${sa}`] === ROLES[sa]
          );
          return ok ? SAS.map((sa) => `${org}+${sa} (${ROLES[sa]})`) : undefined;
        });
        return found.join(", ");
      },
    },
    {
      title: "Robot secrets linked to the service accounts",
      run: async () => {
        await until("secrets and links", timeout, async () => {
          for (const sa of SAS) {
            const secret = await kube.call("GET", `/api/v1/namespaces/${ns}/secrets/${sa}-quay-${cluster}`);
            if (secret.status !== 200 || secret.body.type !== "kubernetes.io/dockerconfigjson") return false;
            const account = await kube.ok("GET", `/api/v1/namespaces/${ns}/serviceaccounts/${sa}`);
            const names = (list: { name: string }[] | undefined) => (list ?? []).map((s) => s.name);
            if (!names(account.secrets).includes(`${sa}-quay-${cluster}`)) return false;
            if (!names(account.imagePullSecrets).includes(`${sa}-quay-${cluster}`)) return false;
          }
          return true;
        });
        return SAS.map((sa) => `${sa}-quay-${cluster}`).join(", ") + " (mountable and image pull secrets)";
      },
    },
    {
      title: "ImageStream hello -> Quay repository",
      run: async () => {
        await kube.ok("POST", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams`, {
          apiVersion: "image.openshift.io/v1",
          kind: "ImageStream",
          metadata: { name: "hello", labels: { app: "hello" } },
          spec: { lookupPolicy: { local: false } },
        });
        const repo = await until("the repository", timeout, async () => {
          const r = await quay.call("GET", `/api/v1/repository/${org}/hello`);
          return r.status === 200 ? r.body : undefined;
        });
        return `${org}/hello (${repo.is_public ? "public" : "private"})`;
      },
    },
    {
      title: "Build output rewritten to Quay by the admission webhook",
      run: async () => {
        await kube.ok("POST", `/apis/build.openshift.io/v1/namespaces/${ns}/buildconfigs`, {
          apiVersion: "build.openshift.io/v1",
          kind: "BuildConfig",
          metadata: { name: "hello", labels: { app: "hello" } },
          spec: {
            source: { type: "Dockerfile", dockerfile: "FROM scratch\nLABEL hello=world\n" },
            strategy: { type: "Docker", dockerStrategy: {} },
            output: { to: { kind: "ImageStreamTag", name: "hello:latest" } },
          },
        });
        build = await env.startBuild(ns, "hello");
        const got = await kube.ok("GET", `/apis/build.openshift.io/v1/namespaces/${ns}/builds/${build}`);
        const to = got.spec?.output?.to;
        if (to?.kind !== "DockerImage" || to?.name !== image) {
          throw new Error(`build ${build} output is ${JSON.stringify(to)}, expected DockerImage ${image}`);
        }
        if (got.spec?.output?.pushSecret?.name !== `builder-quay-${cluster}`) {
          throw new Error(`build ${build} push secret is ${JSON.stringify(got.spec?.output?.pushSecret)}`);
        }
        return `${build}: ${to.name} with push secret builder-quay-${cluster}`;
      },
    },
    {
      title: "Build pushed the image to Quay with the builder robot",
      run: async () => {
        const phase = await until("the build to finish", timeout, async () => {
          const got = await kube.ok("GET", `/apis/build.openshift.io/v1/namespaces/${ns}/builds/${build}`);
          const p = got.status?.phase;
          return p === "Complete" || p === "Failed" || p === "Error" ? got.status : undefined;
        });
        if (phase.phase !== "Complete") {
          throw new Error(`build ${phase.phase}: ${phase.reason} ${phase.message ?? ""}`);
        }
        const tags = await until("tag latest in Quay", timeout, async () => {
          const r = await quay.ok(
            "GET",
            `/api/v1/repository/${org}/hello/tag/?specificTag=latest&onlyActiveTags=true`,
          );
          return r.tags?.length ? r.tags : undefined;
        });
        return `tag latest ${tags[0].manifest_digest}`;
      },
    },
    {
      title: "ImageStream tag imported from Quay",
      run: async () => {
        imported = await until("status.tags latest", timeout, async () => {
          const got = await kube.ok("GET", `/apis/image.openshift.io/v1/namespaces/${ns}/imagestreams/hello`);
          const tag = (got.status?.tags ?? []).find((t: { tag: string }) => t.tag === "latest");
          const ref = tag?.items?.[0]?.dockerImageReference as string | undefined;
          return ref?.startsWith(`${env.registryHost}/${org}/hello`) ? ref : undefined;
        });
        return `hello:latest -> ${imported}`;
      },
    },
    {
      title: "The default service account's pull secret pulls the image",
      run: async () => {
        const result = await env.pull(ns, "default", imported || image);
        if (!result.ok) throw new Error(`pull failed: ${result.message}`);
        return `pulled ${imported || image}`;
      },
    },
    {
      title: `Delete project ${ns} -> organization removed`,
      run: async () => {
        await kube.ok("DELETE", `/api/v1/namespaces/${ns}`);
        await until("the namespace to go", timeout, async () => {
          return (await kube.call("GET", `/api/v1/namespaces/${ns}`)).status === 404;
        });
        await until("the organization to go", timeout, async () => {
          return (await quay.call("GET", `/api/v1/organization/${org}`)).status === 404;
        });
        return `namespace and ${org} gone`;
      },
    },
  ];

  for (const step of steps) {
    const started = performance.now();
    try {
      const detail = await step.run();
      report({ title: step.title, ok: true, detail, ms: performance.now() - started });
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      report({ title: step.title, ok: false, detail, ms: performance.now() - started });
      return false;
    }
  }
  return true;
}

/** One line per step, as the demo prints it. */
export function formatStep(result: StepResult): string {
  const mark = result.ok ? "✔" : "✘";
  return `${mark} ${result.title} (${Math.round(result.ms)} ms)\n    ${result.detail}\n`;
}
