/**
 * The pass `gather` (compiler/simplify/gather.ts) and the rules it records: `scatter-to-gather`
 * (an affine read's scatter-add gradient solved for the output position) and `merge-scatters`
 * (terms that scatter through the same deltas added before they scatter): input ⇒ expected, the
 * case it must leave alone (a stride), and each rewrite replayed on the gradients it acted on.
 * That each keeps the value at random points is checked for every library spec in
 * derivation.test.ts.
 */
import { describe, expect, it } from "vitest";
import { derive } from "../../compiler/driver.js";
import { print, replaceNode } from "../../compiler/ir/expr.js";
import { gather } from "../../compiler/simplify/gather.js";

const conv = (extra: Partial<{ steps: string[]; i: string; at: string }> = {}) => ({
  name: "c",
  indices: { n: "N", c: "C", o: "O", l: "L", k: "K", i: extra.i ?? "L - K + 3" },
  inputs: ["x[n,c,l]", "w[o,c,k]"],
  steps: extra.steps ?? [`y[n,o,i] = sum(w[o,c,k] * x[n,c,${extra.at ?? "i + k - 1"}], c, k)`],
  output: "y",
});

async function gatherPhase(spec: object) {
  const d = await derive(spec);
  const k = d.fused.phases.findIndex((p) => p.name === "gather");
  const before = d.fused.phases[k - 1]!.gradients;
  const out = gather(before, d.program);
  // the phase as the driver ran it, and each rewrite replayed on the gradient it names
  expect(out.gradients.map((g) => print(g, d.program.letters))).toEqual(d.fused.phases[k]!.gradients.map((g) => print(g, d.program.letters)));
  let replayed = [...before];
  for (const r of out.rewrites) replayed = replayed.map((g, j) => (r.gradients?.includes(j) ? replaceNode(g, r.before, r.after, d.program.sizeOf) : g));
  expect(replayed).toEqual(out.gradients);
  return { out, show: (j: number) => print(out.gradients[j]!, d.program.letters) };
}

describe("gather (scatter-to-gather, merge-scatters)", () => {
  it("scatter-to-gather: a stride-1 convolution's dx is solved for the output position", async () => {
    const { out, show } = await gatherPhase(conv());
    expect(out.rewrites.map((r) => r.rule)).toEqual(["scatter-to-gather"]);
    expect(show(0)).toBe("sum(dy[n,o,i]*w[o,c,k]*delta(i, -k + l + 1), i, k, o)");
  });

  it("keeps the scatter where a stride would make the gather skip most positions", async () => {
    const { out, show } = await gatherPhase(conv({ i: "(L - K)/2 + 1", at: "2*i + k" }));
    expect(out.rewrites).toEqual([]);
    expect(show(0)).toBe("sum(dy[n,o,i]*sum(w[o,c,k]*delta(l, 2*i + k), k), i, o)");
  });

  it("merge-scatters: a centred convolution's two scatters are one before it is solved", async () => {
    const steps = ["z[n,o,i] = sum(w[o,c,k] * x[n,c,i + k - 1], c, k)", "mu[o] = mean(z[n,o,i], n, i)", "y[n,o,i] = z[n,o,i] - mu[o]"];
    const { out, show } = await gatherPhase(conv({ steps }));
    expect(out.rewrites.map((r) => r.rule)).toEqual(["merge-scatters", "scatter-to-gather"]);
    // one sum over the taps, the mean subtracted inside it
    expect(show(0).match(/delta\(/g)).toHaveLength(1);
  });
});
