/**
 * `npm run bench`: times the generated kernels against a hand-written reference, TensorFlow.js and
 * a memory-streaming floor with tinybench, prints medians and ratios, and writes
 * docs/bench/results.json and docs/bench/batchnorm.svg.
 *
 * Every figure is a median after warm-up, float64, in one process on one machine. The batchnorm
 * variants (and each library spec's two kernels, in a process of their own) are timed in short
 * alternating rounds; TensorFlow.js, whose backends cannot alternate, over at least `MIN_RUNS` runs.
 * The results are ratios between variants measured in the same run. Absolute times depend on the
 * machine.
 */
import { Bench } from "tinybench";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import * as bn from "../generated/batchnorm.js";
import { batchnormBackwardByHand, streamingFloor, streamingFloorUnrolled } from "./reference.js";
import { chart } from "./chart.js";
import { prng } from "../compiler/ir/random.js";

const root = join(import.meta.dirname, "..");
const quick = process.argv.includes("--quick");
const MIN_RUNS = quick ? 3 : 10;
const TIME_MS = quick ? 50 : 400;

const filled = (n: number, rand: () => number, scale = 1, offset = 0) => Float64Array.from({ length: n }, () => offset + scale * (rand() * 2 - 1));

async function median(name: string, fn: () => unknown, opts: { slow?: boolean } = {}): Promise<number> {
  // collect the garbage of the previous task first, so that no task pays for another's allocations
  (globalThis as { gc?: () => void }).gc?.();
  const bench = new Bench({ time: opts.slow ? TIME_MS / 4 : TIME_MS, iterations: opts.slow ? Math.min(MIN_RUNS, 5) : MIN_RUNS, warmupIterations: opts.slow ? 1 : 5, warmupTime: opts.slow ? 0 : 50 });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0]!.result;
  if (!r || !("latency" in r)) throw new Error(`${name}: no result (${JSON.stringify(r)})`);
  return r.latency.p50;
}

/**
 * Medians of tasks timed in many short alternating rounds (a tinybench run of about 10 ms, or one
 * iteration, per task and round) for `budgetMs`: this machine has spells in which everything runs
 * about 3x slower for a second or more, and alternation makes them fall on every task alike.
 */
async function interleaved(tasks: readonly (readonly [string, () => unknown, { cold?: boolean }?])[], budgetMs: number): Promise<Record<string, number>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const samples = new Map<string, number[]>(tasks.map(([name]) => [name, []]));
  const started = performance.now();
  for (let round = 0; round < (quick ? 1 : 5) || performance.now() - started < budgetMs; round++) {
    for (const [name, fn, opts] of tasks) {
      // a cold task runs each call right after a full collection (not timed): its arrays are fresh pages
      const bench = new Bench({ time: opts?.cold ? 0 : quick ? 5 : 10, iterations: opts?.cold ? 2 : 1, warmup: round === 0, warmupIterations: 3, retainSamples: true });
      bench.add(name, fn, opts?.cold && gc ? { beforeEach: () => gc() } : {});
      await bench.run();
      const r = bench.tasks[0]!.result as { latency?: { samples?: readonly number[] } } | undefined;
      if (!r?.latency?.samples) throw new Error(`${name}: no result (${JSON.stringify(r)})`);
      samples.get(name)!.push(...r.latency.samples);
    }
  }
  return Object.fromEntries([...samples].map(([name, xs]) => [name, medianOf(xs)]));
}

function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function wasmBackend(): Promise<boolean> {
  try {
    await import("@tensorflow/tfjs-backend-wasm");
    return await tf.setBackend("wasm");
  } catch (e) {
    process.stderr.write(`TensorFlow.js WebAssembly backend unavailable: ${(e as Error).message}\n`);
    return false;
  }
}

interface Row {
  readonly size: string;
  readonly N: number;
  readonly D: number;
  readonly ms: Record<string, number>;
}

const SIZES: [number, number][] = [
  [64, 64],
  [256, 256],
  [1024, 1024],
  [4096, 256],
  [256, 4096],
];

async function batchnormRows(): Promise<Row[]> {
  const rows: Row[] = [];
  const haveWasm = await wasmBackend();
  for (const [N, D] of SIZES) {
    const rand = prng(N * 7919 + D);
    const inputs = { x: filled(N * D, rand, 2, 0.5), gamma: filled(D, rand, 0.5, 1), beta: filled(D, rand) };
    const { cache } = bn.forward(inputs, { N, D });
    const dout = filled(N * D, rand);
    const into = { dx: new Float64Array(N * D), dgamma: new Float64Array(D), dbeta: new Float64Array(D) };
    const scratch = [new Float64Array(D), new Float64Array(D), new Float64Array(D)] as const;
    const big = N * D >= 1 << 20;
    // the generated kernels, the hand-written loop and the floors alternate (see `interleaved`)
    const ms: Record<string, number> = await interleaved(
      [
        ["hand-written", () => batchnormBackwardByHand(N, D, dout, cache.values.xhat, cache.values.gamma, cache.values.ivar, into.dx, into.dgamma, into.dbeta, ...scratch)],
        ["fused, preallocated", () => bn.backwardFused(dout, cache, into)],
        ["fused", () => bn.backwardFused(dout, cache)],
        ["naive", () => bn.backwardNaive(dout, cache)],
        ["naive, preallocated", () => bn.backwardNaive(dout, cache, into)],
        ["streaming floor", () => streamingFloor(N, D, dout, cache.values.xhat, into.dx, scratch[0], scratch[1])],
        ["streaming floor, unrolled", () => streamingFloorUnrolled(N, D, dout, cache.values.xhat, into.dx, scratch[0])],
      ],
      quick ? 200 : big ? 10000 : 4000,
    );
    // on its own: the collections it runs would hand every other variant fresh pages to fault in
    Object.assign(ms, await interleaved([["naive, after a collection", () => bn.backwardNaive(dout, cache), { cold: true }]], quick ? 100 : big ? 3000 : 1000));
    for (const backend of ["cpu", ...(haveWasm ? ["wasm"] : [])]) {
      await tf.setBackend(backend);
      const x = tf.tensor2d(Float32Array.from(inputs.x), [N, D]);
      const gamma = tf.tensor1d(Float32Array.from(inputs.gamma));
      const beta = tf.tensor1d(Float32Array.from(inputs.beta));
      const dy = tf.tensor2d(Float32Array.from(dout), [N, D]);
      const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const mu = tf.mean(xx, 0);
        const xmu = tf.sub(xx, mu);
        const v = tf.mean(tf.square(xmu), 0);
        return tf.add(tf.mul(g, tf.div(xmu, tf.sqrt(tf.add(v, 1e-5)))), b);
      };
      const grads = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor);
      ms[`TensorFlow.js ${backend}`] = await median(
        `tfjs-${backend}`,
        () => {
          tf.engine().startScope();
          const gs = grads([x, gamma, beta], dy);
          for (const g of gs) g.dataSync();
          tf.engine().endScope();
        },
        { slow: true },
      );
      tf.dispose([x, gamma, beta, dy]);
    }
    await tf.setBackend("cpu");
    rows.push({ size: `${N}×${D}`, N, D, ms });
    process.stderr.write(`batchnorm ${N}×${D} done\n`);
  }
  return rows;
}

/** Every library spec in specs/, at sizes chosen per spec where its inputs take at least 1 MiB. */
const square = { N: 512, D: 512 };
const rows = { N: 512, C: 512 };
const recurrent = { B: 64, I: 256, K: 256 };
const LIBRARY_SIZES: Record<string, Record<string, number>> = {
  batchnorm: square,
  layernorm: square,
  rmsnorm: square,
  instancenorm: { B: 8, C: 64, S: 256 },
  groupnorm: { B: 8, G: 8, C: 8, S: 256 },
  l2normalize: square,
  cosine: square,
  softmax: rows,
  logsoftmax: rows,
  softmax_xent: rows,
  mse: square,
  sigmoid: square,
  tanh: square,
  softplus: square,
  gelu: square,
  swish: square,
  linear: { N: 256, D: 512, K: 256 },
  attention: { L: 512, E: 128, F: 128 },
  relu: square,
  leaky_relu: square,
  elu: square,
  gelu_erf: square,
  huber: square,
  dropout: square,
  bn_relu: square,
  masked_softmax: rows,
  cross_entropy: rows,
  embedding_layernorm: { B: 8, S: 64, V: 1024, D: 128 },
  mlp: { N: 256, F: 256, H: 256, C: 64 },
  gru: recurrent,
  lstm: recurrent,
  // convolution and pooling at CIFAR-like sizes (bench/conv.ts times conv2d and conv_bn_relu at
  // the issue's N=8, C=O=32, 32x32 against TensorFlow.js)
  conv1d: { N: 8, C: 32, O: 32, L: 512, K: 3 },
  dilated_conv1d: { N: 8, C: 32, O: 32, L: 512, K: 3 },
  conv2d: { N: 8, C: 32, O: 32, H: 32, W: 32, K: 3 },
  depthwise_conv2d: { N: 8, C: 32, H: 32, W: 32, K: 3 },
  avgpool2d: { N: 8, C: 32, H: 32, W: 32 },
  maxpool2d: { N: 8, C: 32, H: 32, W: 32 },
  conv_bn_relu: { N: 8, C: 16, O: 16, H: 32, W: 32, K: 3 },
};

/** Fused against naive for other library specs, at a size where the inputs take at least 1 MiB. */
async function librarySpecs(): Promise<SpecRow[]> {
  const names = readdirSync(join(root, "specs"))
    .filter((f) => f.endsWith(".spec.ts"))
    .map((f) => f.slice(0, -".spec.ts".length))
    .sort();
  const missing = names.filter((n) => LIBRARY_SIZES[n] === undefined);
  if (missing.length) throw new Error(`bench: no sizes for ${missing.join(", ")} (add them to LIBRARY_SIZES in bench/run.ts)`);
  return timeSpecs(names.map((n): [string, Record<string, number>] => [n, LIBRARY_SIZES[n]!]));
}

/**
 * The specs of the tests (test/layers-cases.ts: issue 13's constructs as the tests write them),
 * timed the same way, as `test:<key>`: issue 13's target holds for them too.
 */
async function testSpecs(): Promise<SpecRow[]> {
  const { SPECS } = await import("../test/layers-cases.js");
  const square = { N: 512, D: 512 };
  const rows = { N: 512, C: 512 };
  const flat = { N: 262144 };
  const SIZES: Record<string, Record<string, number>> = {
    relu: square,
    leaky: flat,
    elu: flat,
    choices: flat,
    huber: square,
    functions: flat,
    maxmin: rows,
    xent: rows,
    embedding: { B: 8, S: 64, V: 1024, D: 128 },
    dropout: square,
    cell: square,
    mlp: { N: 256, D: 256, H: 256, C: 64 },
    bnrelu: square,
    maskedsoftmax: rows,
    lstm: { N: 64, D: 256, K: 256 },
  };
  const missing = Object.keys(SPECS).filter((k) => SIZES[k] === undefined);
  if (missing.length) throw new Error(`bench: no sizes for the test specs ${missing.join(", ")} (add them to SIZES in testSpecs, bench/run.ts)`);
  return timeSpecs(Object.keys(SPECS).map((k): [string, Record<string, number>] => [`test:${k}`, SIZES[k]!]));
}

interface SpecRow {
  readonly spec: string;
  readonly sizes: Record<string, number>;
  readonly inputMiB: number;
  readonly naive: number;
  readonly fused: number;
  readonly ratio: number;
  /** Temporaries of the naive kernel as large as the largest input (`stats`): what fusing can lose. */
  readonly naiveLargeTemporaries: number;
}

/** Each spec's naive and fused kernels timed in a fresh process (bench/spec-timing.ts), with the naive kernel's large temporaries. */
async function timeSpecs(cases: readonly [string, Record<string, number>][]): Promise<SpecRow[]> {
  const { stats } = await import("../compiler/api.js");
  const { SPECS } = await import("../test/layers-cases.js");
  const out: SpecRow[] = [];
  for (const [name, sizes] of cases) {
    // each spec in a fresh process: a long-lived process full of other kernels times them unevenly
    const r = spawnSync("node", ["--expose-gc", "--import", "tsx", join(root, "bench/spec-timing.ts"), name, JSON.stringify(sizes), ...(quick ? ["--quick"] : [])], { cwd: root, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
    const t = JSON.parse(r.stdout) as { naive: number; fused: number; ratio: number; inputMiB: number };
    const spec = name.startsWith("test:") ? SPECS[name.slice("test:".length)] : ((await import(join(root, "specs", `${name}.spec.ts`))) as { default: unknown }).default;
    const naiveLargeTemporaries = (await stats(spec)).naive.largeTemporaries;
    out.push({ spec: name, sizes, inputMiB: t.inputMiB, naive: t.naive, fused: t.fused, ratio: t.ratio, naiveLargeTemporaries });
    process.stderr.write(`${name} done\n`);
  }
  return out;
}

/**
 * The WebAssembly rows (`--target wasm`, bench/wasm-timing.ts), for every library spec (issue 17's
 * nine at its sizes first, then the others at the sizes of the naive/fused table): each fused
 * kernel as TS float64, wasm float64 and float32 (arrays from `alloc`, in place) and wasm float32
 * given ordinary arrays (copied in and out), in a fresh process each; ms, speed-up over TS
 * float64, GB/s.
 */
function wasmSpecs(): { spec: string; sizes: Record<string, number>; ms: Record<string, number>; speedup: Record<string, number>; gbs: Record<string, number> }[] {
  const square = { N: 512, D: 512 };
  const CASES: [string, Record<string, number>][] = [
    ["batchnorm", { N: 1024, D: 1024 }],
    ["layernorm", { N: 1024, D: 1024 }],
    ["rmsnorm", square],
    ["softmax", { N: 512, C: 512 }],
    ["gelu", square],
    ["relu", square],
    ["mse", square],
    ["linear", { N: 256, D: 512, K: 256 }],
    ["attention", { L: 512, E: 64, F: 64 }],
  ];
  // then every other library spec, at the sizes of the naive/fused table
  const named = new Set(CASES.map(([n]) => n));
  for (const n of Object.keys(LIBRARY_SIZES).sort()) if (!named.has(n)) CASES.push([n, LIBRARY_SIZES[n]!]);
  const out = [];
  for (const [name, sizes] of CASES) {
    const r = spawnSync("node", ["--import", "tsx", join(root, "bench/wasm-timing.ts"), name, JSON.stringify(sizes), ...(quick ? ["--quick"] : [])], { cwd: root, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${name} (wasm): ${r.stderr}`);
    out.push({ spec: name, sizes, ...(JSON.parse(r.stdout) as { ms: Record<string, number>; speedup: Record<string, number>; gbs: Record<string, number> }) });
    process.stderr.write(`${name} (wasm) done\n`);
  }
  return out;
}

/** The WebAssembly rows as a Markdown table. */
function wasmTable(rows: ReturnType<typeof wasmSpecs>): string[] {
  const lines = ["fused backward as WebAssembly (`--target wasm`) beside TypeScript float64 (median ms, alternating rounds; × = speed-up over TS float64; GB/s = dout, cached arrays read and gradients, once each, over the time):", ""];
  lines.push("| spec | sizes | TS f64 | wasm f64 | wasm f32 | wasm f32, copied | GB/s TS f64 / wasm f64 / wasm f32 |");
  lines.push("| --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows)
    lines.push(
      `| ${r.spec} | ${Object.entries(r.sizes).map(([k, v]) => `${k}=${v}`).join(" ")} | ${fmt(r.ms["ts f64"]!)} | ${fmt(r.ms["wasm f64"]!)} (${r.speedup["wasm f64"]!.toFixed(2)}×) | ${fmt(r.ms["wasm f32"]!)} (${r.speedup["wasm f32"]!.toFixed(2)}×) | ${fmt(r.ms["wasm f32, copied"]!)} (${r.speedup["wasm f32, copied"]!.toFixed(2)}×) | ${r.gbs["ts f64"]} / ${r.gbs["wasm f64"]} / ${r.gbs["wasm f32"]} |`,
    );
  return lines;
}

/**
 * Below the wasm table: GFLOP/s of the wasm float32 kernels of linear and attention (the
 * multiply-adds of their matmuls, two flops each) and their peer, TensorFlow.js's WebAssembly
 * backend running the hand-written backward with explicit transposes (bench/tfjs-matmul.ts).
 */
function matmulPeerLines(rows: ReturnType<typeof wasmSpecs>): string[] {
  const flops: Record<string, (s: Record<string, number>) => number> = {
    linear: (s) => 2 * 2 * s.N! * s.D! * s.K!,
    attention: (s) => 2 * (2 * s.L! * s.L! * s.F! + 2 * s.L! * s.L! * s.E!),
  };
  const lines = [""];
  for (const r of rows) if (flops[r.spec]) lines.push(`- ${r.spec}, wasm f32: ${fmt(r.ms["wasm f32"]!)} ms, ${(flops[r.spec]!(r.sizes) / (r.ms["wasm f32"]! * 1e6)).toFixed(1)} GFLOP/s`);
  const peer = spawnSync("node", ["--import", "tsx", join(root, "bench/tfjs-matmul.ts"), ...(quick ? ["--quick"] : [])], { cwd: root, encoding: "utf8" });
  if (peer.status !== 0) lines.push(`- TensorFlow.js wasm, hand-written backward: unavailable (${peer.stderr.trim().split("\n")[0]})`);
  else
    for (const l of peer.stdout.trim().split("\n")) {
      const t = JSON.parse(l) as { layer: string; ms: number; gflops: number };
      lines.push(`- TensorFlow.js wasm, hand-written backward (${t.layer.includes("flags") ? t.layer.replace(/^[^,]*, /, "") : "explicit transposes"}), ${t.layer.replace(/,.*$/, "")}: ${fmt(t.ms)} ms, ${t.gflops.toFixed(1)} GFLOP/s`);
    }
  return lines;
}

function codegenSeconds(): number {
  const t = performance.now();
  // --check compiles everything and writes nothing; whether the tree is stale does not matter here
  spawnSync("node", [join(root, "bin/backpass.js"), "codegen", "--check"], { cwd: root, stdio: "pipe" });
  return (performance.now() - t) / 1000;
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

async function main(): Promise<void> {
  if (process.argv.includes("--wasm-only")) {
    const rows = wasmSpecs();
    process.stdout.write(`${[...wasmTable(rows), ...matmulPeerLines(rows)].join("\n")}\n`);
    return;
  }
  if (process.argv.includes("--specs-only")) {
    for (const l of [...(await librarySpecs()), ...(await testSpecs())]) process.stdout.write(`${l.spec} naive ${fmt(l.naive)} fused ${fmt(l.fused)} ratio ${l.ratio.toFixed(2)} naive large temporaries ${l.naiveLargeTemporaries}\n`);
    return;
  }
  const rows = await batchnormRows();
  const variants = Object.keys(rows[0]!.ms);
  const lines: string[] = [];
  lines.push(`batchnorm backward, float64, median ms (ratio to hand-written); ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`);
  lines.push("");
  lines.push(`| variant | ${rows.map((r) => r.size).join(" | ")} |`);
  lines.push(`| --- | ${rows.map(() => "---").join(" | ")} |`);
  for (const v of variants) lines.push(`| ${v} | ${rows.map((r) => (r.ms[v] === undefined ? "–" : `${fmt(r.ms[v]!)} (${(r.ms[v]! / r.ms["hand-written"]!).toFixed(2)}×)`)).join(" | ")} |`);
  const at1024 = rows.find((r) => r.N === 1024 && r.D === 1024)!.ms;
  const targets = [
    ["fused, preallocated ≤ 1.10 × hand-written (worst size)", Math.max(...rows.map((r) => r.ms["fused, preallocated"]! / r.ms["hand-written"]!)), 1.1, "≤"],
    ["fused, preallocated ≤ 1.35 × streaming floor at 1024²", at1024["fused, preallocated"]! / at1024["streaming floor"]!, 1.35, "≤"],
    ["(for information) fused, preallocated / unrolled streaming floor at 1024²", at1024["fused, preallocated"]! / at1024["streaming floor, unrolled"]!, Infinity, "≤"],
    // the naive kernel allocates a fresh array per step: how long that takes depends on whether the
    // allocator hands back the pages the last call freed (warm) or new ones (after a collection)
    ["naive / fused ≥ 12 at 1024² (allocator warm)", at1024["naive"]! / at1024["fused"]!, 12, "≥"],
    ["naive / fused ≥ 12 at 1024² (naive after a collection: fresh pages)", at1024["naive, after a collection"]! / at1024["fused"]!, 12, "≥"],
    ["TensorFlow.js cpu / fused ≥ 100 at 1024²", at1024["TensorFlow.js cpu"]! / at1024["fused"]!, 100, "≥"],
    ...(at1024["TensorFlow.js wasm"] !== undefined ? [["TensorFlow.js wasm / fused ≥ 10 at 1024²", at1024["TensorFlow.js wasm"]! / at1024["fused"]!, 10, "≥"] as const] : []),
  ] as const;
  lines.push("");
  lines.push("| target | measured | met |");
  lines.push("| --- | --- | --- |");
  for (const [what, value, bound, op] of targets) lines.push(`| ${what} | ${value.toFixed(2)} | ${(op === "≤" ? value <= bound : value >= bound) ? "yes" : "**no**"} |`);

  const lib = [...(await librarySpecs()), ...(await testSpecs())];
  lines.push("");
  lines.push("every library spec, then every spec of the tests (`test:`, test/layers-cases.ts), fused against naive (median ms over many short alternating rounds; absolute times move with the machine's slow spells, the ratio much less; large temporaries: the naive kernel's, from `stats`):");
  lines.push("");
  lines.push("| spec | sizes | inputs MiB | naive | fused | naive / fused | naive's large temporaries |");
  lines.push("| --- | --- | --- | --- | --- | --- | --- |");
  for (const l of lib) lines.push(`| ${l.spec} | ${Object.entries(l.sizes).map(([k, v]) => `${k}=${v}`).join(" ")} | ${l.inputMiB} | ${fmt(l.naive)} | ${fmt(l.fused)} | ${l.ratio.toFixed(2)} | ${l.naiveLargeTemporaries} |`);
  const slower = lib.filter((l) => l.ratio < 0.95);
  const withTemporaries = lib.filter((l) => l.naiveLargeTemporaries > 0);
  const under2 = withTemporaries.filter((l) => l.ratio < 2);
  const listed = (ls: readonly SpecRow[]) => ls.map((l) => `${l.spec} (${l.ratio.toFixed(2)})`).join(", ");
  lines.push("");
  lines.push(`target fused never slower than naive (naive / fused ≥ 0.95, for noise) for every spec: ${slower.length === 0 ? "met" : `**not met** for ${listed(slower)}`}`);
  lines.push("");
  lines.push(`target naive / fused ≥ 2 for the ${withTemporaries.length} specs whose naive kernel has large temporaries to lose: ${under2.length === 0 ? "met" : `**not met** for ${listed(under2)}`}`);
  const wasm = wasmSpecs();
  lines.push("");
  lines.push(...wasmTable(wasm), ...matmulPeerLines(wasm));
  const codegen = codegenSeconds();
  lines.push("");
  lines.push(`npm run codegen -- --check (whole library, both dtypes, including Node start-up): ${codegen.toFixed(2)} s`);
  const text = lines.join("\n");
  process.stdout.write(`${text}\n`);

  const dir = join(root, "docs/bench");
  mkdirSync(dir, { recursive: true });
  const meta = { date: new Date().toISOString().slice(0, 10), node: process.version, cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, quick };
  writeFileSync(join(dir, "results.json"), `${JSON.stringify({ meta, batchnorm: rows, specs: lib, wasm, codegenSeconds: codegen }, null, 2)}\n`);
  writeFileSync(join(dir, "results.md"), `${text}\n`);
  writeFileSync(
    join(dir, "batchnorm.svg"),
    chart(
      "batchnorm backward, float64: median time against size",
      rows.map((r) => ({ label: r.size, x: r.N * r.D })),
      variants.map((v) => ({ name: v, values: rows.map((r) => r.ms[v]) })),
    ),
  );
  process.stderr.write(`wrote docs/bench/results.json, results.md, batchnorm.svg\n`);
}

await main();
