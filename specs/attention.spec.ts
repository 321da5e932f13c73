import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "attention",
  description: "One head of scaled dot-product attention (Vaswani et al. 2017), softmax shifted by the row maximum",
  indices: { i: "L", j: "L", e: "E", f: "F" },
  inputs: ["q[i,e]", "k[j,e]", "v[j,f]"],
  steps: [
    "s[i,j] = sum(q[i,e] * k[j,e], e) / sqrt(E)",
    "m[i] = max(s[i,j], j)",
    "a[i,j] = exp(s[i,j] - stop(m[i]))",
    "z[i] = sum(a[i,j], j)",
    "p[i,j] = a[i,j] / z[i]",
    "o[i,f] = sum(p[i,j] * v[j,f], j)",
  ],
  output: "o",
});
