import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "linear",
  description: "Fully connected layer y = x W + b",
  indices: { n: "N", d: "D", k: "K" },
  inputs: ["x[n,d]", "w[d,k]", "b[k]"],
  steps: ["y[n,k] = sum(x[n,d]*w[d,k], d) + b[k]"],
  output: "y",
});
