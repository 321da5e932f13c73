import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "groupnorm",
  description: "Group normalization (Wu & He 2018): x[b,g,c,s] normalized over the channels c of a group and the spatial axis s",
  indices: { b: "B", g: "G", c: "C", s: "S" },
  inputs: ["x[b,g,c,s]", "gamma[g,c]", "beta[g,c]"],
  constants: { eps: 1e-5 },
  steps: [
    "mu[b,g] = mean(x[b,g,c,s], c, s)",
    "xmu[b,g,c,s] = x[b,g,c,s] - mu[b,g]",
    "var[b,g] = mean(xmu[b,g,c,s]^2, c, s)",
    "rstd[b,g] = 1/sqrt(var[b,g] + eps)",
    "xhat[b,g,c,s] = xmu[b,g,c,s] * rstd[b,g]",
    "y[b,g,c,s] = gamma[g,c] * xhat[b,g,c,s] + beta[g,c]",
  ],
  output: "y",
});
