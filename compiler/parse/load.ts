/**
 * Loads a spec file: a `.spec.ts` (or `.ts`/`.js`/`.mjs`) module's default export, or a `.json`
 * document. Loading problems are reported as spec problems naming the file.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { register } from "node:module";
import { pathToFileURL } from "node:url";
import { SpecError } from "./check.js";

export interface LoadOptions {
  /** How the file is named in messages (default: `file` as given). */
  readonly shownAs?: string;
  /**
   * How long a module may take to load, in ms (default 30 s). A module whose top-level await never
   * settles either lets the event loop drain, which is caught at once, or keeps it busy (a timer,
   * a socket), which is caught by this bound.
   */
  readonly timeoutMs?: number;
}

const PROBLEMS: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "it is a directory",
  ENOTDIR: "a part of the path is not a directory",
};

/** The text of a spec file, without a UTF-8 byte-order mark. */
export async function readSpecText(abs: string): Promise<string> {
  return (await readFile(abs, "utf8")).replace(/^\uFEFF/, "");
}

export async function loadSpecObject(file: string, opts: LoadOptions = {}): Promise<unknown> {
  const abs = resolve(file);
  const shown = opts.shownAs ?? file;
  // read it first: one message for a missing or unreadable file, whatever its kind
  let text: string;
  try {
    text = await readSpecText(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SpecError([{ message: `cannot read the file: ${(code && PROBLEMS[code]) ?? code ?? String(e)}` }], shown);
  }
  if (file.endsWith(".json")) {
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new SpecError([{ message: `not valid JSON: ${(e as Error).message}` }], shown);
    }
  }
  if (!/\.(ts|mts|js|mjs)$/.test(file)) throw new SpecError([{ message: "a spec file must end in .spec.ts, .ts, .js or .json" }], shown);
  if (/\.m?ts$/.test(file)) typeScriptHooks();
  let mod: Record<string, unknown>;
  try {
    mod = (await settled(import(pathToFileURL(abs).href), opts.timeoutMs ?? 30_000)) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof NotSettled) throw new SpecError([{ message: e.message }], shown);
    throw new SpecError([{ message: `cannot load the module: ${(e as Error).message}` }], shown);
  }
  if (!("default" in mod)) throw new SpecError([{ message: "the module has no default export; export the spec object as default" }], shown);
  return mod["default"];
}

let hooked = false;
/**
 * Lets `import()` load TypeScript (spec-hooks.ts). Only the built package needs it: run from the
 * repository's TypeScript sources, this module is itself TypeScript, so a loader is already there.
 */
function typeScriptHooks(): void {
  if (hooked || import.meta.url.endsWith(".ts")) return;
  register("./spec-hooks.js", import.meta.url);
  hooked = true;
}

class NotSettled extends Error {}

/**
 * `p`, or a `NotSettled` rejection if the event loop drains while it is pending (Node would exit
 * with code 0, having done nothing) or if it takes longer than `ms`.
 */
function settled<T>(p: Promise<T>, ms: number): Promise<T> {
  let onDrain = () => {};
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    onDrain = () => reject(new NotSettled("the module did not finish loading (a top-level await that never settles?)"));
    process.once("beforeExit", onDrain);
    timer = setTimeout(() => reject(new NotSettled(`the module did not finish loading within ${ms / 1000} s (a top-level await that never settles?)`)), ms);
    timer.unref(); // the bound alone must not keep the process alive
  });
  return Promise.race([p, stuck]).finally(() => {
    process.off("beforeExit", onDrain);
    clearTimeout(timer);
  });
}
