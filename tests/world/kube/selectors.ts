/**
 * @module
 * Label selectors in the full string syntax of `k8s.io/apimachinery/pkg/labels` (`a=b`, `a==b`,
 * `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>3`, `a<3`) and field selectors
 * (`k=v`, `k==v`, `k!=v`, with `\` escapes), parsed with the same grammar and error texts.
 */

/** One parsed label requirement. */
export interface LabelRequirement {
  key: string;
  op: "in" | "notin" | "=" | "==" | "!=" | "exists" | "!" | ">" | "<";
  values: string[];
}

/** A parsed label selector; an empty one matches everything. */
export type LabelSelectorReqs = LabelRequirement[];

/** Raised for a selector that does not parse; answered as 400 BadRequest. */
export class SelectorError extends Error {
  override name = "SelectorError";
}

type Tok =
  | "id"
  | "end"
  | "!"
  | "!="
  | "="
  | "=="
  | ">"
  | "<"
  | "("
  | ")"
  | ","
  | "in"
  | "notin"
  | "error";

const SPECIAL = new Set(["=", "!", "(", ")", ",", ">", "<"]);
const SYMBOLS: Record<string, Tok> = {
  "!": "!",
  "!=": "!=",
  "=": "=",
  "==": "==",
  ">": ">",
  "<": "<",
  "(": "(",
  ")": ")",
  ",": ",",
};

function lex(input: string): Array<{ tok: Tok; lit: string }> {
  const out: Array<{ tok: Tok; lit: string }> = [];
  let i = 0;
  const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\r" || c === "\n";
  for (;;) {
    while (isSpace(input[i])) i++;
    const c = input[i];
    if (c === undefined) {
      out.push({ tok: "end", lit: "" });
      return out;
    }
    if (SPECIAL.has(c)) {
      let buffer = "";
      let last: { tok: Tok; lit: string } | undefined;
      while (i < input.length && SPECIAL.has(input[i] as string)) {
        const next = buffer + input[i];
        const tok = SYMBOLS[next];
        if (tok) {
          last = { tok, lit: next };
          buffer = next;
          i++;
        } else if (last) {
          break;
        } else {
          buffer = next;
          i++;
        }
      }
      out.push(last ?? { tok: "error", lit: `error expected: keyword found '${buffer}'` });
      continue;
    }
    let word = "";
    while (i < input.length && !isSpace(input[i]) && !SPECIAL.has(input[i] as string)) word += input[i++];
    out.push({ tok: word === "in" ? "in" : word === "notin" ? "notin" : "id", lit: word });
  }
}

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Problems with a label key (a qualified name), as apimachinery words the first one. */
export function labelKeyProblem(key: string): string | undefined {
  const parts = key.split("/");
  let name = key;
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    name = parts[1] as string;
    if (prefix.length === 0) return "prefix part must be non-empty";
    if (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)) {
      return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, " +
        "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used " +
        "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    }
  } else if (parts.length > 2) {
    return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and " +
      "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for " +
      "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and " +
      "'/' (e.g. 'example.com/MyName')";
  }
  if (name.length === 0) return "name part must be non-empty";
  if (name.length > 63) return "name part must be no more than 63 characters";
  if (!QUALIFIED_NAME.test(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with " +
      "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is " +
      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
  }
  return undefined;
}

/** Problems with a label value. */
export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return "must be no more than 63 characters";
  if (!LABEL_VALUE.test(value)) {
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', " +
      "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', " +
      "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
  }
  return undefined;
}

/** Parses a label selector string; throws {@linkcode SelectorError} with apimachinery's text. */
export function parseLabelSelector(input: string): LabelSelectorReqs {
  const items = lex(input);
  let pos = 0;
  const asValue = (t: Tok): Tok => (t === "in" || t === "notin" ? "id" : t);
  const look = (values: boolean) => {
    const it = items[pos] as { tok: Tok; lit: string };
    return { tok: values ? asValue(it.tok) : it.tok, lit: it.lit };
  };
  const take = (values: boolean) => {
    const it = look(values);
    pos++;
    return it;
  };
  const reqs: LabelSelectorReqs = [];

  const parseRequirement = (): LabelRequirement => {
    let negate = false;
    let t = take(true);
    if (t.tok === "!") {
      negate = true;
      t = take(true);
    }
    if (t.tok !== "id") throw new SelectorError(`found '${t.lit}', expected: identifier`);
    const key = t.lit;
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) throw new SelectorError(`key: Invalid value: "${key}": ${keyProblem}`);
    const next = look(true).tok;
    if (next === "end" || next === ",") return { key, op: negate ? "!" : "exists", values: [] };
    if (negate) {
      // `!key` followed by an operator: the Go parser reports the operator it finds.
    }
    const op = take(false);
    let values: string[];
    switch (op.tok) {
      case "in":
      case "notin": {
        const open = take(true);
        if (open.tok !== "(") throw new SelectorError(`found '${open.lit}' expected: '('`);
        const first = look(true);
        if (first.tok === ")") {
          take(true);
          values = [""];
          break;
        }
        if (first.tok !== "id" && first.tok !== ",") {
          throw new SelectorError(`found '${first.lit}', expected: ',', ')' or identifier`);
        }
        const set = new Set<string>();
        for (;;) {
          const v = take(true);
          if (v.tok === "id") {
            set.add(v.lit);
            const after = look(true);
            if (after.tok === ",") continue;
            if (after.tok === ")") break;
            throw new SelectorError(`found '${after.lit}', expected: ',' or ')'`);
          } else if (v.tok === ",") {
            if (set.size === 0) set.add("");
            const after = look(true);
            if (after.tok === ")") {
              set.add("");
              break;
            }
            if (after.tok === ",") {
              take(true);
              set.add("");
            }
          } else {
            throw new SelectorError(`found '${v.lit}', expected: ',', or identifier`);
          }
        }
        const close = take(true);
        if (close.tok !== ")") throw new SelectorError(`found '${first.lit}', expected: ')'`);
        values = [...set].sort();
        break;
      }
      case "=":
      case "==":
      case "!=":
      case ">":
      case "<": {
        const v = look(true);
        if (v.tok === "end" || v.tok === ",") {
          values = [""];
        } else {
          take(true);
          if (v.tok !== "id") throw new SelectorError(`found '${v.lit}', expected: identifier`);
          values = [v.lit];
        }
        break;
      }
      default:
        throw new SelectorError(`found '${op.lit}', expected: in, notin, =, ==, !=, gt, lt`);
    }
    for (const v of values) {
      if (op.tok === ">" || op.tok === "<") {
        if (!/^-?\d+$/.test(v)) {
          throw new SelectorError(
            `values[0]: Invalid value: "${v}": for 'Gt', 'Lt' operators, the value must be an integer`,
          );
        }
      } else {
        const problem = labelValueProblem(v);
        if (problem) throw new SelectorError(`values[0][${key}]: Invalid value: "${v}": ${problem}`);
      }
    }
    return { key, op: op.tok as LabelRequirement["op"], values };
  };

  for (;;) {
    const t = look(true);
    if (t.tok === "end") return reqs;
    if (t.tok !== "id" && t.tok !== "!") {
      throw new SelectorError(`found '${t.lit}', expected: !, identifier, or 'end of string'`);
    }
    try {
      reqs.push(parseRequirement());
    } catch (error) {
      throw new SelectorError(`unable to parse requirement: ${(error as Error).message}`);
    }
    const sep = take(true);
    if (sep.tok === "end") return reqs;
    if (sep.tok !== ",") throw new SelectorError(`found '${sep.lit}', expected: ',' or 'end of string'`);
    const after = look(true);
    if (after.tok !== "id" && after.tok !== "!") {
      throw new SelectorError(`found '${after.lit}', expected: identifier after ','`);
    }
  }
}

/** True when `labels` satisfy every requirement. */
export function matchLabels(
  reqs: LabelSelectorReqs,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  for (const r of reqs) {
    const has = labels !== undefined && Object.hasOwn(labels, r.key);
    const value = has ? (labels as Record<string, string>)[r.key] as string : undefined;
    switch (r.op) {
      case "in":
      case "=":
      case "==":
        if (!has || !r.values.includes(value as string)) return false;
        break;
      case "notin":
      case "!=":
        if (has && r.values.includes(value as string)) return false;
        break;
      case "exists":
        if (!has) return false;
        break;
      case "!":
        if (has) return false;
        break;
      case ">":
      case "<": {
        if (!has || !/^-?\d+$/.test(value as string)) return false;
        const n = Number(value);
        const bound = Number(r.values[0]);
        if (r.op === ">" ? !(n > bound) : !(n < bound)) return false;
        break;
      }
    }
  }
  return true;
}

/** One field requirement. */
export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}

function splitUnescaped(input: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < input.length; i++) {
    const c = input[i] as string;
    if (c === "\\" && i + 1 < input.length) {
      current += c + input[i + 1];
      i++;
    } else if (c === separator) {
      parts.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function unescapeFieldValue(value: string, selector: string, part: string): string {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (c === "\\") {
      const next = value[i + 1];
      if (next === "\\" || next === "," || next === "=") {
        out += next;
        i++;
        continue;
      }
      throw new SelectorError(`invalid selector: '${selector}'; can't understand '${part}'`);
    }
    if (c === "," || c === "=") {
      throw new SelectorError(`invalid selector: '${selector}'; can't understand '${part}'`);
    }
    out += c;
  }
  return out;
}

/** Parses a field selector string. */
export function parseFieldSelector(input: string): FieldRequirement[] {
  if (input.trim() === "") return [];
  const reqs: FieldRequirement[] = [];
  for (const part of splitUnescaped(input, ",")) {
    if (part === "") continue;
    let op: "=" | "!=" | undefined;
    let at = -1;
    let width = 0;
    for (const [candidate, w, mapped] of [["!=", 2, "!="], ["==", 2, "="], ["=", 1, "="]] as const) {
      const index = part.indexOf(candidate);
      if (index >= 0) {
        op = mapped;
        at = index;
        width = w;
        break;
      }
    }
    if (!op) throw new SelectorError(`invalid selector: '${input}'; can't understand '${part}'`);
    const field = part.slice(0, at).trim();
    const value = unescapeFieldValue(part.slice(at + width), input, part);
    reqs.push({ field, op, value });
  }
  return reqs;
}

/** True when the object's field values satisfy every requirement. */
export function matchFields(reqs: FieldRequirement[], get: (field: string) => string | undefined): boolean {
  for (const r of reqs) {
    const value = get(r.field) ?? "";
    if (r.op === "=" ? value !== r.value : value === r.value) return false;
  }
  return true;
}
