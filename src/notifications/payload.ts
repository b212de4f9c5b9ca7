/**
 * @module
 * The body Quay POSTs for a `repo_push` repository notification (`notifications/__init__.py`
 * `build_repository_event_data` plus `updated_tags`), validated: anything that is not exactly such
 * an event for the expected repository is refused with a reason, so a forged or garbled delivery
 * has no effect.
 */
import { isValidQuayNamespace, isValidQuayRepository } from "../names.ts";

/** A valid `repo_push` delivery. */
export interface RepoPushEvent {
  /** Quay organization. */
  readonly namespace: string;
  /** Repository name. */
  readonly name: string;
  /** Tags the push updated, deduplicated, in their order. */
  readonly updatedTags: readonly string[];
}

/** The result of {@linkcode parseRepoPush}. */
export type ParsedRepoPush =
  | { readonly ok: true; readonly event: RepoPushEvent }
  | { readonly ok: false; readonly reason: string };

/** Docker/OCI tag grammar (what Quay accepts for a tag). */
const TAG = /^[\w][\w.-]{0,127}$/;
/** More tags than a push can update at once (a v1 push of many tags is still far below). */
export const MAX_UPDATED_TAGS = 256;

/**
 * Parses a delivery body expected for `namespace/name`. `updated_tags` must be a non-empty list of
 * valid tag names; `repository`, `namespace` and `name` must all name the expected repository.
 */
export function parseRepoPush(text: string, expected: { namespace: string; name: string }): ParsedRepoPush {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, reason: "body is not JSON" };
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return { ok: false, reason: "body is not a JSON object" };
  }
  const b = body as Record<string, unknown>;
  const { namespace, name, repository } = b;
  if (typeof namespace !== "string" || !isValidQuayNamespace(namespace)) {
    return { ok: false, reason: "namespace is missing or not a Quay organization name" };
  }
  if (typeof name !== "string" || !isValidQuayRepository(name)) {
    return { ok: false, reason: "name is missing or not a Quay repository name" };
  }
  if (repository !== `${namespace}/${name}`) {
    return { ok: false, reason: "repository does not match namespace/name" };
  }
  if (namespace !== expected.namespace || name !== expected.name) {
    return { ok: false, reason: "the event is for another repository than the notification's" };
  }
  const tags = b.updated_tags;
  if (!Array.isArray(tags) || tags.length === 0) {
    return { ok: false, reason: "updated_tags must be a non-empty list (is this a repo_push event?)" };
  }
  if (tags.length > MAX_UPDATED_TAGS) {
    return { ok: false, reason: `updated_tags has more than ${MAX_UPDATED_TAGS} entries` };
  }
  for (const tag of tags) {
    if (typeof tag !== "string" || !TAG.test(tag)) {
      return { ok: false, reason: "updated_tags holds a value that is not a tag name" };
    }
  }
  return { ok: true, event: { namespace, name, updatedTags: [...new Set(tags as string[])] } };
}
