import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "batchnorm",
  description: "Batch normalization, training mode (Ioffe & Szegedy 2015)",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]", "gamma[d]", "beta[d]"],
  constants: { eps: 1e-5, momentum: 0.1 },
  steps: [
    "mu[d] = 1/N * sum(x[n,d], n)",
    "xmu[n,d] = x[n,d] - mu[d]",
    "sq[n,d] = xmu[n,d]^2",
    "var[d] = 1/N * sum(sq[n,d], n)",
    "sqrtvar[d] = sqrt(var[d] + eps)",
    "ivar[d] = 1/sqrtvar[d]",
    "xhat[n,d] = xmu[n,d] * ivar[d]",
    "gammax[n,d] = gamma[d] * xhat[n,d]",
    "out[n,d] = gammax[n,d] + beta[d]",
  ],
  output: "out",
  // running statistics as PyTorch keeps them: momentum 0.1, the unbiased variance N/(N - 1)*var
  state: ["running_mean[d] = 0", "running_var[d] = 1"],
  updates: [
    "running_mean[d] = (1 - momentum)*running_mean[d] + momentum*mu[d]",
    "running_var[d] = (1 - momentum)*running_var[d] + momentum*N/(N - 1)*var[d]",
  ],
  inference: ["mu[d] = running_mean[d]", "var[d] = running_var[d]"],
});
