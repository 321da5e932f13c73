import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "rmsnorm",
  description: "Root-mean-square layer normalization (Zhang & Sennrich 2019)",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]", "w[d]"],
  constants: { eps: 1e-6 },
  steps: [
    "ms[n] = mean(x[n,d]^2, d)",
    "rrms[n] = 1/sqrt(ms[n] + eps)",
    "y[n,d] = w[d] * x[n,d] * rrms[n]",
  ],
  output: "y",
});
