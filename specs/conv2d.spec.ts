import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "conv2d",
  description: "2-D convolution (cross-correlation), stride 2, padding 1, with bias; NCHW layout",
  indices: { n: "N", c: "C", o: "O", h: "H", v: "W", p: "K", q: "K", i: "(H + 2 - K)/2 + 1", j: "(W + 2 - K)/2 + 1" },
  inputs: ["x[n,c,h,v]", "w[o,c,p,q]", "b[o]"],
  steps: ["y[n,o,i,j] = sum(w[o,c,p,q] * x[n,c,2*i + p - 1, 2*j + q - 1], c, p, q) + b[o]"],
  output: "y",
});
