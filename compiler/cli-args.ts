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
  /** What it does, for `<command> --help`. */
  readonly help: string;
}

interface CommandDef {
  /** What the positional arguments are, for the usage text; undefined if the command takes none. */
  readonly positional?: string;
  readonly options: Readonly<Record<string, OptionDef>>;
  readonly summary: string;
}

const SPECS = "<spec.spec.ts|spec.json ...>";
const DEBUG: OptionDef = { help: "print the IR after every stage to stderr" };

export const COMMANDS = {
  build: {
    positional: SPECS,
    options: {
      "--out": { value: "<dir>", required: true, help: "the folder to write into (created if needed)" },
      "--dtype": { value: "float64|float32", choices: ["float64", "float32"], help: "the arrays' element type (default float64)" },
      "--format": { value: "ts|js", choices: ["ts", "js"], help: "ts: <name>.ts (default); js: <name>.js plus <name>.d.ts for plain node (ES module or CommonJS, as the package around <dir> says)" },
      "--target": { value: "js|wasm", choices: ["js", "wasm"], help: "what the kernels run as (default js; wasm: WebAssembly SIMD, see the README for its memory API)" },
      "--debug": DEBUG,
    },
    summary: "the kernels of each spec as <dir>/<name>.ts (or .js and .d.ts)",
  },
  codegen: {
    options: { "--check": { help: "write nothing; exit 1, naming them, if generated files are stale" }, "--debug": DEBUG },
    summary: "every specs/*.spec.ts into generated/ and docs/ (run in a backpass checkout)",
  },
  stats: { positional: SPECS, options: { "--debug": DEBUG }, summary: "what each backward kernel computes, as JSON" },
  explain: {
    positional: SPECS,
    options: { "--out": { value: "<dir>", required: true, help: "the folder to write into (created if needed)" }, "--debug": DEBUG },
    summary: "the derivation as <dir>/<name>.md and .svg",
  },
} as const satisfies Record<string, CommandDef>;

export type Command = keyof typeof COMMANDS;

export interface Parsed {
  /** A command, or `help` (`--help`, `-h`, `help [command]`) or `version` (`--version`, `-v`). */
  readonly command: Command | "help" | "version";
  readonly positional: readonly string[];
  /** Flags map to `true`, valued options to their value. */
  readonly options: ReadonlyMap<string, string | true>;
  /** For `help`: the command asked about, if any. */
  readonly topic?: Command;
}

const HELP = ["--help", "-h"];
const VERSION = ["--version", "-v"];

/** A malformed command line; the message is already terminal-safe. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const quoted = (s: string) => `'${terminalText(s)}'`;

export function parseArgs(argv: readonly string[]): Parsed {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) throw new UsageError("no command");
  const none = new Map<string, string | true>();
  if (VERSION.includes(cmd) && rest.length === 0) return { command: "version", positional: [], options: none };
  if (HELP.includes(cmd) || cmd === "help") {
    const [topic, ...more] = rest;
    if (topic === undefined) return { command: "help", positional: [], options: none };
    if (!Object.hasOwn(COMMANDS, topic)) throw new UsageError(`unknown command ${quoted(topic)}`);
    if (more.length) throw new UsageError(`help takes one command, got ${quoted(more[0]!)}`);
    return { command: "help", positional: [], options: none, topic: topic as Command };
  }
  if (!Object.hasOwn(COMMANDS, cmd)) throw new UsageError(`unknown command ${quoted(cmd)}`);
  const command = cmd as Command;
  // `<command> --help` anywhere before `--` wins over every other problem
  const dashes = rest.indexOf("--");
  if (rest.slice(0, dashes < 0 ? rest.length : dashes).some((a) => HELP.includes(a))) return { command: "help", positional: [], options: none, topic: command };
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
  const lines = Object.keys(COMMANDS).map((cmd) => `${commandLine(cmd as Command)}\n      ${(COMMANDS[cmd as Command] as CommandDef).summary}`);
  return `usage:\n${lines.join("\n")}\n  backpass <command> --help | backpass --help | backpass --version\n`;
}

function commandLine(cmd: Command): string {
  const d: CommandDef = COMMANDS[cmd];
  const opts = Object.entries(d.options).map(([name, o]) => {
    const text = o.value ? `${name} ${o.value}` : name;
    return o.required ? text : `[${text}]`;
  });
  return `  backpass ${[cmd, d.positional, ...opts].filter(Boolean).join(" ")}`;
}

/** `backpass --help`: what backpass is, the commands and where to read more. */
export function helpText(): string {
  return [
    "backpass: compiles the forward pass of a neural-network layer, written in index notation,",
    "into verified backward kernels (self-contained TypeScript or JavaScript modules).",
    "",
    usageText().trimEnd(),
    "",
    "Exit codes: 0 done, 1 a bad spec or a file problem, 2 a malformed command line.",
    "A spec is a .spec.ts module whose default export is the spec object, or the same object as .json.",
    "",
  ].join("\n");
}

/** `backpass <command> --help`: its usage and every option. */
export function commandHelpText(cmd: Command): string {
  const d: CommandDef = COMMANDS[cmd];
  const opts = Object.entries(d.options).map(([name, o]) => [o.value ? `${name} ${o.value}` : name, o.help] as const);
  const width = Math.max(...opts.map(([t]) => t.length), "-h, --help".length);
  return [
    `usage:\n${commandLine(cmd)}`,
    "",
    `${d.summary[0]!.toUpperCase()}${d.summary.slice(1)}.`,
    "",
    "options:",
    ...opts.map(([t, help]) => `  ${t.padEnd(width)}  ${help}`),
    `  ${"-h, --help".padEnd(width)}  show this help`,
    "",
  ].join("\n");
}
