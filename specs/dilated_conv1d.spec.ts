import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "dilated_conv1d",
  description: "1-D convolution with dilation 2, no padding, stride 1",
  indices: { n: "N", c: "C", o: "O", l: "L", k: "K", i: "L - 2*K + 2" },
  inputs: ["x[n,c,l]", "w[o,c,k]"],
  steps: ["y[n,o,i] = sum(w[o,c,k] * x[n,c,i + 2*k], c, k)"],
  output: "y",
});
