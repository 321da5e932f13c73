/**
 * Gradient checks shared by every spec's tests: a generated module's two backward kernels against
 * each other and against central differences of its own forward, with random output weights.
 */
import { expect } from "vitest";
import { gradientError, gradientNoise, lengthOf, randomInputs, type DataKind, type Inputs } from "./measure.js";
export { gradientError, gradientNoise, lengthOf, randomInputs, type DataKind, type Inputs } from "./measure.js";
import fc from "fast-check";
import { fill, interpretForward } from "../compiler/ir/interpret.js";
import { evaluate, tensorEnv } from "../compiler/ir/evaluate.js";
import { isDifferentiable, shapeOf } from "../compiler/ir/program.js";
import type { Dout } from "../compiler/ir/interpret.js";
import { prng } from "../compiler/ir/random.js";
import { extentsPositive, withDerived } from "../compiler/ir/sizes.js";
import type { Program } from "../compiler/ir/program.js";
import { compile, derive, type Compiled, type Derived } from "../compiler/driver.js";
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import { transform } from "esbuild";

/**
 * A module the tests generated, loaded from its code: esbuild strips its types (as tsx does for
 * `npx backpass`) into CommonJS, whose body runs as a function in this realm (a generated module
 * imports nothing). vitest's `import()` of a written `.ts` file puts it through its module pipeline,
 * source maps included, at about 75 ms a module, three to four times this; the suite loads a few
 * hundred. The code is also written to `file` when one is given, to be read after a failure. The
 * tests that judge how a module is imported (hostile.test's injection, the CLI and package tests)
 * use `import()` itself.
 */
const committed = new Map<string, Promise<unknown>>();
/** A committed module of generated/ (`float32/` for that dtype), loaded by `loadModule` once per test worker. */
export function generatedModule(name: string, dtype: "float64" | "float32" = "float64"): Promise<unknown> {
  const path = join(import.meta.dirname, "../generated", dtype === "float32" ? "float32" : "", `${name}.ts`);
  let m = committed.get(path);
  if (!m) committed.set(path, (m = loadModule(readFileSync(path, "utf8"))));
  return m;
}

export async function loadModule<T>(code: string, file?: string): Promise<T> {
  if (file !== undefined) writeFileSync(file, code);
  const js = (await transform(code, { loader: "ts", format: "cjs", target: "es2022" })).code;
  const module = { exports: {} as T };
  new Function("exports", "module", js)(module.exports, module);
  return module.exports;
}

/**
 * How many cases a fuzzing property runs: `n` in `npm test`, which must stay quick, and `n` times
 * BACKPASS_FUZZ (a positive number) in an exploratory run (`npm run fuzz` sets 10 and a random seed).
 */
export function fuzzRuns(n: number): number {
  const env = process.env.BACKPASS_FUZZ;
  if (env === undefined || env === "") return n;
  const scale = Number(env);
  if (!(scale > 0)) throw new Error(`BACKPASS_FUZZ must be a positive number, not ${JSON.stringify(env)}`);
  return Math.max(1, Math.round(n * scale));
}

const library = new Map<string, Promise<Compiled>>();
/**
 * A library spec (`specs/<name>.spec.ts`) compiled once per test worker (vitest shares a worker's
 * modules between files), unformatted and without the double backward unless `double` is asked
 * for: the tests that read a build judge its derivation, schedule and stats; the double backward
 * of every library spec is judged on the committed modules (test/double.test.ts), which codegen
 * --check holds to the compiler. Readers must not change it.
 */
export function compileLibrary(name: string, opts: { readonly double?: boolean } = {}): Promise<Compiled> {
  const key = `${name}${opts.double ? "+double" : ""}`;
  let c = library.get(key);
  if (!c) {
    c = specOf(name).then((spec) => compile(spec, { format: false, doubleBackward: opts.double === true }));
    library.set(key, c);
  }
  return c;
}

const derivations = new Map<string, Promise<Derived>>();
/** A library spec's derivation alone (checked program, naive backward, fused gradients), once per test worker. */
export function deriveLibrary(name: string): Promise<Derived> {
  let d = derivations.get(name);
  if (!d) {
    d = specOf(name).then((spec) => derive(spec));
    derivations.set(name, d);
  }
  return d;
}

async function specOf(name: string): Promise<unknown> {
  return ((await import(join(import.meta.dirname, "../specs", `${name}.spec.ts`))) as { default: unknown }).default;
}

export interface Kernels {
  forward(inputs: Inputs, sizes: Record<string, number>, constants?: Record<string, number>): Record<string, unknown> & { cache: unknown };
  /** `dout` is the output's gradient, or an object of them by output name for a spec with several outputs. */
  backwardNaive(dout: Dout, cache: unknown): Record<string, Float64Array>;
  backwardFused(dout: Dout, cache: unknown): Record<string, Float64Array>;
}


/**
 * Every element finite: one assertion per array, naming the first element that is not (an
 * assertion per element costs more than the kernels it checks).
 */
export function expectFinite(values: ArrayLike<number>, what: string): void {
  let bad = -1;
  for (let i = 0; i < values.length && bad < 0; i++) if (!Number.isFinite(values[i]!)) bad = i;
  expect(bad, `${what}: element ${bad} is ${values[bad]}, not finite`).toBe(-1);
}

/** Largest |a - b| relative to the largest |b| (and an absolute floor `floor`). */
export function relErr(a: Float64Array, b: Float64Array, floor = 1e-300): number {
  let scale = floor;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  return err / scale;
}

function std(a: Float64Array): number {
  if (a.length < 2) return Math.abs(a[0] ?? 1) || 1;
  const m = a.reduce((s, v) => s + v, 0) / a.length;
  const v = a.reduce((s, x) => s + (x - m) ** 2, 0) / a.length;
  return Math.sqrt(v) || Math.abs(m) || 1;
}

/**
 * Checks one module at one point. `rand` gives uniform [0, 1). Returns the worst errors found so a
 * test can report them; fails the test when a bound is exceeded.
 */
export function checkModule(
  mod: Kernels,
  p: Program,
  sizes: Record<string, number>,
  inputs: Inputs,
  rand: () => number,
  tol: { fused?: number; fd?: number } = {},
): FdCount & { fused: number; fd: number } {
  const before = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.slice()]));
  const { cache, ...outs } = mod.forward(inputs, sizes);
  // a random weight for every element of every output: the loss is their weighted sum
  const ws = p.outputs.map((o) => Float64Array.from({ length: (outs[o] as Float64Array).length }, () => rand() * 2 - 1));
  const w: Dout = p.outputs.length === 1 ? ws[0]! : Object.fromEntries(p.outputs.map((o, k) => [o, ws[k]!]));
  const wCopy = ws.map((x) => Float64Array.from(x));
  const naive = mod.backwardNaive(w, cache);
  const fused = mod.backwardFused(w, cache);
  // kernels never modify their arguments
  ws.forEach((x, k) => expect(x).toEqual(wCopy[k]));
  for (const [k, v] of Object.entries(before)) expect(inputs[k]).toEqual(v);
  // int and nograd inputs get no gradient
  for (const t of p.inputs) if (!isDifferentiable(t)) expect(naive[`d${t.name}`] ?? fused[`d${t.name}`], `no gradient for ${t.name}`).toBeUndefined();
  const diff = p.inputs.filter(isDifferentiable);

  let worstFused = 0;
  let worstFd = 0;
  const loss = (ins: Inputs) => {
    const f = mod.forward(ins, sizes);
    let s = 0;
    p.outputs.forEach((name, k) => {
      const o = f[name] as Float64Array;
      for (let i = 0; i < o.length; i++) s += ws[k]![i]! * o[i]!;
    });
    return s;
  };
  // a gradient can vanish by cancellation (batchnorm's dx at N = 2): errors are then measured against
  // a floor of 1e-6 times the largest gradient of the layer, never against rounding noise
  let largest = 1e-300;
  for (const t of diff) for (const v of naive[`d${t.name}`]!) largest = Math.max(largest, Math.abs(v));
  // the rounding of each gradient's terms, measured only where a gradient needs it (gradientError)
  let noise: Map<string, Float64Array> | undefined;
  const noiseOf = (name: string) => () => (noise ??= gradientNoise(p, inputs, sizes, w)).get(name)!;
  // the size of the loss's terms, whose rounding the finite differences amplify by 1/h
  let terms = 0;
  p.outputs.forEach((name, k) => {
    const o = outs[name] as Float64Array;
    for (let i = 0; i < o.length; i++) terms += Math.abs(ws[k]![i]! * o[i]!);
  });
  let judged = 0;
  let skipped = 0;
  for (const t of diff) {
    const g = naive[`d${t.name}`]!;
    const f = fused[`d${t.name}`]!;
    expect(g.length).toBe(lengthOf(p, t.name, sizes));
    expect(f.length).toBe(g.length);
    const e = gradientError(f, g, largest, noiseOf(t.name));
    worstFused = Math.max(worstFused, e);
    expect(e, `fused d${t.name} against naive`).toBeLessThanOrEqual(tol.fused ?? 1e-10);

    // directional derivative along v, by a 4-point central stencil that must settle first
    const x = inputs[t.name] as Float64Array;
    const s = std(x);
    const v = Float64Array.from({ length: x.length }, () => (rand() * 2 - 1) * s);
    const at = (h: number) => loss({ ...inputs, [t.name]: x.map((xi, i) => xi + h * v[i]!) });
    let an = 0;
    let scale = 0;
    for (let i = 0; i < x.length; i++) {
      an += g[i]! * v[i]!;
      scale += Math.abs(g[i]! * v[i]!);
    }
    const d = settle(at, terms, (tol.fd ?? 1e-6) * scale);
    if (!d) {
      skipped++;
      continue;
    }
    judged++;
    const err = Math.abs(d.fd - an);
    worstFd = Math.max(worstFd, err / (scale + 1e-300));
    expect(err, `d${t.name} against finite differences (fd ${d.fd} at step ${d.h}, analytic ${an})`).toBeLessThanOrEqual((tol.fd ?? 1e-6) * scale + d.noise);
  }
  return { fused: worstFused, fd: worstFd, judged, skipped };
}

/** How many finite-difference checks judged a gradient, and how many were skipped because the differences did not settle. */
export interface FdCount {
  judged: number;
  skipped: number;
}

/** Adds `b` into `a`. */
export function addCount(a: FdCount, b: FdCount): void {
  a.judged += b.judged;
  a.skipped += b.skipped;
}

/** Skipped checks must be rare (under 10%), or the finite differences check nothing. */
export function expectFewSkips(c: FdCount, what: string): void {
  expect(c.judged, `${what}: finite-difference checks judged`).toBeGreaterThan(0);
  expect(c.skipped, `${what}: ${c.skipped} of ${c.judged + c.skipped} finite-difference checks did not settle`).toBeLessThan(0.1 * (c.judged + c.skipped));
}

/**
 * The derivative of `at` at 0 by 4-point central stencils at steps h0, h0/2, h0/4, ..., taken only
 * once it has settled: two successive stencils agree within their rounding (10 ulps of the loss's
 * `terms` or the rounding measured at tiny steps, whichever is larger, amplified by 1/h) plus a tenth of `allowance`. The truncation error of the stencil then
 * shrinks 16-fold a halving, so it is below the spread. `noise` is the rounding at the step taken
 * plus that spread. Returns undefined when no two stencils agree before the step reaches h0/4096:
 * a kink, or rounding that swamps every step. A curved layer (a constant column curves on the
 * scale of sqrt(eps)) just takes smaller steps; a flat one gives two stencils of exactly 0.
 */
export function settle(at: (h: number) => number, terms: number, allowance: number, h0 = 1e-3): { fd: number; h: number; noise: number } | undefined {
  // the loss's own rounding, measured where the step is too small to move it: the second
  // difference at 1e-11..4e-11 has no slope in it, only rounding (a loss that cancels inside,
  // like a normalization of nearly equal values, rounds far worse than 10 ulps of its terms)
  const at0 = at(0);
  let measured = 0;
  for (let k = 1; k <= 4; k++) measured = Math.max(measured, Math.abs(at(k * 1e-11) + at(-k * 1e-11) - 2 * at0));
  const level = Math.max(10 * Number.EPSILON * terms, 2 * measured);
  const roundoff = (h: number) => level / h;
  const stencil = (h: number) => (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
  let prev = stencil(h0);
  for (let h = h0 / 2; h >= h0 / 4096; h /= 2) {
    const fd = stencil(h);
    const spread = Math.abs(fd - prev);
    if (Number.isFinite(fd) && spread <= roundoff(h) + roundoff(2 * h) + 0.1 * allowance) return { fd, h, noise: roundoff(h) + spread };
    prev = fd;
  }
  return undefined;
}

/**
 * Each cached step against the interpreter's evaluation of its right-hand side from the cache's own
 * earlier values, so that only the step's own rounding counts: its error, less 64 ulps of the size
 * of its terms, relative to its largest value. Judged against a whole-forward reference instead, a
 * cancellation upstream (x - mu of three values of 1e4 that agree to 1e-5) is charged to every step
 * after it; the output is still held to the whole-forward reference.
 */
export function stepErrors(p: Program, values: Record<string, Float64Array>, sizes: Record<string, number>, constants: Record<string, number>): Map<string, number> {
  const tensors = new Map([...p.inputs, ...p.steps].map((t) => [t.name, { data: values[t.name]!, dims: shapeOf(p, t).map((x) => sizes[x]!) }]));
  const env = tensorEnv({ tensors, sizes, constants, sizeOf: p.sizeOf });
  const errors = new Map<string, number>();
  for (const s of p.steps) {
    const dims = shapeOf(p, s).map((x) => sizes[x]!);
    const want = fill(dims, (b) => evaluate(s.rhs, env, b), s.indices);
    const terms = fill(dims, (b) => evaluate(s.rhs, env, b, true), s.indices);
    const got = values[s.name]!;
    let scale = 1e-300;
    for (const v of want) scale = Math.max(scale, Math.abs(v));
    let err = 0;
    for (let i = 0; i < want.length; i++) err = Math.max(err, Math.max(0, Math.abs(got[i]! - want[i]!) - 64 * Number.EPSILON * terms[i]!) / scale);
    errors.set(s.name, err);
  }
  return errors;
}

/** One random case of a spec: sizes 1..5 (1..3 for specs of four or more sizes), a data kind, a seeded generator. */
export interface RandomCase {
  readonly sizes: Record<string, number>;
  readonly kind: DataKind;
  readonly rand: () => number;
}

/** The fast-check arbitrary of `RandomCase`s that every property test of a whole module draws from. */
export function randomCase(p: Program, kinds: readonly DataKind[] = ["normal", "constant", "large-mean", "tiny"]): fc.Arbitrary<RandomCase> {
  const maxSize = p.sizes.length > 3 ? 3 : 5;
  return fc
    .tuple(fc.tuple(...p.sizes.map(() => fc.integer({ min: 1, max: maxSize }))), fc.constantFrom<DataKind>(...kinds), fc.integer())
    .map(([dims, kind, seed]) => ({ sizes: withDerived(p, Object.fromEntries(p.sizes.map((s, k) => [s, dims[k]!]))), kind, rand: prng(seed) }))
    // computed extents (`i: "L - K + 1"`) must come out positive; the caller's sizes come with them
    .filter((c) => extentsPositive(p, c.sizes));
}

/**
 * The whole property check of one spec's module: forward (output and every cached step) against the
 * reference interpreter, both backwards against each other and finite differences, `runs` random
 * cases over sizes 1..5 (1..3 for specs of four or more sizes) and the four data kinds.
 */
export function checkSpecModule(p: Program, mod: Kernels, runs: number, kinds?: readonly DataKind[]): { fused: number; fd: number; forward: number } {
    const worst = { fused: 0, fd: 0, forward: 0 };
    const count: FdCount = { judged: 0, skipped: 0 };
    fc.assert(
      fc.property(
        randomCase(p, kinds),
        ({ sizes, kind, rand }) => {
          const inputs = randomInputs(p, sizes, kind, rand);
          const constants = Object.fromEntries(p.constants.map((c) => [c.name, c.value]));
          // forward: every cached step and the output against the interpreter
          const { cache, ...outs } = mod.forward(inputs, sizes) as Record<string, unknown> & { cache: { values: Record<string, Float64Array> } };
          const ref = interpretForward(p, inputs, sizes, constants);
          const out = outs[p.output] as Float64Array;
          const want = ref.get(p.output)!.data;
          expectFinite(out, `${kind}: forward`);
          const e = relErr(out, want, 1e-300);
          worst.forward = Math.max(worst.forward, e);
          // 1e4 with a spread of 1e-2 loses 6 of 16 digits to cancellation in any summation order
          const forwardTol = kind === "large-mean" ? 1e-8 : 1e-12;
          expect(e, "forward against the interpreter").toBeLessThanOrEqual(forwardTol);
          expect(Object.keys(cache.values).sort()).toEqual([...p.inputs, ...p.steps].map((t) => t.name).sort());
          for (const t of p.inputs) expect(cache.values[t.name]).toBeInstanceOf(t.kind === "int" ? Int32Array : Float64Array);
          for (const t of p.steps) expect(cache.values[t.name]).toBeInstanceOf(Float64Array);
          for (const t of p.inputs) expect(cache.values[t.name], `cached input ${t.name}`).toEqual(inputs[t.name]);
          for (const [name, e] of stepErrors(p, cache.values, sizes, constants)) expect(e, `cached ${name} against its step evaluated from the cache`).toBeLessThanOrEqual(1e-12);
          if (kind === "large-mean") {
            // a spread of 1e-6 of the mean: finite differences cannot resolve the layer there, so the
            // two kernels are held to each other and to finiteness
            const ws = p.outputs.map((o) => Float64Array.from({ length: (outs[o] as Float64Array).length }, () => rand() * 2 - 1));
            const dout: Dout = p.outputs.length === 1 ? ws[0]! : Object.fromEntries(p.outputs.map((o, k) => [o, ws[k]!]));
            const naive = mod.backwardNaive(dout, cache);
            const fused = mod.backwardFused(dout, cache);
            let largest = 1e-300;
            for (const g of Object.values(naive)) for (const v of g) largest = Math.max(largest, Math.abs(v));
            let noise: Map<string, Float64Array> | undefined;
            for (const [g, v] of Object.entries(fused)) {
              expectFinite(v, g);
              expect(gradientError(v, naive[g]!, largest, () => (noise ??= gradientNoise(p, inputs, sizes, dout)).get(g.slice(1))!), `${g}: fused against naive`).toBeLessThanOrEqual(1e-6);
            }
            return;
          }
          const r = checkModule(mod, p, sizes, inputs, rand);
          worst.fused = Math.max(worst.fused, r.fused);
          worst.fd = Math.max(worst.fd, r.fd);
          addCount(count, r);
        },
      ),
      { numRuns: runs },
    );
    expectFewSkips(count, p.name);
  return worst;
}
