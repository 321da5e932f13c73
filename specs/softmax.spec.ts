import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "softmax",
  description: "Softmax over classes c, shifted by the row maximum so exp never overflows",
  indices: { n: "N", c: "C" },
  inputs: ["z[n,c]"],
  steps: [
    "m[n] = max(z[n,c], c)",
    "e[n,c] = exp(z[n,c] - stop(m[n]))",
    "s[n] = sum(e[n,c], c)",
    "p[n,c] = e[n,c] / s[n]",
  ],
  output: "p",
});
