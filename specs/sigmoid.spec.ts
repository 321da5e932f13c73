import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "sigmoid",
  description: "Logistic sigmoid, elementwise",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  steps: ["s[n,d] = 1/(1 + exp(-x[n,d]))"],
  output: "s",
});
