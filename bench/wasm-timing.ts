/**
 * Times one library spec's fused backward kernel as WebAssembly (`--target wasm`) beside the
 * TypeScript float64 one, in a fresh process:
 * `node --import tsx bench/wasm-timing.ts <spec> '<sizes JSON>' [--quick]`.
 *
 * Variants, in many short alternating rounds (a slow spell of the machine falls on all alike):
 * the TypeScript float64 fused kernel (generated/), the wasm float64 and float32 fused kernels with
 * every array in the module's memory (`alloc`: used in place), and the wasm float32 kernel given
 * ordinary arrays (copied in and out on every call). Prints the medians in ms, the ratios to the
 * TypeScript kernel and the memory streamed per second: the bytes of `dout`, of the cached arrays
 * the kernel reads and of the gradients it writes, each counted once, over the median time.
 */
import { Bench } from "tinybench";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { isDifferentiable, shapeOf } from "../compiler/ir/program.js";
import { gatherSizes } from "../compiler/ir/interpret.js";
import { compile } from "../compiler/driver.js";
import { withDerived } from "../compiler/ir/sizes.js";

type Arrays = Record<string, Float64Array | Float32Array | Int32Array>;
interface Module {
  forward(i: Arrays, s: Record<string, number>, c?: object, into?: object): Record<string, unknown> & { cache: { values: Arrays } };
  backwardFused(d: unknown, c: unknown, into?: object): Arrays;
  alloc?(n: number): Float64Array | Float32Array;
  allocInts?(n: number): Int32Array;
  reserveMemory?(bytes: number): void;
}

const [name, sizesJson] = process.argv.slice(2);
const quick = process.argv.includes("--quick");
const given = JSON.parse(sizesJson!) as Record<string, number>;
const root = join(import.meta.dirname, "..");
const spec = (await import(join(root, "specs", `${name}.spec.ts`))).default;
const p = checkSpec(spec);
// the sizes given, and those the spec computes from them (a convolution's output extent)
const sizes = withDerived(p, given);
const dir = mkdtempSync(join(tmpdir(), "backpass-wasm-bench-"));
async function build(dtype: "float64" | "float32"): Promise<{ mod: Module; code: string }> {
  const c = await compile(spec, { dtype, target: "wasm", format: false });
  const file = join(dir, `${name}-${dtype}.ts`);
  writeFileSync(file, c.code);
  return { mod: (await import(file)) as Module, code: c.code };
}
const ts = (await import(join(root, "generated", `${name}.ts`))) as Module;
const w64 = await build("float64");
const w32 = await build("float32");

let seed = 17;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const ranges = gatherSizes(p);
const length = (dims: readonly string[]) => dims.reduce((a, s) => a * sizes[s]!, 1);
const data: Record<string, number[] | Int32Array> = Object.fromEntries(
  p.inputs.map((t): [string, number[] | Int32Array] => {
    const n = length(shapeOf(p, t));
    if (t.kind === "int") {
      const bound = Math.min(...(ranges.get(t.name) ?? []).map((s) => sizes[s]!), 2 ** 31 - 1);
      return [t.name, Int32Array.from({ length: n }, () => Math.floor(rand() * bound))];
    }
    return [t.name, Array.from({ length: n }, () => 0.2 + (rand() * 2 - 1))];
  }),
);
const douts = p.outputs.map((o) => Array.from({ length: length(shapeOf(p, p.steps.find((s) => s.name === o)!)) }, () => rand() * 2 - 1));

/** Inputs, dout, forward and preallocated gradients of one module; with `inMemory`, every array from its `alloc`. */
function setup(mod: Module, A: Float64ArrayConstructor | Float32ArrayConstructor, inMemory: boolean) {
  const total = [...Object.values(data), ...douts].reduce((a, v) => a + v.length, 0) + p.steps.reduce((a, s) => a + length(shapeOf(p, s)), 0);
  // everything allocated up front, with room for the calls' scratch: no later growth detaches a view
  if (inMemory) mod.reserveMemory!(total * 8 * 4);
  const make = (v: ArrayLike<number>, int: boolean) => {
    if (int) {
      const a = inMemory ? mod.allocInts!(v.length) : new Int32Array(v.length);
      a.set(v);
      return a;
    }
    const a = inMemory ? mod.alloc!(v.length) : new A(v.length);
    a.set(v);
    return a;
  };
  const inputs: Arrays = Object.fromEntries(p.inputs.map((t) => [t.name, make(data[t.name]!, t.kind === "int")]));
  const steps = inMemory ? Object.fromEntries(p.steps.map((s) => [s.name, mod.alloc!(length(shapeOf(p, s)))])) : undefined;
  const { cache } = mod.forward(inputs, given, undefined, steps);
  const d = douts.map((v) => make(v, false));
  const dout = p.outputs.length === 1 ? d[0]! : Object.fromEntries(p.outputs.map((o, k) => [o, d[k]!]));
  const into = Object.fromEntries(p.inputs.filter(isDifferentiable).map((t) => [`d${t.name}`, inMemory ? mod.alloc!(length(shapeOf(p, t))) : new A(length(shapeOf(p, t)))]));
  return () => mod.backwardFused(dout, cache, into);
}

/** Bytes the fused kernel streams at least once: dout, the cached arrays it reads, the gradients. */
function bytesMoved(code: string, bytes: number): number {
  const fused = code.slice(code.indexOf("export function backwardFused"));
  const body = fused.slice(0, fused.indexOf("\nfunction ") > 0 ? fused.indexOf("\nfunction ") : undefined);
  const read = new Set([...body.matchAll(/cache\.values\.([A-Za-z_$][\w$]*);/g)].map((m) => m[1]!));
  let n = douts.reduce((a, v) => a + v.length, 0);
  for (const t of [...p.inputs, ...p.steps]) if (read.has(t.name)) n += length(shapeOf(p, t)) * (t.kind === "int" ? 4 / bytes : 1);
  for (const t of p.inputs.filter(isDifferentiable)) n += length(shapeOf(p, t));
  return n * bytes;
}

const kernels = [
  ["ts f64", setup(ts, Float64Array, false)],
  ["wasm f64", setup(w64.mod, Float64Array, true)],
  ["wasm f32", setup(w32.mod, Float32Array, true)],
  ["wasm f32, copied", setup(w32.mod, Float32Array, false)],
] as const;
const samples: Record<string, number[]> = Object.fromEntries(kernels.map(([k]) => [k, []]));
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const budget = quick ? 300 : 4000;
const started = performance.now();
for (let round = 0; round < (quick ? 1 : 6) || (round < 200 && performance.now() - started < budget); round++) {
  for (const [kernel, fn] of kernels) {
    const bench = new Bench({ time: 10, iterations: 1, warmup: round === 0, warmupIterations: 5, retainSamples: true });
    bench.add(kernel, fn);
    await bench.run();
    const r = bench.tasks[0]!.result as { latency: { samples?: readonly number[] } };
    samples[kernel]!.push(...(r.latency.samples ?? []));
  }
}
const ms = Object.fromEntries(kernels.map(([k]) => [k, median(samples[k]!)]));
const gbs = (kernel: string, bytes: number) => Math.round((bytesMoved(kernel.includes("f32") ? w32.code : w64.code, bytes) / (ms[kernel]! * 1e6)) * 10) / 10;
process.stdout.write(
  `${JSON.stringify({
    ms,
    speedup: { "wasm f64": ms["ts f64"]! / ms["wasm f64"]!, "wasm f32": ms["ts f64"]! / ms["wasm f32"]!, "wasm f32, copied": ms["ts f64"]! / ms["wasm f32, copied"]! },
    gbs: { "ts f64": gbs("ts f64", 8), "wasm f64": gbs("wasm f64", 8), "wasm f32": gbs("wasm f32", 4) },
  })}\n`,
);
