/**
 * @module
 * Where the audit-log cursors of `quay_audit.ts` survive a restart: a Secret in the operator's
 * namespace, read once at start-up and written at most once a minute by the leader.
 */
import { KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { type KubeObject, SECRETS } from "../kube/resources.ts";
import { parseSnapshot } from "./audit_counts.ts";
import type { AuditCursor, CursorStore } from "./quay_audit.ts";

/** The name of the Secret the cursors are kept in (in the operator's namespace). */
export const AUDIT_CURSOR_SECRET = "quay-bridge-audit-cursor";

/**
 * Keeps the cursors in a Secret of the operator's namespace: the operator may already read and
 * write Secrets there (the webhook certificate), so following the log needs no further permission.
 */
export function secretCursorStore(kube: KubeClient, namespace: string): CursorStore {
  let resourceVersion: string | undefined;
  return {
    async load() {
      const secret = await kube.get(SECRETS, AUDIT_CURSOR_SECRET, { namespace });
      resourceVersion = secret?.metadata.resourceVersion;
      const raw = (secret?.data as Record<string, string> | undefined)?.cursors;
      const out = new Map<string, AuditCursor>();
      if (!raw) return out;
      const parsed = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(raw))) as Record<
        string,
        unknown
      >;
      for (const [key, value] of Object.entries(parsed)) {
        const v = value as { at?: unknown; seen?: unknown; counts?: unknown; checkedAt?: unknown };
        if (typeof v.at === "number" && Array.isArray(v.seen)) {
          const counts = parseSnapshot(v.counts);
          out.set(key, {
            at: v.at,
            seen: v.seen.filter((s): s is string => typeof s === "string"),
            ...(counts ? { counts } : {}),
            ...(typeof v.checkedAt === "number" ? { checkedAt: v.checkedAt } : {}),
          });
        }
      }
      return out;
    },
    async save(cursors) {
      const data = {
        cursors: new TextEncoder().encode(JSON.stringify(Object.fromEntries(cursors))).toBase64(),
      };
      const object: KubeObject = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name: AUDIT_CURSOR_SECRET,
          namespace,
          ...(resourceVersion ? { resourceVersion } : {}),
        },
        type: "Opaque",
        data,
      };
      try {
        const written = resourceVersion
          ? await kube.update(SECRETS, object)
          : await kube.create(SECRETS, object);
        resourceVersion = written.metadata.resourceVersion;
      } catch (error) {
        // Someone else wrote it (a previous leader): take its version and write again next time.
        if (error instanceof KubeApiError && (error.status === 409 || error.status === 404)) {
          resourceVersion = (await kube.get(SECRETS, AUDIT_CURSOR_SECRET, { namespace }))?.metadata
            .resourceVersion;
        }
        throw error;
      }
    },
  };
}
