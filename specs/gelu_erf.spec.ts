import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "gelu_erf",
  description: "GELU, exact form x·Φ(x) with the error function (Hendrycks & Gimpel 2016)",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  steps: ["y[n,d] = 0.5 * x[n,d] * (1 + erf(x[n,d] / sqrt(2)))"],
  output: "y",
});
