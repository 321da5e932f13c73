import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "cross_entropy",
  description: "Mean cross-entropy of softmax(z) against class labels, a scalar loss",
  indices: { n: "N", c: "C" },
  inputs: ["z[n,c]", "label[n]: int"],
  steps: [
    "m[n] = max(z[n,c], c)",
    "lse[n] = log(sum(exp(z[n,c] - stop(m[n])), c)) + stop(m[n])",
    "loss = sum(lse[n] - z[n, label[n]], n) / N",
  ],
  output: "loss",
});
