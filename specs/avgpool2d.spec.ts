import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "avgpool2d",
  description: "Average pooling, 2x2 windows, stride 2 (a trailing odd row or column is dropped); NCHW layout",
  indices: { n: "N", c: "C", h: "H", v: "W", p: "2", q: "2", i: "H/2", j: "W/2" },
  inputs: ["x[n,c,h,v]"],
  steps: ["y[n,c,i,j] = mean(x[n,c,2*i + p, 2*j + q], p, q)"],
  output: "y",
});
