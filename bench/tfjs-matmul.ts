/**
 * The peer of the wasm rows for linear and attention (issue 17): TensorFlow.js's WebAssembly
 * backend running the backward written by hand, float32, each transposed operand made by an
 * explicit `tf.transpose` first (with `matMul`'s transpose flags instead, TensorFlow.js 4 leaves
 * XNNPACK's path: about 1 GFLOP/s here, 130-160 ms, the "flags" rows), so every matmul is a plain one:
 * `node --import tsx bench/tfjs-matmul.ts [--quick]`. Prints median and 10th-percentile ms and GFLOP/s (the
 * multiply-adds of the matmuls, two flops each) as JSON, one line per layer.
 *
 * - linear (N=256, D=512, K=256): dx = dy wᵀ, dw = xᵀ dy, db = the column sums of dy;
 * - attention, one head (L=512, E=F=64), from the forward's p = softmax(q kᵀ / sqrt(E)):
 *   dv = pᵀ do, dp = do vᵀ, ds = p (dp - rowsum(dp p)) / sqrt(E), dq = ds k, dk = dsᵀ q.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

const quick = process.argv.includes("--quick");
if (!(await tf.setBackend("wasm"))) throw new Error("TensorFlow.js WebAssembly backend unavailable");
await tf.ready();

let seed = 5;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const tensor = (...shape: [number, number]): tf.Tensor2D => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand), shape, "float32") as tf.Tensor2D;

/** Median and 10th-percentile ms of `fn` (its results read and disposed), after a warm-up, over about 4 s. */
function time(fn: () => tf.Tensor[]): { ms: number; p10: number } {
  for (let k = 0; k < 5; k++) tf.dispose(fn());
  const xs: number[] = [];
  const started = performance.now();
  while (xs.length < 10 || (performance.now() - started < (quick ? 300 : 4000) && xs.length < 2000)) {
    const t0 = performance.now();
    const out = fn();
    for (const o of out) o.dataSync();
    xs.push(performance.now() - t0);
    tf.dispose(out);
  }
  xs.sort((a, b) => a - b);
  return { ms: xs[Math.floor(xs.length / 2)]!, p10: xs[Math.floor(xs.length / 10)]! };
}

{
  const [N, D, K] = [256, 512, 256];
  const x = tensor(N, D);
  const w = tensor(D, K);
  const dy = tensor(N, K);
  const flops = 2 * 2 * N * D * K;
  const t = time(() => tf.tidy(() => [tf.matMul(dy, tf.transpose(w)), tf.matMul(tf.transpose(x), dy), tf.sum(dy, 0)]));
  process.stdout.write(`${JSON.stringify({ layer: "linear", sizes: { N, D, K }, ...t, gflops: flops / (t.ms * 1e6) })}\n`);
  if (!quick) {
    const flags = time(() => [tf.matMul(dy, w, false, true), tf.matMul(x, dy, true, false), tf.sum(dy, 0)]);
    process.stdout.write(`${JSON.stringify({ layer: "linear, transpose flags", sizes: { N, D, K }, ...flags, gflops: flops / (flags.ms * 1e6) })}\n`);
  }
}
{
  const [L, E, F] = [512, 64, 64];
  const q = tensor(L, E);
  const k = tensor(L, E);
  const v = tensor(L, F);
  const dout = tensor(L, F);
  const p: tf.Tensor2D = tf.softmax(tf.div(tf.matMul(q, k, false, true), Math.sqrt(E)));
  const flops = 2 * (2 * L * L * F + 2 * L * L * E);
  const backward = (mm: (a: tf.Tensor2D, b: tf.Tensor2D, ta: boolean, tb: boolean) => tf.Tensor2D) => () =>
    tf.tidy(() => {
      const dv = mm(p, dout, true, false);
      const dp = mm(dout, v, false, true);
      const ds = tf.div(tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), 1, true))), Math.sqrt(E)) as tf.Tensor2D;
      return [mm(ds, k, false, false), mm(ds, q, true, false), dv];
    });
  const explicit = (a: tf.Tensor2D, b: tf.Tensor2D, ta: boolean, tb: boolean) => tf.matMul(ta ? tf.transpose(a) : a, tb ? tf.transpose(b) : b) as tf.Tensor2D;
  const t = time(backward(explicit));
  process.stdout.write(`${JSON.stringify({ layer: "attention", sizes: { L, E, F }, ...t, gflops: flops / (t.ms * 1e6) })}\n`);
  if (!quick) {
    const flags = time(backward((a, b, ta, tb) => tf.matMul(a, b, ta, tb) as tf.Tensor2D));
    process.stdout.write(`${JSON.stringify({ layer: "attention, transpose flags", sizes: { L, E, F }, ...flags, gflops: flops / (flags.ms * 1e6) })}\n`);
  }
}
