import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "gru",
  description: "Gated recurrent unit cell (Cho et al. 2014, PyTorch's form), each pre-activation its own step",
  indices: { b: "B", i: "I", k: "K", j: "K" },
  inputs: ["x[b,i]", "h[b,j]", "wr[i,k]", "ur[j,k]", "br[k]", "wz[i,k]", "uz[j,k]", "bz[k]", "wn[i,k]", "un[j,k]", "bn[k]", "bhn[k]"],
  steps: [
    "ar[b,k] = sum(x[b,i] * wr[i,k], i) + sum(h[b,j] * ur[j,k], j) + br[k]",
    "r[b,k] = sigmoid(ar[b,k])",
    "az[b,k] = sum(x[b,i] * wz[i,k], i) + sum(h[b,j] * uz[j,k], j) + bz[k]",
    "z[b,k] = sigmoid(az[b,k])",
    "hn[b,k] = sum(h[b,j] * un[j,k], j) + bhn[k]",
    "an[b,k] = sum(x[b,i] * wn[i,k], i) + bn[k] + r[b,k] * hn[b,k]",
    "n[b,k] = tanh(an[b,k])",
    "hnew[b,k] = (1 - z[b,k]) * n[b,k] + z[b,k] * h[b,k]",
  ],
  output: "hnew",
});
