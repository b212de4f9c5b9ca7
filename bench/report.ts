/**
 * @module
 * Judges the side-by-side comparison against the performance targets and prints it as a table:
 * one row per figure with upstream's value, quay-bridge's, the ratio, the target and whether it is
 * met. Also gathers what the results file records about the run (machine, versions, commit).
 */
import type { Comparison, Figures } from "./compare.ts";
import type { MemoryComparison } from "./memory.ts";

/** The latency target of the webhook (ms, p99): its best level is the fastest one under it. */
export const WEBHOOK_P99_TARGET_MS = 3;

/** One judged target of the comparison. */
export interface CompareTarget {
  readonly name: string;
  /** The figure judged, and whether the value is quay-bridge's own or its ratio to upstream. */
  readonly figure: string;
  readonly of: "quay-bridge" | "ratio";
  readonly value: number | null;
  readonly op: "<=" | "<" | ">=";
  readonly limit: number;
  readonly met: boolean;
  /** The measurement cannot decide the target (e.g. too short a window); printed as N/A. */
  readonly inconclusive?: boolean;
  /** The value is a bound (an operator stopped at the time limit), not the ratio itself. */
  readonly bound?: "<=" | ">=";
}

function judged(
  name: string,
  figure: string,
  of: "quay-bridge" | "ratio",
  value: number | null | undefined,
  limit: number,
  op: CompareTarget["op"] = "<=",
): CompareTarget {
  const v = value ?? null;
  const met = v !== null && (op === "<=" ? v <= limit : op === "<" ? v < limit : v >= limit);
  return { name, figure, of, value: v, op, limit, met };
}

/**
 * The constant of the start-up target (Quay calls ≤ namespaces / 100 + this): the reads per
 * integration that do not grow with the namespaces (its token, the audit log from the cursor).
 */
export const RESTART_CALLS_CONSTANT = 10;

/**
 * A ratio target whose ratio may be a bound (an operator stopped at the time limit): an upper bound at
 * or under the limit meets it; a lower bound over the limit misses it; a lower bound under it decides nothing.
 */
function judgedRatio(
  name: string,
  figure: string,
  ratios: Record<string, number | null>,
  bounds: Record<string, "<=" | ">="> | undefined,
  limit: number,
): CompareTarget {
  const target = judged(name, figure, "ratio", ratios[figure], limit);
  const bound = bounds?.[figure];
  if (!bound) return target;
  const named = {
    ...target,
    name: `${name} (${bound === "<=" ? "upstream" : "quay-bridge"} stopped at the time limit)`,
    bound,
  };
  return bound === ">=" && target.met ? { ...named, met: false, inconclusive: true } : named;
}

/** The targets, for the sizes that were run. */
export function judgeComparison(c: Comparison): CompareTarget[] {
  const ours: Figures = c.peers["quay-bridge"] ?? {};
  const R = c.imageStreams;
  const targets = [
    judged(
      "Quay calls, new namespace, 0 ImageStreams ≤ 8",
      "quay_calls_new_namespace_0is",
      "quay-bridge",
      ours.quay_calls_new_namespace_0is,
      8,
    ),
    judged(
      `Quay calls, new namespace, ${R} ImageStreams ≤ 8 + ${R}`,
      `quay_calls_new_namespace_${R}is`,
      "quay-bridge",
      ours[`quay_calls_new_namespace_${R}is`],
      8 + R,
    ),
    judged(
      "Quay calls per ImageStream update = 0",
      "quay_calls_imagestream_update",
      "quay-bridge",
      ours.quay_calls_imagestream_update,
      0,
    ),
    judged(
      "Quay calls per new ImageStream ≤ 1",
      "quay_calls_new_imagestream",
      "quay-bridge",
      ours.quay_calls_new_imagestream,
      1,
    ),
    judged("resident memory idle ≤ 70 MiB", "rss_idle_mib", "quay-bridge", ours.rss_idle_mib, 70),
  ];
  for (const size of c.sizes) {
    if (size < 1000) continue;
    const n = size.toLocaleString("en");
    if (size === 1000) {
      targets.push(
        judgedRatio(
          `${n} new namespaces: time to converged ≤ 0.1× upstream`,
          `converge_s_${size}`,
          c.ratios,
          c.bounds,
          0.1,
        ),
        judged(
          `resident memory after ${n} namespaces ≤ 1.0× upstream`,
          `rss_after_${size}_mib`,
          "ratio",
          c.ratios[`rss_after_${size}_mib`],
          1.0,
        ),
        judged(
          `resident memory peak during the ${n} burst ≤ 150 MiB`,
          `rss_peak_burst_${size}_mib`,
          "quay-bridge",
          ours[`rss_peak_burst_${size}_mib`],
          150,
        ),
      );
    }
  }
  // Restarted with every namespace synced and nothing changed (startup.ts).
  const synced = ours.managed_namespaces ?? 0;
  const n = synced.toLocaleString("en");
  const callLimit = Math.floor(synced / 100) + RESTART_CALLS_CONSTANT;
  targets.push(
    judged(
      `start-up with ${n} synced namespaces: Quay calls ≤ ${n} / 100 + ${RESTART_CALLS_CONSTANT}`,
      "restart_quay_calls",
      "quay-bridge",
      ours.restart_quay_calls,
      callLimit,
    ),
    judged(
      `start-up with ${n} synced namespaces: ready (/readyz) ≤ 5 s`,
      "restart_ready_s",
      "quay-bridge",
      ours.restart_ready_s,
      5,
    ),
    // The admission webhook, loaded by the same client as upstream's (webhook_compare.ts).
    judged(
      "webhook: ≥ 20,000 admissions/s",
      "webhook_best_rps",
      "quay-bridge",
      ours.webhook_best_rps,
      20_000,
      ">=",
    ),
    judged(
      `webhook: p99 < ${WEBHOOK_P99_TARGET_MS} ms at that rate`,
      "webhook_best_p99_ms",
      "quay-bridge",
      ours.webhook_best_p99_ms,
      WEBHOOK_P99_TARGET_MS,
      "<",
    ),
  );
  // quay-bridge re-reads Quay every 10 minutes by default: a shorter window can miss that.
  const window = c.idleSeconds >= 600 ? "" : ` (only ${c.idleSeconds} s: shorter than the 10 min resync)`;
  targets.push({
    ...judged(
      `Quay calls while idle ≤ 1 per second${window}`,
      "quay_calls_idle_per_s",
      "quay-bridge",
      ours.quay_calls_idle_per_s,
      1,
    ),
    ...(window ? { inconclusive: true } : {}),
  });
  return targets;
}

const LABELS: Record<string, string> = {
  rss_idle_mib: "resident memory idle (MiB)",
  quay_calls_startup: "Quay calls at start-up (nothing to manage)",
  quay_calls_imagestream_update: "Quay calls per ImageStream update",
  quay_calls_new_imagestream: "Quay calls per new ImageStream",
  quay_calls_idle_window: "Quay calls in the idle window",
  quay_calls_idle_per_s: "Quay calls per second while idle",
  quay_calls_idle_per_namespace_per_10min: "Quay calls per namespace per 10 min while idle",
  managed_namespaces: "namespaces managed at the end",
  restart_quay_calls: "restart, all synced: Quay calls until quiet (full run: ≥ 35 s)",
  restart_quay_calls_until_ready: "restart, all synced: Quay calls until ready",
  restart_ready_s: "restart, all synced: s to ready (upstream: to its last Quay call)",
  restart_quiet_s: "restart, all synced: s to the last Quay call",
  webhook_first_patch_s: "webhook: s to its first patch once start-up is quiet",
  webhook_best_rps: `webhook: admissions/s (best level with p99 < ${WEBHOOK_P99_TARGET_MS} ms)`,
  webhook_best_p99_ms: "webhook: p99 ms at that level",
  webhook_best_concurrency: "webhook: connections at that level",
  rss_end_mib: "resident memory at the end (MiB)",
};

const MEMORY_LABELS: Record<string, string> = {
  setup_s: "s to fill the cluster (before the operator starts)",
  setup_objects: "objects created",
  setup_objects_per_s: "objects created per s",
  converge_s: "s from start to every namespace converged",
  converge_limit_s: "STOPPED at the time limit after (s)",
  converged_namespaces: "namespaces converged",
  quay_calls_per_namespace: "Quay calls per namespace",
  rss_peak_mib: "resident memory peak (MiB)",
  rss_after_converged_mib: "resident memory once converged and quiet (MiB)",
  heap_after_converged_mib: "heap in use once converged (MiB)",
};

function label(key: string): string {
  if (LABELS[key]) return LABELS[key];
  let m;
  if ((m = /^quay_calls_new_namespace_(\d+)is$/.exec(key))) {
    return `Quay calls, new namespace with ${m[1]} ImageStreams`;
  }
  if ((m = /^converge_s_(\d+)$/.exec(key))) {
    return `${Number(m[1]).toLocaleString("en")} new namespaces: s to converged`;
  }
  if ((m = /^lag_s_(\d+)$/.exec(key))) {
    return `${Number(m[1]).toLocaleString("en")} new namespaces: s from the last created to converged`;
  }
  if ((m = /^create_s_(\d+)$/.exec(key))) {
    return `${Number(m[1]).toLocaleString("en")} new namespaces: s to create them (the floor)`;
  }
  if ((m = /^converged_namespaces_(\d+)$/.exec(key))) {
    return `${Number(m[1]).toLocaleString("en")} burst: namespaces converged`;
  }
  if ((m = /^quay_calls_per_namespace_burst_(\d+)$/.exec(key))) {
    return `${Number(m[1]).toLocaleString("en")} burst: Quay calls per namespace`;
  }
  if ((m = /^rss_peak_burst_(\d+)_mib$/.exec(key))) {
    return `resident memory peak during ${Number(m[1]).toLocaleString("en")} burst (MiB)`;
  }
  if ((m = /^webhook_c(\d+)_(rps|p50_ms|p99_ms|errors)$/.exec(key))) {
    const what =
      { rps: "admissions/s", p50_ms: "p50 ms", p99_ms: "p99 ms", errors: "errors" }[m[2] as string];
    return `webhook, ${m[1]} connections: ${what}`;
  }
  if ((m = /^converge_ms_per_namespace_(\d+)$/.exec(key))) {
    return `${Number(m[1]).toLocaleString("en")} burst: ms per converged namespace (from the burst's start)`;
  }
  if ((m = /^cpu_s_burst_(\d+)(?:_(apiserver|bench))?$/.exec(key))) {
    const who = m[2] === "apiserver"
      ? "the kube-apiserver (with etcd)"
      : m[2] === "bench"
      ? "the bench (creations, test-world Quay)"
      : "the operator";
    return `${Number(m[1]).toLocaleString("en")} burst: CPU s of ${who}`;
  }
  if ((m = /^kube_writes_per_namespace_burst_(\d+)$/.exec(key))) {
    return `${Number(m[1]).toLocaleString("en")} burst: kube-apiserver writes per namespace (the operator's)`;
  }
  if ((m = /^converge_limit_s_(\d+)$/.exec(key))) {
    return `${Number(m[1]).toLocaleString("en")} burst: STOPPED at the time limit after (s)`;
  }
  if (MEMORY_LABELS[key]) return MEMORY_LABELS[key];
  if (key === "heap_idle_mib") return "heap in use idle (MiB)";
  if ((m = /^heap_after_(\d+)_mib$/.exec(key))) {
    return `heap in use after ${Number(m[1]).toLocaleString("en")} burst (MiB)`;
  }
  if ((m = /^rss_after_(\d+)_mib$/.exec(key))) {
    return `resident memory after ${Number(m[1]).toLocaleString("en")} burst (MiB)`;
  }
  return key;
}

function cell(v: number | null | undefined): string {
  return v === null || v === undefined ? "n/a" : String(v);
}

/**
 * Upstream's side of a quay-bridge target: the ratio, except for the webhook, whose best levels may
 * differ between the two (upstream's may meet no latency target at all): there, upstream's figure at
 * quay-bridge's level.
 */
function versusUpstream(c: Comparison, t: CompareTarget): string {
  if (t.of !== "quay-bridge") return "";
  const level = c.peers["quay-bridge"]?.webhook_best_concurrency;
  if (t.figure.startsWith("webhook_best_") && typeof level === "number") {
    const theirs = c.peers.upstream?.[t.figure.replace("best", `c${level}`)];
    return typeof theirs === "number"
      ? ` (upstream at ${level} connection${level === 1 ? "" : "s"}: ${theirs})`
      : "";
  }
  const ratio = c.ratios[t.figure];
  return typeof ratio === "number" ? ` (${ratio}× upstream)` : "";
}

/**
 * A time figure stopped at the time limit shows as `> <limit>`; a ratio that is a bound as `≤ x` or `≥ x`.
 */
function figureCell(figures: Figures, key: string): string {
  const limitKey = key.replace(/^converge_s(_|$)/, "converge_limit_s$1");
  const limit = limitKey !== key ? figures[limitKey] : undefined;
  if ((figures[key] === null || figures[key] === undefined) && typeof limit === "number") return `> ${limit}`;
  return cell(figures[key]);
}

function ratioCell(
  ratios: Record<string, number | null>,
  bounds: Record<string, string>,
  key: string,
): string {
  const bound = bounds[key];
  return bound && typeof ratios[key] === "number"
    ? `${bound === "<=" ? "≤" : "≥"} ${ratios[key]}`
    : cell(ratios[key]);
}

/** `a`'s keys in order, each of `b`'s missing from `a` placed after the key it follows in `b`. */
function mergedKeys(a: readonly string[], b: readonly string[]): string[] {
  const keys = [...a];
  for (const [i, key] of b.entries()) {
    if (keys.includes(key)) continue;
    const after = i === 0 ? -1 : keys.indexOf(b[i - 1] as string);
    keys.splice(after + 1, 0, key);
  }
  return keys;
}

/** One Markdown table: a row per figure, upstream's value, quay-bridge's, the ratio. */
export function figureTable(
  ours: Figures,
  theirs: Figures,
  ratios: Record<string, number | null>,
  bounds: Record<string, string> = {},
): string {
  const keys = mergedKeys(Object.keys(ours), Object.keys(theirs));
  const rows = keys.map((
    k,
  ) => [label(k), figureCell(theirs, k), figureCell(ours, k), ratioCell(ratios, bounds, k)]);
  const header = ["figure", "upstream", "quay-bridge", "ratio"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    "| " + cells.map((x, i) =>
      i === 0 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number)
    ).join(" | ") +
    " |";
  return [
    line(header),
    "|" + widths.map((w, i) => i === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":").join("|") + "|",
    ...rows.map(line),
  ].join("\n") + "\n";
}

/** The targets with PASS, MISS or N/A. */
export function targetLines(targets: readonly CompareTarget[], c?: Comparison): string {
  if (targets.length === 0) return "";
  const width = Math.max(...targets.map((t) => t.name.length));
  return targets.map((t) =>
    `${t.inconclusive ? "N/A " : t.met ? "PASS" : "MISS"}  ${t.name.padEnd(width)}  ${
      t.of === "ratio" ? "ratio " : ""
    }${t.bound ? (t.bound === "<=" ? "≤ " : "≥ ") : ""}${cell(t.value)}${c ? versusUpstream(c, t) : ""}`
  ).join("\n") + "\n";
}

/** The comparison as a Markdown table, then the targets with PASS/MISS. */
export function formatComparison(c: Comparison, targets: readonly CompareTarget[]): string {
  const where = c.quay === "real" ? "the real Quay" : "the test-world Quay";
  const limits = Object.entries(c.timeLimitS ?? {}).map(([n, s]) => `${n}: ${s} s`).join(", ");
  return `Side by side against ${where} (time limit per burst: ${limits})\n\n` +
    figureTable(c.peers["quay-bridge"] ?? {}, c.peers.upstream ?? {}, c.ratios, c.bounds ?? {}) + "\n" +
    targetLines(targets, c);
}

/** The memory scenario's target: quay-bridge's resident memory once converged ≤ 250 MiB at the full size. */
export function judgeMemory(m: MemoryComparison): CompareTarget[] {
  const ours = m.peers["quay-bridge"] ?? {};
  const size = `${m.namespaces.toLocaleString("en")} namespaces × ${m.imageStreams} ImageStreams, ${
    m.secrets.toLocaleString("en")
  } unrelated Secrets`;
  const target = judged(
    `resident memory with ${size} ≤ 250 MiB${m.scaled ? " (scaled down: judged at 10,000 only)" : ""}`,
    "rss_after_converged_mib",
    "quay-bridge",
    ours.rss_after_converged_mib,
    250,
  );
  const stopped = typeof ours.converge_limit_s === "number";
  // Scaled down, or not converged: the figure is not the one the target is about.
  return [m.scaled || stopped ? { ...target, inconclusive: true } : target];
}

/** The memory scenario as a table and its target. */
export function formatMemory(m: MemoryComparison, targets: readonly CompareTarget[]): string {
  return `Memory scenario: ${m.namespaces} namespaces × ${m.imageStreams} ImageStreams, ${m.secrets} unrelated ` +
    `Secrets (time limit ${m.timeLimitS} s)\n\n` +
    figureTable(m.peers["quay-bridge"] ?? {}, m.peers.upstream ?? {}, m.ratios, m.bounds) + "\n" +
    targetLines(targets);
}

async function commandOutput(command: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** What the results file says about where and with what the run was made. */
export async function runEnvironment(): Promise<Record<string, unknown>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const dirty = await commandOutput("git", ["status", "--porcelain", "--untracked-files=no"]);
  return {
    machine: {
      cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? null,
      cpus: navigator.hardwareConcurrency,
      memory_mib: Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1024),
      // Through commands: Deno.osRelease() and Deno.loadavg() need --allow-sys.
      os: `${Deno.build.os} ${await commandOutput("uname", ["-r"]) ?? ""}`.trim(),
      loadavg: (await commandOutput("cat", ["/proc/loadavg"]))?.split(" ").slice(0, 3).map(Number) ?? null,
    },
    deno: Deno.version.deno,
    go: await commandOutput("go", ["env", "GOVERSION"]),
    commit: await commandOutput("git", ["rev-parse", "HEAD"]),
    uncommitted_changes: dirty === null ? null : dirty.length > 0,
  };
}
