import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "conv_bn_relu",
  description: "2-D convolution (stride 1, padding 1, no bias), batch normalization over (n, i, j) in training mode, relu; NCHW layout",
  indices: { n: "N", c: "C", o: "O", h: "H", v: "W", p: "K", q: "K", i: "H - K + 3", j: "W - K + 3" },
  inputs: ["x[n,c,h,v]", "w[o,c,p,q]", "gamma[o]", "beta[o]"],
  constants: { eps: 1e-5 },
  steps: [
    "z[n,o,i,j] = sum(w[o,c,p,q] * x[n,c,i + p - 1, j + q - 1], c, p, q)",
    "mu[o] = mean(z[n,o,i,j], n, i, j)",
    "zmu[n,o,i,j] = z[n,o,i,j] - mu[o]",
    "var[o] = mean(zmu[n,o,i,j]^2, n, i, j)",
    "rstd[o] = 1/sqrt(var[o] + eps)",
    "zhat[n,o,i,j] = zmu[n,o,i,j] * rstd[o]",
    "out[n,o,i,j] = gamma[o] * zhat[n,o,i,j] + beta[o]",
    "y[n,o,i,j] = relu(out[n,o,i,j])",
  ],
  output: "y",
});
