/**
 * `--target wasm` (emit/wasm.ts): every library spec's module built for WebAssembly, float64 and
 * float32, against the TypeScript float64 module (generated/) on the same inputs: the forward
 * output, every cached step (float32: against the TypeScript float32 module, whose steps round as
 * they store) and both backward kernels. The float64 wasm kernels run the same
 * operations in the same order, except the math functions (wasm-math.ts, within a few ulps), and
 * vectorized sums that add in another order: they are held to 1e-11 of the gradient's scale past
 * 64 ulps of the terms behind each element. The float32 ones are held as test/float32.test.ts
 * holds the float32 TypeScript kernels (1e-4 past 64 float32 ulps of those terms). Sizes go up to
 * 9 so that vector loops, their unrolled copies and their scalar tails all run.
 *
 * A few specs also go through the whole property suite (finite differences, `checkSpecModule`),
 * and arrays that live in the module's memory (`alloc`) are used in place.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { emitModule } from "../compiler/emit/module.js";
import { wasmBackend } from "../compiler/emit/wasm-module.js";
import { isDifferentiable, type Program } from "../compiler/ir/program.js";
import { checkSpecModule, compileLibrary, gradientNoise, randomInputs, type DataKind, type Kernels, loadModule, generatedModule } from "./harness.js";
import { randomSizes } from "../compiler/ir/sizes.js";
import { prng } from "../compiler/ir/random.js";
import { compile } from "../compiler/driver.js";
import { SPECS } from "./layers-cases.js";

const specDir = join(import.meta.dirname, "../specs");
const names = readdirSync(specDir).filter((f) => f.endsWith(".spec.ts")).map((f) => f.replace(/\.spec\.ts$/, "")).sort();
const dir = mkdtempSync(join(tmpdir(), "backpass-wasm-"));
const EPS32 = 2 ** -23;
const EPS64 = 2 ** -52;

type AnyKernels = {
  forward(inputs: Record<string, ArrayLike<number>>, sizes: Record<string, number>): Record<string, unknown> & { cache: { values: Record<string, ArrayLike<number>> } };
  backwardNaive(dout: ArrayLike<number> | Record<string, ArrayLike<number>>, cache: unknown, into?: object): Record<string, ArrayLike<number>>;
  backwardFused(dout: ArrayLike<number> | Record<string, ArrayLike<number>>, cache: unknown, into?: object): Record<string, ArrayLike<number>>;
  alloc(length: number): Float64Array | Float32Array;
  reserveMemory(bytes: number): void;
  wasmMemory(): { buffer: ArrayBuffer };
};

/** The wasm module of a library spec, emitted from the build codegen makes (compileLibrary), written and imported. */
const modules = new Map<string, Promise<AnyKernels>>();
function wasmModule(name: string, dtype: "float64" | "float32"): Promise<AnyKernels> {
  const key = `${name}-${dtype}`;
  if (!modules.has(key)) modules.set(key, buildWasm(name, dtype));
  return modules.get(key)!;
}
async function buildWasm(name: string, dtype: "float64" | "float32"): Promise<AnyKernels> {
  const c = await compileLibrary(name);
  const code = await emitModule({ program: c.program, backward: c.backward, fused: c.fused, schedule: c.schedule, staged: c.staged, source: `specs/${name}.spec.ts`, format: false, dtype, backend: wasmBackend(dtype) });
  return loadModule<AnyKernels>(code, join(dir, `${name}-${dtype}.ts`));
}

/**
 * Random sizes 1..9 (1..4 for specs of four or more sizes) with the computed extents added (drawn
 * again until each is positive, `randomSizes`), a data kind and a seed.
 */
function cases(p: Program) {
  const max = p.sizes.length > 3 ? 4 : 9;
  return fc.tuple(fc.constantFrom<DataKind>("normal", "constant", "tiny"), fc.integer()).map(([kind, seed]) => {
    const rand = prng(seed);
    return { sizes: randomSizes(p, rand, 1, max), kind, rand };
  });
}

/** Largest error of `a` against `b` past `ulps` of the terms behind each element, relative to the scale of the gradients. */
function excess(a: ArrayLike<number>, b: ArrayLike<number>, noise: Float64Array | undefined, ulps: number, largest: number): number {
  let scale = 1e-6 * largest;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(a[i]!)) return Infinity;
    worst = Math.max(worst, Math.max(0, Math.abs(a[i]! - b[i]!) - ulps * (noise?.[i] ?? Math.abs(b[i]!))) / scale);
  }
  return worst;
}

describe.each(names)("wasm modules of %s", (name) => {
  it("agree with the TypeScript float64 kernels, float64 and float32", async () => {
    const c = await compileLibrary(name);
    const p = c.program;
    const ts = (await generatedModule(name)) as unknown as AnyKernels;
    const ts32 = (await generatedModule(name, "float32")) as unknown as AnyKernels;
    const w64 = await wasmModule(name, "float64");
    const w32 = await wasmModule(name, "float32");
    fc.assert(
      fc.property(cases(p), ({ sizes, kind, rand }) => {
        const raw = randomInputs(p, sizes, kind, rand);
        const in64 = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v instanceof Int32Array ? v : Float64Array.from(Float32Array.from(v))]));
        const in32 = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v instanceof Int32Array ? v : Float32Array.from(v)]));
        const ref = ts.forward(in64, sizes);
        const a64 = w64.forward(in64, sizes);
        const a32 = w32.forward(in32, sizes);
        // float32 steps round what they store, and later steps read the rounded values: the forward is held to the TypeScript float32 one
        const ref32 = ts32.forward(in32, sizes);
        for (const t of p.steps) {
          const want = ref.cache.values[t.name]!;
          expect(excess(a64.cache.values[t.name]!, want, undefined, 64 * EPS64, 1e-300), `${kind}: float64 forward ${t.name}`).toBeLessThanOrEqual(1e-11);
          expect(excess(a32.cache.values[t.name]!, ref32.cache.values[t.name]!, undefined, 64 * EPS32, 1e-300), `${kind}: float32 forward ${t.name}`).toBeLessThanOrEqual(1e-4);
        }
        const ws = p.outputs.map((o) => Float64Array.from(Float32Array.from({ length: (ref[o] as Float64Array).length }, () => rand() * 2 - 1)));
        const several = p.outputs.length > 1;
        const dout = several ? Object.fromEntries(p.outputs.map((o, k) => [o, ws[k]!])) : ws[0]!;
        const dout32 = several ? Object.fromEntries(p.outputs.map((o, k) => [o, Float32Array.from(ws[k]!)])) : Float32Array.from(ws[0]!);
        const noise = gradientNoise(p, in64 as never, sizes, dout);
        const want = ts.backwardNaive(dout, ref.cache);
        let largest = 1e-300;
        for (const g of Object.values(want)) for (const v of Array.from(g)) largest = Math.max(largest, Math.abs(v));
        for (const kernel of ["backwardNaive", "backwardFused"] as const) {
          const g64 = w64[kernel](dout, a64.cache);
          const g32 = w32[kernel](dout32, a32.cache);
          for (const t of p.inputs.filter(isDifferentiable)) {
            const key = `d${t.name}`;
            expect(g64[key]).toBeInstanceOf(Float64Array);
            expect(g32[key]).toBeInstanceOf(Float32Array);
            expect(excess(g64[key]!, want[key]!, noise.get(t.name), 64 * EPS64, largest), `${kind}: float64 ${kernel} ${key}`).toBeLessThanOrEqual(1e-11);
            expect(excess(g32[key]!, want[key]!, noise.get(t.name), 64 * EPS32, largest), `${kind}: float32 ${kernel} ${key}`).toBeLessThanOrEqual(1e-4);
          }
        }
      }),
      { numRuns: 8 },
    );
  });
});

describe("wasm modules, whole property suite", () => {
  it.each(["batchnorm", "gelu_erf", "cross_entropy", "embedding_layernorm", "attention"])("%s: forward, both kernels and finite differences", async (name) => {
    const c = await compileLibrary(name);
    const w64 = await wasmModule(name, "float64");
    // checkSpecModule asserts every check itself; the forward is held to the interpreter there too
    const worst = checkSpecModule(c.program, w64 as unknown as Kernels, 8);
    expect(worst.forward).toBeLessThanOrEqual(1e-8);
  });
});

describe("wasm modules, memory", () => {
  it("use arrays from alloc in place, write into given arrays whatever they held, and detach views when memory grows", async () => {
    const w = await wasmModule("batchnorm", "float64");
    const ts = (await generatedModule("batchnorm")) as unknown as AnyKernels;
    const [N, D] = [7, 5];
    const rand = prng(3);
    const fill = (a: Float64Array | Float32Array) => {
      for (let i = 0; i < a.length; i++) a[i] = rand() * 2 - 1;
      return a;
    };
    w.reserveMemory(1 << 16);
    const before = w.wasmMemory().buffer;
    const x = fill(w.alloc(N * D));
    const gamma = fill(w.alloc(D));
    const beta = fill(w.alloc(D));
    const dout = fill(w.alloc(N * D));
    const into = { dx: w.alloc(N * D).fill(7), dgamma: w.alloc(D).fill(7), dbeta: w.alloc(D).fill(7) };
    const f = w.forward({ x, gamma, beta }, { N, D });
    const g = w.backwardFused(dout, f.cache, into);
    const ref = ts.forward({ x: Float64Array.from(x), gamma: Float64Array.from(gamma), beta: Float64Array.from(beta) }, { N, D });
    const want = ts.backwardFused(Float64Array.from(dout), ref.cache);
    for (const k of ["dx", "dgamma", "dbeta"] as const) {
      expect(g[k], `${k} is the array given`).toBe(into[k]);
      expect(Array.from(g[k]!)).toEqual(Array.from(want[k]!).map((v, i) => expect.closeTo(v, 12 - Math.max(0, Math.ceil(Math.log10(Math.abs(want[k]![i]!) + 1e-300))))));
    }
    // arrays outside the module's memory, given dirty: copied out over whatever they held
    const given = { dx: new Float64Array(N * D).fill(NaN), dgamma: new Float64Array(D).fill(NaN), dbeta: new Float64Array(D).fill(NaN) };
    const naive = w.backwardNaive(Float64Array.from(dout), f.cache, given);
    for (const k of ["dx", "dgamma", "dbeta"] as const) for (let i = 0; i < want[k]!.length; i++) expect(naive[k]![i]!).toBeCloseTo(want[k]![i]!, 10);
    // nothing grew: every view is alive; growing detaches them (their data stays in the memory)
    expect(w.wasmMemory().buffer).toBe(before);
    expect(x.length).toBe(N * D);
    expect(f.cache.values["x"]).toBe(x);
    const saved = Float64Array.from(dout);
    w.alloc(1 << 17);
    expect(w.wasmMemory().buffer).not.toBe(before);
    expect(x.length).toBe(0);
    // the cache holds the detached input: the guards reject it before anything runs
    expect(() => w.backwardFused(saved, f.cache)).toThrow(/cache\.values\.x has length 0, expected 35/);
    // and an argument of the wrong kind or length is refused as by the TypeScript module
    expect(() => w.forward({ x: new Float32Array(N * D), gamma, beta }, { N, D })).toThrow(/inputs\.x must be a Float64Array/);
  });
});

/**
 * Test specs of the contract's constructs that the library does not cover as written
 * (test/layers-cases.ts): maximum, minimum, sign and several outputs; erf, log1p, expm1 and
 * softplus; max and min reductions with their gradient; a gather by label. Each is compiled once,
 * emitted as TypeScript and as wasm from that build, and the two held to each other.
 */
describe("wasm modules of the test specs", () => {
  it.each(["choices", "functions", "maxmin", "xent", "cell"] as const)("%s agrees with its TypeScript module", async (key) => {
    const c = await compile(SPECS[key], { format: false, doubleBackward: false });
    const p = c.program;
    const emit = async (backend?: ReturnType<typeof wasmBackend>) => {
      const code = await emitModule({ program: p, backward: c.backward, fused: c.fused, schedule: c.schedule, staged: c.staged, source: key, format: false, backend });
      return loadModule<AnyKernels>(code, join(dir, `case-${key}-${backend ? "wasm" : "ts"}.ts`));
    };
    const ts = await emit();
    const w = await emit(wasmBackend("float64"));
    fc.assert(
      fc.property(cases(p), ({ sizes, kind, rand }) => {
        const inputs = randomInputs(p, sizes, kind, rand);
        const ref = ts.forward(inputs, sizes);
        const got = w.forward(inputs, sizes);
        for (const t of p.steps) expect(excess(got.cache.values[t.name]!, ref.cache.values[t.name]!, undefined, 64 * EPS64, 1e-300), `${kind}: forward ${t.name}`).toBeLessThanOrEqual(1e-11);
        const ws = p.outputs.map((o) => Float64Array.from({ length: (ref[o] as Float64Array).length }, () => rand() * 2 - 1));
        const dout = p.outputs.length > 1 ? Object.fromEntries(p.outputs.map((o, k) => [o, ws[k]!])) : ws[0]!;
        const noise = gradientNoise(p, inputs, sizes, dout);
        const want = ts.backwardNaive(dout, ref.cache);
        let largest = 1e-300;
        for (const g of Object.values(want)) for (const v of Array.from(g)) largest = Math.max(largest, Math.abs(v));
        for (const kernel of ["backwardNaive", "backwardFused"] as const) {
          const g = w[kernel](dout, got.cache);
          for (const t of p.inputs.filter(isDifferentiable)) expect(excess(g[`d${t.name}`]!, want[`d${t.name}`]!, noise.get(t.name), 64 * EPS64, largest), `${kind}: ${kernel} d${t.name}`).toBeLessThanOrEqual(1e-11);
        }
      }),
      { numRuns: 8 },
    );
  });
});

describe("wasm modules, names", () => {
  it("a spec whose names are the module's own words (alloc, runKernel, memory, pad, WebAssembly, func, local) builds and runs", async () => {
    const spec = {
      name: "wasm_api",
      indices: { i: "N", func: "local" },
      inputs: ["alloc[i,func]", "runKernel[func]", "memory[i]: nograd"],
      constants: { WebAssembly: 0.5 },
      steps: ["pad[i] = sum(alloc[i,func]*runKernel[func], func)", "WASM_BYTES[i,func] = exp(WebAssembly*pad[i])*alloc[i,func] + memory[i]"],
      output: "WASM_BYTES",
    };
    const c = await compile(spec, { format: false, doubleBackward: false });
    const p = c.program;
    const emit = async (backend?: ReturnType<typeof wasmBackend>) => {
      const code = await emitModule({ program: p, backward: c.backward, fused: c.fused, schedule: c.schedule, staged: c.staged, source: "names", format: false, backend });
      return loadModule<AnyKernels>(code, join(dir, `names-${backend ? "wasm" : "ts"}.ts`));
    };
    const ts = await emit();
    const w = await emit(wasmBackend("float64"));
    const rand = prng(9);
    const sizes = { N: 5, local: 3 };
    const inputs = randomInputs(p, sizes, "normal", rand);
    const ref = ts.forward(inputs, sizes);
    const got = w.forward(inputs, sizes);
    expect(Array.from(got["WASM_BYTES"] as Float64Array)).toEqual(Array.from(ref["WASM_BYTES"] as Float64Array).map((v) => expect.closeTo(v, 12)));
    const dout = Float64Array.from({ length: 15 }, () => rand() * 2 - 1);
    const want = ts.backwardFused(dout, ref.cache);
    const g = w.backwardFused(dout, got.cache);
    expect(Object.keys(g).sort()).toEqual(["dalloc", "drunKernel"]);
    for (const k of Object.keys(want)) for (let i = 0; i < want[k]!.length; i++) expect(g[k]![i]!).toBeCloseTo(want[k]![i]!, 12);
  });
});

describe("wasm modules, state", () => {
  it("batchnorm's inference kernels run as wasm and agree with the TypeScript module's", async () => {
    const spec = (await import("../specs/batchnorm.spec.ts")).default;
    const c = await compile(spec, { format: false, target: "wasm", doubleBackward: false });
    const file = join(dir, "batchnorm-state-wasm.ts");
    writeFileSync(file, c.code);
    type StateKernels = AnyKernels & {
      initState(sizes: Record<string, number>): Record<string, Float64Array>;
      updateState(state: Record<string, Float64Array>, cache: unknown): Record<string, Float64Array>;
      forwardInference(inputs: Record<string, Float64Array>, state: Record<string, Float64Array>, sizes: Record<string, number>): Record<string, unknown> & { cache: unknown };
      backwardInferenceNaive(dout: Float64Array, cache: unknown): Record<string, Float64Array>;
      backwardInferenceFused(dout: Float64Array, cache: unknown): Record<string, Float64Array>;
    };
    const w = await loadModule<StateKernels>(c.code);
    const ts = (await generatedModule("batchnorm")) as unknown as StateKernels;
    // forward, both backward kernels, and the three inference kernels (updateState stays TypeScript)
    expect(c.code.match(/runKernel\("k\d+"/g)).toHaveLength(6);
    const rand = prng(21);
    const sizes = { N: 7, D: 5 };
    const inputs = randomInputs(c.program, sizes, "normal", rand) as Record<string, Float64Array>;
    const dout = Float64Array.from({ length: 35 }, () => rand() * 2 - 1);
    const [sw, st] = [w.initState(sizes), ts.initState(sizes)];
    w.updateState(sw, w.forward(inputs, sizes).cache);
    ts.updateState(st, ts.forward(inputs, sizes).cache);
    const [fw, ft] = [w.forwardInference(inputs, sw, sizes), ts.forwardInference(inputs, st, sizes)];
    const close = (a: ArrayLike<number>, b: ArrayLike<number>) => expect(Array.from(a)).toEqual(Array.from(b).map((v) => expect.closeTo(v, 12)));
    close(fw["out"] as Float64Array, ft["out"] as Float64Array);
    for (const kernel of ["backwardInferenceNaive", "backwardInferenceFused"] as const) {
      const [gw, gt] = [w[kernel](dout, fw.cache), ts[kernel](dout, ft.cache)];
      for (const k of Object.keys(gt)) close(gw[k]!, gt[k]!);
    }
  });
});

/**
 * A float32 vector loop adds its reductions up in float32 for a block of elements, then into
 * float64 accumulators (emit/wasm.ts, PARTIAL): lengths of several blocks and a tail, held to the
 * TypeScript float64 kernels as above.
 */
describe("wasm float32 reductions over several blocks", () => {
  it.each([
    ["layernorm", { N: 3, D: 301 }],
    ["linear", { N: 5, D: 3, K: 277 }],
    ["attention", { L: 6, E: 261, F: 259 }],
  ] as const)("%s at %o", async (name, sizes) => {
    const c = await compileLibrary(name);
    const p = c.program;
    const ts = (await generatedModule(name)) as unknown as AnyKernels;
    const w32 = await wasmModule(name, "float32");
    const rand = prng(11);
    const raw = randomInputs(p, sizes, "normal", rand);
    const in64 = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v instanceof Int32Array ? v : Float64Array.from(Float32Array.from(v))]));
    const in32 = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v instanceof Int32Array ? v : Float32Array.from(v)]));
    const ref = ts.forward(in64, sizes);
    const a32 = w32.forward(in32, sizes);
    const dout = Float64Array.from(Float32Array.from({ length: (ref[p.outputs[0]!] as Float64Array).length }, () => rand() * 2 - 1));
    const noise = gradientNoise(p, in64 as never, sizes, dout);
    const want = ts.backwardNaive(dout, ref.cache);
    let largest = 1e-300;
    for (const g of Object.values(want)) for (const v of Array.from(g)) largest = Math.max(largest, Math.abs(v));
    for (const kernel of ["backwardNaive", "backwardFused"] as const) {
      const g32 = w32[kernel](Float32Array.from(dout), a32.cache);
      for (const t of p.inputs.filter(isDifferentiable))
        expect(excess(g32[`d${t.name}`]!, want[`d${t.name}`]!, noise.get(t.name), 64 * EPS32, largest), `${kernel} d${t.name}`).toBeLessThanOrEqual(1e-4);
    }
  });
});
