import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "masked_softmax",
  description: "Softmax over the entries where mask is not 0 (no gradient for the mask); masked entries get probability 0",
  indices: { n: "N", c: "C" },
  inputs: ["z[n,c]", "mask[n,c]: nograd"],
  steps: [
    "m[n] = max(z[n,c], c)",
    "e[n,c] = where(mask[n,c] != 0, exp(z[n,c] - stop(m[n])), 0)",
    "s[n] = sum(e[n,c], c)",
    "p[n,c] = e[n,c] / s[n]",
  ],
  output: "p",
});
