import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "cosine",
  description: "Cosine similarity of the rows of a and b",
  indices: { n: "N", d: "D" },
  inputs: ["a[n,d]", "b[n,d]"],
  constants: { eps: 1e-12 },
  steps: [
    "ab[n] = sum(a[n,d]*b[n,d], d)",
    "aa[n] = sum(a[n,d]^2, d)",
    "bb[n] = sum(b[n,d]^2, d)",
    "sim[n] = ab[n] / sqrt(aa[n]*bb[n] + eps)",
  ],
  output: "sim",
});
