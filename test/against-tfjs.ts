/**
 * One layer's generated kernels against TensorFlow.js's autodiff of the same forward written with
 * tfjs ops (float32): the inputs and `dout` are float32-exact, tfjs's gradients are taken with
 * `tf.grads`, and both backward kernels must agree with them within float32 rounding. Used by
 * tfjs.test.ts (the library's dense layers) and conv.test.ts (convolution and pooling).
 */
import { expect } from "vitest";
import * as tf from "@tensorflow/tfjs";
import type { Program } from "../compiler/ir/program.js";
import { gradientNoise, lengthOf, type Kernels } from "./harness.js";

export interface TfjsLayer {
  /** The forward with tfjs ops, one tensor per input of the spec in its order. */
  readonly f: (...xs: tf.Tensor[]) => tf.Tensor;
  /** The tensor shape of each input, in the spec's order. */
  readonly shapes: readonly number[][];
}

/**
 * Both kernels of `mod` against tfjs's gradients of `layer.f` at `sizes` (every size, computed extents
 * included; `callSizes`, what forward is given, defaults to them). With `forward`, the outputs are
 * compared first. `label` names the case in a failure.
 */
export function againstTfjs(p: Program, mod: Kernels, layer: TfjsLayer, sizes: Record<string, number>, rand: () => number, opts: { readonly callSizes?: Record<string, number>; readonly forward?: boolean; readonly label?: string } = {}): void {
  const f32 = (n: number, scale: number) => Float64Array.from(Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale));
  const inputs = Object.fromEntries(p.inputs.map((t) => [t.name, f32(lengthOf(p, t.name, sizes), 2)]));
  const { cache, ...outs } = mod.forward(inputs, opts.callSizes ?? sizes);
  const out = outs[p.output] as Float64Array;
  const dout = f32(out.length, 1);
  tf.engine().startScope();
  const xs = p.inputs.map((t, k) => tf.tensor(Float32Array.from(inputs[t.name]!), layer.shapes[k]!));
  const y = layer.f(...xs);
  if (opts.forward) {
    // the forward passes agree first (the same layer, the same layout)
    expect(y.shape.reduce((a, b) => a * b, 1), "output length").toBe(out.length);
    const yv = y.dataSync();
    let yerr = 0;
    let yscale = 1e-30;
    for (let i = 0; i < out.length; i++) {
      yerr = Math.max(yerr, Math.abs(out[i]! - yv[i]!));
      yscale = Math.max(yscale, Math.abs(out[i]!));
    }
    expect(yerr / yscale, "forward against tfjs").toBeLessThan(1e-5);
  }
  const want = tf.grads(layer.f)(xs, tf.tensor(Float32Array.from(dout), y.shape)).map((t) => Float64Array.from(t.dataSync()));
  tf.engine().endScope();
  const noise = gradientNoise(p, inputs, sizes, dout);
  // float32 carries 24 bits: each gradient is held to 1e-4 of the layer's largest gradient (a
  // gradient that is exactly 0, softmax with one class, at the scale of dout), after forgiving
  // float32 rounding of terms that cancel (layernorm rows of almost equal values) up to 64 float32
  // ulps of the size of those terms
  let scale = 1e-3 * dout.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (const w of want) for (const v of w) scale = Math.max(scale, Math.abs(v));
  for (const kernel of [mod.backwardNaive, mod.backwardFused]) {
    const got = kernel(dout, cache);
    p.inputs.forEach((t, k) => {
      const a = got[`d${t.name}`]!;
      const b = want[k]!;
      const terms = noise.get(t.name)!;
      let err = 0;
      for (let i = 0; i < a.length; i++) err = Math.max(err, Math.max(0, Math.abs(a[i]! - b[i]!) - 64 * 2 ** -23 * terms[i]!));
      expect(a.length).toBe(b.length);
      expect(err / scale, `d${t.name}${opts.label ? ` (${opts.label})` : ""}`).toBeLessThan(1e-4);
    });
  }
}
