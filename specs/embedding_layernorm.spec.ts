import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "embedding_layernorm",
  description: "Token embedding lookup followed by layer normalization, as at the input of a transformer",
  indices: { b: "B", s: "S", v: "V", d: "D" },
  inputs: ["ids[b,s]: int", "E[v,d]", "gamma[d]", "beta[d]"],
  constants: { eps: 1e-5 },
  steps: [
    "x[b,s,d] = E[ids[b,s], d]",
    "mu[b,s] = mean(x[b,s,d], d)",
    "xmu[b,s,d] = x[b,s,d] - mu[b,s]",
    "var[b,s] = mean(xmu[b,s,d]^2, d)",
    "rstd[b,s] = 1/sqrt(var[b,s] + eps)",
    "y[b,s,d] = gamma[d] * xmu[b,s,d] * rstd[b,s] + beta[d]",
  ],
  output: "y",
});
