/**
 * The CommonJS entry of the package (`require("backpass")`): the same API as index.ts, whose
 * asynchronous functions load the ES module build on first use, so it works on every Node 20
 * (`require` of an ES module is not there before 20.19). `defineSpec` is synchronous, as in a
 * spec file that a CommonJS project's tools compile to `require`. `SpecError` is not the ES
 * module's class itself but matches it with `instanceof`.
 */
import type * as Esm from "./index.js";

let esm: Promise<typeof Esm> | undefined;
const api = (): Promise<typeof Esm> => (esm ??= import("./index.js"));

/** Compiles `spec` into the generated module's files (see index.ts). */
export async function compile(...args: Parameters<typeof Esm.compile>): ReturnType<typeof Esm.compile> {
  return (await api()).compile(...args);
}

/** The derivation of `spec`: `{ files: { "<name>.md", "<name>.svg" } }`. */
export async function explain(...args: Parameters<typeof Esm.explain>): ReturnType<typeof Esm.explain> {
  return (await api()).explain(...args);
}

/** What each backward kernel of `spec` computes, as `backpass stats` prints it. */
export async function stats(...args: Parameters<typeof Esm.stats>): ReturnType<typeof Esm.stats> {
  return (await api()).stats(...args);
}

/** Checks `spec` and builds its program, or throws a `SpecError` (asynchronous here, unlike the ES module's). */
export async function checkSpec(...args: Parameters<typeof Esm.checkSpec>): Promise<ReturnType<typeof Esm.checkSpec>> {
  return (await api()).checkSpec(...args);
}

/** Types a spec object; returns it unchanged. */
export function defineSpec<const S extends Esm.SpecObject>(spec: S): S {
  return spec;
}

/** Matches (`instanceof`) the errors that reject a bad spec; the class itself is the ES module's. */
export const SpecError = class SpecError extends Error {
  static override [Symbol.hasInstance](x: unknown): boolean {
    return x instanceof Error && x.name === "SpecError" && Array.isArray((x as { problems?: unknown }).problems);
  }
} as unknown as typeof Esm.SpecError;
export type SpecError = Esm.SpecError;

export type { SpecObject, Problem, CompileOptions, CompileResult, ExplainOptions, Dtype, Format, Target, ModuleKind, SpecStats, KernelStats, PassStats, ReductionStats } from "./index.js";
