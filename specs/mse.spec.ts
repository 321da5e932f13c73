import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "mse",
  description: "Mean squared error over all elements, a scalar loss",
  indices: { n: "N", d: "D" },
  inputs: ["y[n,d]", "t[n,d]"],
  steps: [
    "r[n,d] = y[n,d] - t[n,d]",
    "loss = sum(r[n,d]^2, n, d) / (N*D)",
  ],
  output: "loss",
});
