import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "logsoftmax",
  description: "Log-softmax over classes c: z - log-sum-exp(z), shifted by the row maximum",
  indices: { n: "N", c: "C" },
  inputs: ["z[n,c]"],
  steps: [
    "m[n] = max(z[n,c], c)",
    "s[n] = sum(exp(z[n,c] - stop(m[n])), c)",
    "y[n,c] = z[n,c] - stop(m[n]) - log(s[n])",
  ],
  output: "y",
});
