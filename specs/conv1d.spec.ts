import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "conv1d",
  description: "1-D convolution (cross-correlation, as in PyTorch and TensorFlow), padding 1, stride 1, with bias",
  indices: { n: "N", c: "C", o: "O", l: "L", k: "K", i: "L - K + 3" },
  inputs: ["x[n,c,l]", "w[o,c,k]", "b[o]"],
  steps: ["y[n,o,i] = sum(w[o,c,k] * x[n,c,i + k - 1], c, k) + b[o]"],
  output: "y",
});
