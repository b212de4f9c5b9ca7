/**
 * @module
 * Command-line parsing with the grammar of Node's `util.parseArgs` in strict mode with positionals
 * (`--flag value`, `--flag=value`, `-f value`, `-fvalue`, grouped boolean shorts `-ab`, `--` ending
 * the flags; the last of a repeated flag wins). Written here because `node:util` brings Deno's Node
 * compatibility layer into every process (about 3 MiB resident with `node:process`), for one parse
 * at start-up.
 */

/** The flags a command line may hold. */
export type ArgsOptions = Readonly<Record<string, { type: "string" | "boolean"; short?: string }>>;

/** What a command line held. */
export interface ParsedArgs {
  values: Record<string, string | boolean>;
  positionals: string[];
}

/** A command line that does not fit the flags; `flag` as written (`--name` or `-n`). */
export class ArgsError extends Error {
  readonly kind: "unknown" | "missing-value" | "unexpected-value";
  readonly flag: string;
  constructor(kind: ArgsError["kind"], flag: string, message: string) {
    super(message);
    this.name = "ArgsError";
    this.kind = kind;
    this.flag = flag;
  }
}

/** A value that would be read as a flag: `-x`, `--x` (but not `-` alone). */
function looksLikeFlag(value: string): boolean {
  return value.length > 1 && value.startsWith("-");
}

/** Parses `args` against `options`; throws {@linkcode ArgsError}. */
export function parseArgs(args: readonly string[], options: ArgsOptions): ParsedArgs {
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const shorts = new Map<string, string>();
  for (const [name, option] of Object.entries(options)) if (option.short) shorts.set(option.short, name);
  const take = (name: string, flag: string, inline: string | undefined, next: () => string | undefined) => {
    const option = options[name];
    if (!option) throw new ArgsError("unknown", flag, `unknown flag ${flag}`);
    if (option.type === "boolean") {
      if (inline !== undefined) {
        throw new ArgsError("unexpected-value", flag, `${flag} takes no value`);
      }
      values[name] = true;
      return;
    }
    const value = inline ?? next();
    if (value === undefined || (inline === undefined && looksLikeFlag(value))) {
      throw new ArgsError(
        "missing-value",
        flag,
        `${flag} needs a value (${flag} <value> or ${flag}=<value>)`,
      );
    }
    values[name] = value;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = () => {
      const value = args[i + 1];
      if (value !== undefined && !looksLikeFlag(value)) i++;
      return value;
    };
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      take(name, `--${name}`, eq < 0 ? undefined : arg.slice(eq + 1), next);
    } else if (looksLikeFlag(arg)) {
      // `-f`, `-fvalue` for a string flag, `-ab` for boolean ones.
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j] as string;
        const name = shorts.get(letter);
        if (name === undefined) throw new ArgsError("unknown", `-${letter}`, `unknown flag -${letter}`);
        const rest = arg.slice(j + 1);
        if (options[name]?.type === "string") {
          take(name, `-${letter}`, rest === "" ? undefined : rest, next);
          break;
        }
        take(name, `-${letter}`, undefined, next);
      }
    } else positionals.push(arg);
  }
  return { values, positionals };
}
