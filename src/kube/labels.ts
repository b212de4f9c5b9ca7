/**
 * @module
 * Kubernetes label selectors (`matchLabels` and `matchExpressions`) evaluated in memory, with the
 * API server's semantics: an empty selector matches everything; `In`/`NotIn` need values,
 * `Exists`/`DoesNotExist` must not have any.
 */

/** A `metav1.LabelSelectorRequirement`. */
export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

/** A `metav1.LabelSelector`. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** Problems with a selector, as messages; empty when it is valid. */
export function validateLabelSelector(selector: unknown): string[] {
  if (selector === undefined || selector === null) return [];
  if (typeof selector !== "object" || Array.isArray(selector)) return ["namespaceSelector must be an object"];
  const problems: string[] = [];
  const s = selector as Record<string, unknown>;
  if (s.matchLabels !== undefined) {
    if (typeof s.matchLabels !== "object" || s.matchLabels === null || Array.isArray(s.matchLabels)) {
      problems.push("namespaceSelector.matchLabels must be a map of strings");
    } else {
      for (const [k, v] of Object.entries(s.matchLabels)) {
        if (typeof v !== "string") problems.push(`namespaceSelector.matchLabels.${k} must be a string`);
      }
    }
  }
  if (s.matchExpressions !== undefined) {
    if (!Array.isArray(s.matchExpressions)) {
      problems.push("namespaceSelector.matchExpressions must be a list");
    } else {
      s.matchExpressions.forEach((raw: unknown, i: number) => {
        const e = (raw ?? {}) as Partial<LabelSelectorRequirement>;
        const where = `namespaceSelector.matchExpressions[${i}]`;
        if (typeof e.key !== "string" || e.key === "") problems.push(`${where}.key is required`);
        if (e.operator === "In" || e.operator === "NotIn") {
          if (!Array.isArray(e.values) || e.values.length === 0) {
            problems.push(`${where}.values must be non-empty for ${e.operator}`);
          }
        } else if (e.operator === "Exists" || e.operator === "DoesNotExist") {
          if (Array.isArray(e.values) && e.values.length > 0) {
            problems.push(`${where}.values must be empty for ${e.operator}`);
          }
        } else {
          problems.push(`${where}.operator must be one of In, NotIn, Exists, DoesNotExist`);
        }
      });
    }
  }
  return problems;
}

/** True when `labels` satisfy `selector` (assumed valid). */
export function matchesLabelSelector(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (!selector) return true;
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (have[key] !== value) return false;
  }
  for (const e of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, e.key);
    const value = have[e.key];
    switch (e.operator) {
      case "In":
        if (!present || !(e.values ?? []).includes(value as string)) return false;
        break;
      case "NotIn":
        if (present && (e.values ?? []).includes(value as string)) return false;
        break;
      case "Exists":
        if (!present) return false;
        break;
      case "DoesNotExist":
        if (present) return false;
        break;
    }
  }
  return true;
}
