import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "instancenorm",
  description: "Instance normalization over the spatial axis s, per sample and channel (Ulyanov et al. 2016)",
  indices: { b: "B", c: "C", s: "S" },
  inputs: ["x[b,c,s]", "gamma[c]", "beta[c]"],
  constants: { eps: 1e-5 },
  steps: [
    "mu[b,c] = mean(x[b,c,s], s)",
    "xmu[b,c,s] = x[b,c,s] - mu[b,c]",
    "var[b,c] = mean(xmu[b,c,s]^2, s)",
    "rstd[b,c] = 1/sqrt(var[b,c] + eps)",
    "xhat[b,c,s] = xmu[b,c,s] * rstd[b,c]",
    "y[b,c,s] = gamma[c] * xhat[b,c,s] + beta[c]",
  ],
  output: "y",
});
