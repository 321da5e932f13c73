import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "softplus",
  description: "Softplus log(1 + exp(x)), elementwise, written as max(x, 0) + log(1 + exp(-|x|)) so exp never overflows",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  steps: ["y[n,d] = (x[n,d] + abs(x[n,d]))/2 + log(1 + exp(-abs(x[n,d])))"],
  output: "y",
});
