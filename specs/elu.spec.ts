import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "elu",
  description: "Exponential linear unit (Clevert et al. 2016)",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  constants: { alpha: 1 },
  steps: ["y[n,d] = where(x[n,d] > 0, x[n,d], alpha * expm1(x[n,d]))"],
  output: "y",
});
