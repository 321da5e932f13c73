import { defineSpec } from "../compiler/index.js";

export default defineSpec({
  name: "huber",
  description: "Mean Huber loss of predictions p against targets t (no gradient for the targets)",
  indices: { n: "N", d: "D" },
  inputs: ["p[n,d]", "t[n,d]: nograd"],
  constants: { delta: 1 },
  steps: [
    "r[n,d] = p[n,d] - t[n,d]",
    "h[n,d] = where(abs(r[n,d]) <= delta, 0.5 * r[n,d]^2, delta * (abs(r[n,d]) - 0.5 * delta))",
    "loss = mean(h[n,d], n, d)",
  ],
  output: "loss",
});
