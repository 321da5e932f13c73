import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "instancenorm",
  description: "Instance normalization over the spatial axis s, per sample and channel (Ulyanov et al. 2016)",
  indices: { b: "B", c: "C", s: "S" },
  inputs: ["x[b,c,s]", "gamma[c]", "beta[c]"],
  constants: { eps: 1e-5, momentum: 0.1 },
  steps: [
    "mu[b,c] = mean(x[b,c,s], s)",
    "xmu[b,c,s] = x[b,c,s] - mu[b,c]",
    "var[b,c] = mean(xmu[b,c,s]^2, s)",
    "rstd[b,c] = 1/sqrt(var[b,c] + eps)",
    "xhat[b,c,s] = xmu[b,c,s] * rstd[b,c]",
    "y[b,c,s] = gamma[c] * xhat[b,c,s] + beta[c]",
  ],
  output: "y",
  // running statistics as PyTorch's InstanceNorm1d(track_running_stats=True) keeps them: per channel, the
  // batch's mean of each sample's statistics, the variance unbiased over the S values it was taken of
  state: ["running_mean[c] = 0", "running_var[c] = 1"],
  updates: [
    "running_mean[c] = (1 - momentum)*running_mean[c] + momentum*mean(mu[b,c], b)",
    "running_var[c] = (1 - momentum)*running_var[c] + momentum*S/(S - 1)*mean(var[b,c], b)",
  ],
  inference: ["mu[b,c] = running_mean[c]", "var[b,c] = running_var[c]"],
});
