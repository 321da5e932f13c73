import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "relu",
  description: "Rectified linear unit, relu'(0) = 0 as in PyTorch",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  steps: ["y[n,d] = relu(x[n,d])"],
  output: "y",
});
