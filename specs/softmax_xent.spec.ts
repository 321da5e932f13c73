import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "softmax_xent",
  description: "Mean cross-entropy of softmax(z) against soft targets t, a scalar loss",
  indices: { n: "N", c: "C" },
  inputs: ["z[n,c]", "t[n,c]"],
  steps: [
    "m[n] = max(z[n,c], c)",
    "e[n,c] = exp(z[n,c] - stop(m[n]))",
    "s[n] = sum(e[n,c], c)",
    "p[n,c] = e[n,c] / s[n]",
    "logp[n,c] = z[n,c] - stop(m[n]) - log(s[n])",
    "loss = -sum(t[n,c] * logp[n,c], n, c) / N",
  ],
  output: "loss",
});
