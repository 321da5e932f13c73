import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "tanh",
  description: "Hyperbolic tangent, elementwise",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  steps: ["y[n,d] = tanh(x[n,d])"],
  output: "y",
});
