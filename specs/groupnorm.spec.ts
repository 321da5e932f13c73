import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "groupnorm",
  description: "Group normalization (Wu & He 2018): x[b,g,c,s] normalized over the channels c of a group and the spatial axis s",
  indices: { b: "B", g: "G", c: "C", s: "S" },
  inputs: ["x[b,g,c,s]", "gamma[g,c]", "beta[g,c]"],
  constants: { eps: 1e-5, momentum: 0.1 },
  steps: [
    "mu[b,g] = mean(x[b,g,c,s], c, s)",
    "xmu[b,g,c,s] = x[b,g,c,s] - mu[b,g]",
    "var[b,g] = mean(xmu[b,g,c,s]^2, c, s)",
    "rstd[b,g] = 1/sqrt(var[b,g] + eps)",
    "xhat[b,g,c,s] = xmu[b,g,c,s] * rstd[b,g]",
    "y[b,g,c,s] = gamma[g,c] * xhat[b,g,c,s] + beta[g,c]",
  ],
  output: "y",
  // PyTorch's GroupNorm keeps no running statistics; these follow its InstanceNorm (GroupNorm with one
  // channel per group): per group, the batch's mean of each sample's statistics, the variance unbiased over
  // the C*S values it was taken of
  state: ["running_mean[g] = 0", "running_var[g] = 1"],
  updates: [
    "running_mean[g] = (1 - momentum)*running_mean[g] + momentum*mean(mu[b,g], b)",
    "running_var[g] = (1 - momentum)*running_var[g] + momentum*C*S/(C*S - 1)*mean(var[b,g], b)",
  ],
  inference: ["mu[b,g] = running_mean[g]", "var[b,g] = running_var[g]"],
});
