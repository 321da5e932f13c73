/**
 * The command line's grammar: each command, the options it takes and what its positional
 * arguments are. Parsing is strict: an option the command does not take, an option given twice,
 * a valued option without a value (or whose value looks like another option), a value outside
 * its choices or a missing required option is a usage error (exit 2). `--name=value` is the same
 * as `--name value`; after `--` every argument is positional, so a file whose name starts with
 * `-` can be given.
 */
import { terminalText } from "./escape.js";

interface OptionDef {
  /** Takes a value (`--out <dir>`); otherwise a flag. */
  readonly value?: string;
  /** The values allowed, if only some are. */
  readonly choices?: readonly string[];
  readonly required?: boolean;
}

interface CommandDef {
  /** What the positional arguments are, for the usage text; undefined if the command takes none. */
  readonly positional?: string;
  readonly options: Readonly<Record<string, OptionDef>>;
  readonly summary: string;
}

const SPECS = "<spec.spec.ts|spec.json ...>";

export const COMMANDS = {
  build: {
    positional: SPECS,
    options: { "--out": { value: "<dir>", required: true }, "--dtype": { value: "float64|float32", choices: ["float64", "float32"] }, "--debug": {} },
    summary: "the kernels of each spec as <dir>/<name>.ts",
  },
  codegen: { options: { "--check": {}, "--debug": {} }, summary: "every specs/*.spec.ts into generated/ and docs/" },
  stats: { positional: SPECS, options: { "--debug": {} }, summary: "what each backward kernel computes, as JSON" },
  explain: { positional: SPECS, options: { "--out": { value: "<dir>", required: true }, "--debug": {} }, summary: "the derivation as <dir>/<name>.md and .svg" },
} as const satisfies Record<string, CommandDef>;

export type Command = keyof typeof COMMANDS;

export interface Parsed {
  readonly command: Command;
  readonly positional: readonly string[];
  /** Flags map to `true`, valued options to their value. */
  readonly options: ReadonlyMap<string, string | true>;
}

/** A malformed command line; the message is already terminal-safe. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const quoted = (s: string) => `'${terminalText(s)}'`;

export function parseArgs(argv: readonly string[]): Parsed {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) throw new UsageError("no command");
  if (!Object.hasOwn(COMMANDS, cmd)) throw new UsageError(`unknown command ${quoted(cmd)}`);
  const command = cmd as Command;
  const def: CommandDef = COMMANDS[command];
  const options = new Map<string, string | true>();
  const positional: string[] = [];
  let onlyPositional = false;
  for (let k = 0; k < rest.length; k++) {
    const arg = rest[k]!;
    if (onlyPositional || !arg.startsWith("-") || arg === "-") {
      if (arg === "") throw new UsageError("an empty argument");
      positional.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyPositional = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const opt = Object.hasOwn(def.options, name) ? def.options[name]! : undefined;
    if (!opt) {
      const elsewhere = Object.entries(COMMANDS as Record<string, CommandDef>).filter(([, d]) => Object.hasOwn(d.options, name)).map(([c]) => c);
      throw new UsageError(`unknown option ${quoted(name)} for ${cmd}${elsewhere.length ? ` (it is an option of ${elsewhere.join(", ")})` : ""}`);
    }
    if (options.has(name)) throw new UsageError(`${name} is given twice`);
    if (!opt.value) {
      if (name !== arg) throw new UsageError(`${name} takes no value`);
      options.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (name !== arg) value = arg.slice(eq + 1);
    else {
      value = rest[k + 1];
      if (value !== undefined && !value.startsWith("--")) k++;
      else value = undefined;
    }
    if (value === undefined || value === "") throw new UsageError(`${name} needs a value: ${name} ${opt.value}`);
    if (opt.choices && !opt.choices.includes(value)) throw new UsageError(`${name} must be ${opt.choices.join(" or ")}, got ${quoted(value)}`);
    options.set(name, value);
  }
  for (const [name, opt] of Object.entries(def.options) as [string, OptionDef][])
    if (opt.required && !options.has(name)) throw new UsageError(`${cmd} needs ${name} ${opt.value}`);
  if (def.positional && positional.length === 0) throw new UsageError(`${cmd} needs at least one spec file`);
  if (!def.positional && positional.length > 0) throw new UsageError(`${cmd} takes no file arguments, got ${quoted(positional[0]!)}`);
  return { command, positional, options };
}

/** One line per command, from the table above. */
export function usageText(): string {
  const lines = Object.entries(COMMANDS as Record<string, CommandDef>).map(([cmd, d]) => {
    const opts = Object.entries(d.options).map(([name, o]) => {
      const text = o.value ? `${name} ${o.value}` : name;
      return o.required ? text : `[${text}]`;
    });
    return `  backpass ${[cmd, d.positional, ...opts].filter(Boolean).join(" ")}\n      ${d.summary}`;
  });
  return `usage:\n${lines.join("\n")}\n`;
}
