import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "layernorm",
  description: "Layer normalization over the feature axis (Ba, Kiros & Hinton 2016)",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]", "gamma[d]", "beta[d]"],
  constants: { eps: 1e-5 },
  steps: [
    "mu[n] = mean(x[n,d], d)",
    "xmu[n,d] = x[n,d] - mu[n]",
    "var[n] = mean(xmu[n,d]^2, d)",
    "rstd[n] = 1/sqrt(var[n] + eps)",
    "xhat[n,d] = xmu[n,d] * rstd[n]",
    "y[n,d] = gamma[d] * xhat[n,d] + beta[d]",
  ],
  output: "y",
});
