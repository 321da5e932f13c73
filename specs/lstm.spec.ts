import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "lstm",
  description: "Long short-term memory cell (Hochreiter & Schmidhuber 1997), outputs the new hidden and cell state",
  indices: { b: "B", i: "I", k: "K", j: "K" },
  inputs: ["x[b,i]", "h[b,j]", "c[b,k]", "wi[i,k]", "ui[j,k]", "bi[k]", "wf[i,k]", "uf[j,k]", "bf[k]", "wg[i,k]", "ug[j,k]", "bg[k]", "wo[i,k]", "uo[j,k]", "bo[k]"],
  steps: [
    "ai[b,k] = sum(x[b,i] * wi[i,k], i) + sum(h[b,j] * ui[j,k], j) + bi[k]",
    "af[b,k] = sum(x[b,i] * wf[i,k], i) + sum(h[b,j] * uf[j,k], j) + bf[k]",
    "ag[b,k] = sum(x[b,i] * wg[i,k], i) + sum(h[b,j] * ug[j,k], j) + bg[k]",
    "ao[b,k] = sum(x[b,i] * wo[i,k], i) + sum(h[b,j] * uo[j,k], j) + bo[k]",
    "gi[b,k] = sigmoid(ai[b,k])",
    "gf[b,k] = sigmoid(af[b,k])",
    "gg[b,k] = tanh(ag[b,k])",
    "go[b,k] = sigmoid(ao[b,k])",
    "cnew[b,k] = gf[b,k] * c[b,k] + gi[b,k] * gg[b,k]",
    "hnew[b,k] = go[b,k] * tanh(cnew[b,k])",
  ],
  output: ["hnew", "cnew"],
});
