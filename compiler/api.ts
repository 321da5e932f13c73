/**
 * The compiler as a library (CONTRACT §5): `compile`, `explain` and `stats` take a spec object
 * (what a `.spec.ts` exports or a `.json` holds) and resolve to what the command line would write
 * or print. A bad spec rejects with a `SpecError` carrying the command line's messages (without a
 * file name, unless `source` names one). Heavy parts of the compiler load on first use.
 */
import type { SpecStats } from "./stats.js";
import type { Compiled } from "./driver.js";
import type { Explained } from "./explain/document.js";

export type Dtype = "float64" | "float32";
export type Format = "ts" | "js";
export type Target = "js" | "wasm";
export type ModuleKind = "esm" | "cjs";

export interface CompileOptions {
  /** Element type of the arrays the module takes and returns (default `"float64"`). */
  readonly dtype?: Dtype;
  /** `"ts"`: `<name>.ts` (default); `"js"`: `<name>.js` plus `<name>.d.ts`. */
  readonly format?: Format;
  /**
   * With `format: "js"`: `"esm"` (default) writes `export function ...`, for a package whose
   * `"type"` is `"module"`; `"cjs"` writes CommonJS (`exports.forward = ...`) for any other.
   */
  readonly module?: ModuleKind;
  /** What the kernels run as (default `"js"`); `"wasm"`: WebAssembly SIMD kernels in the same module (README: the memory API). */
  readonly target?: Target;
  /** Where the spec came from, for messages and the module's header (default: the spec's name). */
  readonly source?: string;
}

export interface CompileResult {
  /** File name (no folder) to contents, e.g. `{ "batchnorm.ts": "..." }`. */
  readonly files: Readonly<Record<string, string>>;
}

export interface ExplainOptions {
  /** Where the spec came from, for messages (default: none). */
  readonly source?: string;
}

const CHOICES = { dtype: ["float64", "float32"], format: ["ts", "js"], target: ["js", "wasm"], module: ["esm", "cjs"], source: undefined } as const;

/** The options object checked: unknown keys and values outside their choices are a TypeError. */
function checkOptions<K extends keyof typeof CHOICES>(options: unknown, keys: readonly K[], fn: string): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new TypeError(`${fn}: options must be an object`);
  for (const [key, value] of Object.entries(options)) {
    if (!(keys as readonly string[]).includes(key)) throw new TypeError(`${fn}: unknown option '${key}' (options: ${keys.join(", ")})`);
    if (value === undefined) continue;
    const choices = CHOICES[key as K] as readonly string[] | undefined;
    if (choices && !choices.includes(value as string)) throw new TypeError(`${fn}: ${key} must be ${choices.map((c) => `'${c}'`).join(" or ")}, got ${JSON.stringify(value) ?? String(value)}`);
    if (!choices && typeof value !== "string") throw new TypeError(`${fn}: ${key} must be a string`);
  }
}

/** Runs the compiler (driver.ts) on `spec`. */
async function compiled(spec: unknown, opts: { source?: string; dtype?: Dtype; rebuild?: string; target?: Target; format?: boolean }): Promise<Compiled> {
  const { compile: compileSpec } = await import("./driver.js");
  return compileSpec(spec, opts);
}

/** The files of one module: `<name>.ts`, or `<name>.js` and `<name>.d.ts`. */
export async function moduleFiles(code: string, name: string, format: Format = "ts", module: ModuleKind = "esm"): Promise<Record<string, string>> {
  if (format === "ts") return { [`${name}.ts`]: code };
  const { toJavaScript } = await import("./javascript.js");
  const { js, dts } = await toJavaScript(code, name, module);
  return { [`${name}.js`]: js, [`${name}.d.ts`]: dts };
}

/** The derivation of a compiled spec: `<name>.md` and `<name>.svg`. */
export async function explainFiles(c: Explained): Promise<Record<string, string>> {
  const [{ explainMarkdown }, { graphSvg }] = await Promise.all([import("./explain/document.js"), import("./explain/graph.js")]);
  return { [`${c.program.name}.md`]: explainMarkdown(c), [`${c.program.name}.svg`]: await graphSvg(c.program, c.backward) };
}

/** Compiles `spec` into the generated module's files. */
export async function compile(spec: unknown, options?: CompileOptions): Promise<CompileResult> {
  checkOptions(options, ["dtype", "format", "target", "module", "source"], "compile");
  const c = await compiled(spec, { source: options?.source, dtype: options?.dtype, rebuild: "compile()", target: options?.target });
  return { files: await moduleFiles(c.code, c.program.name, options?.format, options?.module) };
}

/** The derivation of `spec`, as `backpass explain` writes it: `{ files: { "<name>.md", "<name>.svg" } }`. */
export async function explain(spec: unknown, options?: ExplainOptions): Promise<CompileResult> {
  checkOptions(options, ["source"], "explain");
  const { NotLowered } = await import("./driver.js");
  try {
    // the module is not written: not formatted either
    return { files: await explainFiles(await compiled(spec, { source: options?.source, format: false })) };
  } catch (e) {
    // a derivation whose kernels cannot be written yet is still explained, without their cost
    if (e instanceof NotLowered) return { files: await explainFiles(e.derived) };
    throw e;
  }
}

/** What each backward kernel of `spec` computes, as `backpass stats` prints it. */
export async function stats(spec: unknown, options?: ExplainOptions & { readonly dtype?: Dtype }): Promise<SpecStats> {
  checkOptions(options, ["source", "dtype"], "stats");
  return (await compiled(spec, { source: options?.source, dtype: options?.dtype, format: false })).stats;
}
