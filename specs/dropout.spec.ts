import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "dropout",
  description: "Inverted dropout with a given keep mask (0 or 1, no gradient) and drop probability p",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]", "mask[n,d]: nograd"],
  constants: { p: 0.5 },
  steps: ["y[n,d] = x[n,d] * mask[n,d] / (1 - p)"],
  output: "y",
});
