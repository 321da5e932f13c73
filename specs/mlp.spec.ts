import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "mlp",
  description: "Two-layer perceptron with relu and mean cross-entropy against class labels, each pre-activation its own step",
  indices: { n: "N", f: "F", h: "H", c: "C" },
  inputs: ["x[n,f]", "w1[f,h]", "b1[h]", "w2[h,c]", "b2[c]", "label[n]: int"],
  steps: [
    "a[n,h] = sum(x[n,f] * w1[f,h], f) + b1[h]",
    "r[n,h] = relu(a[n,h])",
    "z[n,c] = sum(r[n,h] * w2[h,c], h) + b2[c]",
    "m[n] = max(z[n,c], c)",
    "lse[n] = log(sum(exp(z[n,c] - stop(m[n])), c)) + stop(m[n])",
    "loss = sum(lse[n] - z[n, label[n]], n) / N",
  ],
  output: "loss",
});
