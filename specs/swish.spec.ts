import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "swish",
  description: "Swish / SiLU, x * sigmoid(x) (Ramachandran et al. 2017)",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  steps: ["s[n,d] = 1/(1 + exp(-x[n,d]))", "y[n,d] = x[n,d] * s[n,d]"],
  output: "y",
});
