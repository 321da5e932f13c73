/**
 * The specs and the interpreted gradients shared by the tests of issue 13's constructs
 * (layers.test.ts against finite differences and exact kinks, layers-tfjs.test.ts against
 * TensorFlow.js): each spec uses §4.1, §4.2, the gather of §4.3 or §4.4 of the contract.
 */
import { derive, type Derived } from "../compiler/driver.js";
import type { SpecObject } from "../compiler/parse/check.js";
import { gradKey } from "../compiler/ir/evaluate.js";
import { evaluateGradient, interpretBackward, interpretForward, type Tensors } from "../compiler/ir/interpret.js";
import { isDifferentiable, shapeOf, tensorOf, type Program } from "../compiler/ir/program.js";

export type Spec = Omit<SpecObject, "output"> & { output: string | readonly string[] };

export const SPECS: Record<string, Spec> = {
  relu: { name: "relu", indices: { n: "N", d: "D" }, inputs: ["x[n,d]"], steps: ["y[n,d] = relu(x[n,d])"], output: "y" },
  leaky: {
    name: "leaky",
    indices: { n: "N" },
    inputs: ["x[n]"],
    constants: { slope: 0.01 },
    steps: ["y[n] = where(x[n] > 0, x[n], slope*x[n])"],
    output: "y",
  },
  elu: { name: "elu", indices: { n: "N" }, inputs: ["x[n]"], steps: ["y[n] = where(x[n] > 0, x[n], expm1(x[n]))"], output: "y" },
  choices: {
    name: "choices",
    indices: { n: "N" },
    inputs: ["a[n]", "b[n]"],
    steps: ["y[n] = maximum(a[n], b[n]) * minimum(a[n], 2*b[n]) + abs(a[n] - b[n])", "z[n] = where(a[n] != b[n], log(abs(a[n] - b[n])), 0) + sign(a[n])*b[n]"],
    output: ["y", "z"],
  },
  huber: {
    name: "huber",
    indices: { n: "N", d: "D" },
    inputs: ["x[n,d]", "t[n,d]: nograd"],
    constants: { delta: 1 },
    steps: ["r[n,d] = x[n,d] - t[n,d]", "l[n,d] = where(abs(r[n,d]) <= delta, 0.5*r[n,d]^2, delta*(abs(r[n,d]) - 0.5*delta))", "loss = mean(l[n,d], n, d)"],
    output: "loss",
  },
  functions: {
    name: "functions",
    indices: { n: "N" },
    inputs: ["x[n]"],
    steps: ["y[n] = erf(x[n]) + log1p(x[n]^2) + expm1(x[n]/2) + softplus(3*x[n]) + 0.5*x[n]*(1 + erf(x[n]/sqrt(2)))"],
    output: "y",
  },
  maxmin: {
    name: "maxmin",
    indices: { n: "N", c: "C" },
    inputs: ["x[n,c]"],
    steps: ["m[n] = max(x[n,c], c)", "k[n] = min(x[n,c]^2, c)", "y[n] = m[n]*k[n] + max(x[n,c] - m[n], c)"],
    output: "y",
  },
  xent: {
    name: "xent",
    indices: { n: "N", c: "C" },
    inputs: ["z[n,c]", "label[n]: int"],
    steps: ["m[n] = stop(max(z[n,c], c))", "lse[n] = log(sum(exp(z[n,c] - m[n]), c)) + m[n]", "loss = mean(lse[n] - z[n, label[n]], n)"],
    output: "loss",
  },
  embedding: {
    name: "embedding",
    indices: { b: "B", s: "S", v: "V", d: "D" },
    inputs: ["E[v,d]", "ids[b,s]: int", "g[d]"],
    steps: ["h[b,s,d] = E[ids[b,s], d]", "mu[b,s] = mean(h[b,s,d], d)", "y[b,s,d] = g[d]*(h[b,s,d] - mu[b,s])"],
    output: "y",
  },
  dropout: {
    name: "dropout",
    indices: { n: "N", d: "D" },
    inputs: ["x[n,d]", "mask[n,d]: nograd"],
    constants: { p: 0.25 },
    steps: ["keep[n,d] = mask[n,d]/(1 - p)", "y[n,d] = x[n,d]*keep[n,d]"],
    output: "y",
  },
  cell: {
    name: "cell",
    indices: { n: "N", d: "D" },
    inputs: ["x[n,d]", "c0[n,d]", "w[d]"],
    steps: ["f[n,d] = sigmoid(w[d]*x[n,d])", "c[n,d] = f[n,d]*c0[n,d] + (1 - f[n,d])*tanh(x[n,d])", "h[n,d] = tanh(c[n,d])*relu(x[n,d] + 0.5)"],
    output: ["h", "c"],
  },
  // issue 13's library layers as people write them, each pre-activation a step
  mlp: {
    name: "mlp",
    indices: { n: "N", d: "D", h: "H", c: "C" },
    inputs: ["x[n,d]", "w1[d,h]", "b1[h]", "w2[h,c]", "b2[c]", "label[n]: int"],
    steps: [
      "a1[n,h] = sum(x[n,d]*w1[d,h], d) + b1[h]",
      "h1[n,h] = relu(a1[n,h])",
      "z[n,c] = sum(h1[n,h]*w2[h,c], h) + b2[c]",
      "m[n] = stop(max(z[n,c], c))",
      "lse[n] = log(sum(exp(z[n,c] - m[n]), c)) + m[n]",
      "loss = mean(lse[n] - z[n, label[n]], n)",
    ],
    output: "loss",
  },
  bnrelu: {
    name: "bnrelu",
    indices: { n: "N", d: "D" },
    inputs: ["x[n,d]", "gamma[d]", "beta[d]"],
    constants: { eps: 1e-5 },
    steps: ["mu[d] = mean(x[n,d], n)", "xmu[n,d] = x[n,d] - mu[d]", "var[d] = mean(xmu[n,d]^2, n)", "xhat[n,d] = xmu[n,d]/sqrt(var[d] + eps)", "y[n,d] = relu(gamma[d]*xhat[n,d] + beta[d])"],
    output: "y",
  },
  maskedsoftmax: {
    name: "maskedsoftmax",
    indices: { n: "N", c: "C" },
    inputs: ["z[n,c]", "mask[n,c]: nograd"],
    steps: ["zm[n,c] = where(mask[n,c] > 0, z[n,c], -1e9)", "m[n] = stop(max(zm[n,c], c))", "e[n,c] = exp(zm[n,c] - m[n])", "s[n] = sum(e[n,c], c)", "p[n,c] = e[n,c]/s[n]"],
    output: "p",
  },
  lstm: {
    name: "lstm",
    indices: { n: "N", d: "D", k: "K" },
    inputs: ["x[n,d]", "cp[n,k]", "wi[d,k]", "wf[d,k]", "wo[d,k]", "wg[d,k]"],
    steps: [
      "ai[n,k] = sum(x[n,d]*wi[d,k], d)",
      "af[n,k] = sum(x[n,d]*wf[d,k], d)",
      "ao[n,k] = sum(x[n,d]*wo[d,k], d)",
      "ag[n,k] = sum(x[n,d]*wg[d,k], d)",
      "i[n,k] = sigmoid(ai[n,k])",
      "f[n,k] = sigmoid(af[n,k])",
      "o[n,k] = sigmoid(ao[n,k])",
      "g[n,k] = tanh(ag[n,k])",
      "c[n,k] = f[n,k]*cp[n,k] + i[n,k]*g[n,k]",
      "h[n,k] = o[n,k]*tanh(c[n,k])",
    ],
    output: ["h", "c"],
  },
};

const derivations = new Map<string, Promise<Derived>>();
export function derived(key: keyof typeof SPECS): Promise<Derived> {
  let d = derivations.get(key);
  if (!d) derivations.set(key, (d = derive(SPECS[key])));
  return d;
}

export const constantsOf = (p: Program) => Object.fromEntries(p.constants.map((c) => [c.name, c.value]));
export const lengthOf = (p: Program, name: string, sizes: Record<string, number>) => shapeOf(p, tensorOf(p, name)).reduce((a, s) => a * sizes[s]!, 1);

/** The naive gradients and the fused ones, interpreted, for given inputs and upstream gradients. */
export function gradients(d: Derived, inputs: Record<string, Float64Array | Int32Array>, sizes: Record<string, number>, dout: Record<string, Float64Array>) {
  const p = d.program;
  const constants = constantsOf(p);
  const tensors = interpretForward(p, inputs, sizes, constants);
  const all: Tensors = interpretBackward(p, d.backward, tensors, sizes, constants, dout);
  // the size of the terms each naive element adds up: its rounding is a few ulps of it
  const terms = interpretBackward(p, d.backward, tensors, sizes, constants, dout, true);
  const naive = new Map<string, Float64Array>();
  const fused = new Map<string, Float64Array>();
  const noise = new Map<string, Float64Array>();
  p.inputs.forEach((t, k) => {
    if (!isDifferentiable(t)) return;
    naive.set(t.name, all.get(gradKey(t.name))!.data);
    noise.set(t.name, terms.get(gradKey(t.name))!.data);
    fused.set(t.name, evaluateGradient(p, d.fused.gradients[k]!, k, all, sizes, constants));
  });
  return { naive, fused, noise, tensors };
}

