import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "softplus",
  description: "Softplus log(1 + exp(x)), elementwise",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  steps: ["y[n,d] = log(1 + exp(x[n,d]))"],
  output: "y",
});
