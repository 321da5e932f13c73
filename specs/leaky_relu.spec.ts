import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "leaky_relu",
  description: "Leaky rectified linear unit (Maas et al. 2013); at 0 the slope of the negative side, as in PyTorch",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]"],
  constants: { slope: 0.01 },
  steps: ["y[n,d] = where(x[n,d] > 0, x[n,d], slope * x[n,d])"],
  output: "y",
});
