import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "bn_relu",
  description: "Batch normalization (training mode) followed by relu",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]", "gamma[d]", "beta[d]"],
  constants: { eps: 1e-5 },
  steps: [
    "mu[d] = mean(x[n,d], n)",
    "xmu[n,d] = x[n,d] - mu[d]",
    "var[d] = mean(xmu[n,d]^2, n)",
    "rstd[d] = 1/sqrt(var[d] + eps)",
    "xhat[n,d] = xmu[n,d] * rstd[d]",
    "out[n,d] = gamma[d] * xhat[n,d] + beta[d]",
    "y[n,d] = relu(out[n,d])",
  ],
  output: "y",
});
