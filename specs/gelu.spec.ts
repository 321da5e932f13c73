import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "gelu",
  description: "GELU, tanh approximation (Hendrycks & Gimpel 2016)",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  steps: [
    "u[n,d] = 0.7978845608028654 * (x[n,d] + 0.044715 * x[n,d]^3)",
    "t[n,d] = tanh(u[n,d])",
    "y[n,d] = 0.5 * x[n,d] * (1 + t[n,d])",
  ],
  output: "y",
});
