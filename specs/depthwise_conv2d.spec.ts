import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "depthwise_conv2d",
  description: "Depthwise 2-D convolution (one filter per channel), stride 1, padding 1; NCHW layout",
  indices: { n: "N", c: "C", h: "H", v: "W", p: "K", q: "K", i: "H - K + 3", j: "W - K + 3" },
  inputs: ["x[n,c,h,v]", "w[c,p,q]"],
  steps: ["y[n,c,i,j] = sum(w[c,p,q] * x[n,c,i + p - 1, j + q - 1], p, q)"],
  output: "y",
});
