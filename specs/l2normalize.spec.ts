import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "l2normalize",
  description: "Rows scaled to unit Euclidean norm, y = x / sqrt(sum x^2 + eps)",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  constants: { eps: 1e-12 },
  steps: [
    "ss[n] = sum(x[n,d]^2, d)",
    "rnorm[n] = 1/sqrt(ss[n] + eps)",
    "y[n,d] = x[n,d] * rnorm[n]",
  ],
  output: "y",
});
