/**
 * The iris example (examples/iris/train.ts) trained side by side with the same network in
 * TensorFlow.js: same data, same initial weights, same SGD. The TensorFlow.js side gets its
 * gradients from its own autodiff (`tf.variableGrads`) through its own ops (`tf.moments`,
 * `tf.relu`, `tf.losses.softmaxCrossEntropy` against one-hot labels), so the two trainers share
 * nothing but the data and the starting point.
 */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { readFileSync } from "node:fs";
import { HIDDEN, RATE, STEPS, initialWeights, iris, lossCurve, train, type Weights } from "../examples/iris/train.js";

/** Trains in TensorFlow.js (float32) and returns the loss before each update and the final accuracy. */
function trainInTensorFlow(weights: Weights, steps: number, rate: number): { losses: number[]; accuracy: number } {
  const data = iris();
  const H = weights.b1.length;
  return tf.tidy(() => {
    const x = tf.tensor2d(Float32Array.from(data.x), [data.N, data.F]);
    const labels = tf.oneHot(tf.tensor1d(data.label, "int32"), data.C);
    // tf.variableGrads keys the gradients by variable name
    const variable = (t: tf.Tensor, name: string) => tf.variable(t, true, `iris-${name}`);
    const v = {
      w1: variable(tf.tensor2d(Float32Array.from(weights.w1), [data.F, H]), "w1"),
      b1: variable(tf.tensor1d(Float32Array.from(weights.b1)), "b1"),
      gamma: variable(tf.tensor1d(Float32Array.from(weights.gamma)), "gamma"),
      beta: variable(tf.tensor1d(Float32Array.from(weights.beta)), "beta"),
      w2: variable(tf.tensor2d(Float32Array.from(weights.w2), [H, data.C]), "w2"),
      b2: variable(tf.tensor1d(Float32Array.from(weights.b2)), "b2"),
    };
    const logitsOf = () => {
      const h = tf.add(tf.matMul(x, v.w1), v.b1);
      const { mean, variance } = tf.moments(h, 0);
      const bn = tf.add(tf.mul(v.gamma, tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5)))), v.beta);
      return tf.add(tf.matMul(tf.relu(bn), v.w2), v.b2);
    };
    const losses: number[] = [];
    for (let k = 0; k < steps; k++) {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, logitsOf()) as tf.Scalar);
      losses.push(value.dataSync()[0]!);
      for (const x of Object.values(v)) x.assign(tf.sub(x, tf.mul(grads[x.name]!, rate)));
    }
    const predicted = Array.from(tf.argMax(logitsOf(), 1).dataSync());
    const right = predicted.filter((c, n) => c === data.label[n]).length;
    for (const x of Object.values(v)) x.dispose();
    return { losses, accuracy: right / data.N };
  });
}

describe("examples/iris: a training loop of generated kernels against TensorFlow.js", () => {
  it("loses the same at every step and reaches the same accuracy", async () => {
    await tf.setBackend("cpu");
    const data = iris();
    const start = initialWeights(data.F, HIDDEN, data.C);
    const copy = (w: Weights): Weights => ({ w1: w.w1.slice(), b1: w.b1.slice(), gamma: w.gamma.slice(), beta: w.beta.slice(), w2: w.w2.slice(), b2: w.b2.slice() });
    const theirs = trainInTensorFlow(copy(start), STEPS, RATE);
    const ours = train(data, copy(start), STEPS, RATE);
    expect(ours.losses).toHaveLength(STEPS);
    // float32 (TensorFlow.js) against float64 (the generated kernels), after up to 200 updates
    console.log(`iris: loss ${ours.losses[0]!.toFixed(4)} -> ${ours.losses[STEPS - 1]!.toFixed(4)}, accuracy ${ours.accuracy} (TensorFlow.js ${theirs.accuracy})`);
    const worst = Math.max(...ours.losses.map((l, k) => Math.abs(l - theirs.losses[k]!) / Math.max(1, Math.abs(l))));
    console.log(`iris: largest relative difference of the losses ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
    // it learns: the loss falls by more than 5× and the species are told apart
    expect(ours.losses[STEPS - 1]!).toBeLessThan(ours.losses[0]! / 5);
    expect(ours.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(ours.accuracy).toBe(theirs.accuracy);
    // the picture in the README is this run's (npx tsx examples/iris/train.ts writes it)
    expect(readFileSync(new URL("../docs/iris-loss.svg", import.meta.url), "utf8")).toBe(lossCurve(ours.losses, data));
  });
});
