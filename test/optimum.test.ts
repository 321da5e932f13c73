/**
 * The fused kernels reach the known optimum for each library spec, read from the same statistics
 * `backpass stats` prints (compiler/stats.ts): how many reductions, over which axis, how many
 * passes over the largest tensor, which temporaries, how much transcendental work per element.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../compiler/driver.js";
import type { KernelStats, SpecStats } from "../compiler/stats.js";
import { compileLibrary } from "./harness.js";

const stats = async (name: string): Promise<SpecStats> => (await compileLibrary(name)).stats;

const temporaries = (k: KernelStats) => k.reductions.filter((r) => r.into === "temporary");
const outputs = (k: KernelStats) => k.reductions.filter((r) => r.into !== "temporary");

describe("fused kernels reach the optimum", () => {
  it.each([
    ["batchnorm", "N", "D", 0],
    ["layernorm", "D", "N", 2],
    ["instancenorm", "S", "B,C", 2],
    ["groupnorm", "C,S", "B,G", 2],
  ] as const)("%s: two shared reductions along the normalized axis, the parameter reductions, two passes, no temporary of the input's size", async (name, axis, _rows, rowSums) => {
    const s = await stats(name);
    const f = s.fused;
    // batchnorm's two reductions along N are dgamma and dbeta themselves
    expect(temporaries(f)).toHaveLength(rowSums);
    for (const r of temporaries(f)) expect(r.over.join(",")).toBe(axis);
    expect(outputs(f).map((r) => r.into).sort()).toEqual(["dbeta", "dgamma"]);
    expect(f.passesOverLargest).toBe(2);
    expect(f.passes).toBe(2);
    expect(f.largeTemporaries).toBe(0);
    expect(f.transcendentalsPerElement).toBe(0);
    // and the naive kernel, for contrast, allocates arrays the size of x
    expect(s.naive.largeTemporaries).toBeGreaterThan(2);
  });

  it.each([
    ["rmsnorm", ["dw"]],
    ["l2normalize", []],
  ] as const)("%s: one reduction along the normalized axis", async (name, params) => {
    const f = (await stats(name)).fused;
    expect(temporaries(f)).toHaveLength(1);
    expect(temporaries(f)[0]!.over).toEqual(["D"]);
    expect(outputs(f).map((r) => r.into)).toEqual(params);
    expect(f.largeTemporaries).toBe(0);
    expect(f.passesOverLargest).toBe(2);
  });

  it("softmax: one reduction, sum_c dout*p", async () => {
    const f = (await stats("softmax")).fused;
    expect(f.reductions).toHaveLength(1);
    expect(f.reductions[0]!.expr).toBe("sum(dp[n,c]*p[n,c], c)");
    expect(f.transcendentalsPerElement).toBe(0);
    expect(f.largeTemporaries).toBe(0);
  });

  it("logsoftmax: one reduction, sum_c dout", async () => {
    const f = (await stats("logsoftmax")).fused;
    expect(f.reductions.map((r) => r.expr)).toEqual(["sum(dy[n,c], c)"]);
    expect(f.largeTemporaries).toBe(0);
  });

  it("softmax_xent: dz = dloss/N*(p*sum_c t - t), no reduction over anything the forward computed", async () => {
    const s = await stats("softmax_xent");
    const f = s.fused;
    // the only reduction is over the targets (it is 1 for probability targets)
    expect(f.reductions.map((r) => r.expr)).toEqual(["sum(t[n,c], c)"]);
    expect(f.transcendentalsPerElement).toBe(0);
    expect(f.largeTemporaries).toBe(0);
    // the target sums, then dz and dt together
    expect(f.passes).toBe(2);
  });

  it.each(["sigmoid", "tanh", "swish", "gelu", "softplus"])("%s: one pass, no reduction, no temporary", async (name) => {
    const f = (await stats(name)).fused;
    expect(f.passes).toBe(1);
    expect(f.reductions).toHaveLength(0);
    expect(f.temporaries).toHaveLength(0);
  });

  it.each(["sigmoid", "tanh", "swish"])("%s: the derivative is written through the forward output, with no exp or tanh", async (name) => {
    const s = await stats(name);
    expect(s.fused.transcendentalsPerElement).toBe(0);
    // the local derivatives of the naive kernel go through the step's value as well
    expect(s.naive.transcendentalsPerElement).toBe(0);
  });

  it("linear: dout·wᵀ and xᵀ·dout (and db) straight into the outputs, no temporary", async () => {
    const f = (await stats("linear")).fused;
    expect(f.temporaries).toHaveLength(0);
    const by = Object.fromEntries(f.reductions.map((r) => [r.into, r]));
    expect(by["dx"]!.expr).toBe("sum(dy[n,k]*w[d,k], k)");
    expect(by["dw"]!.expr).toBe("sum(dy[n,k]*x[n,d], n)");
    expect(by["db"]!.expr).toBe("sum(dy[n,k], n)");
    // dx and dw share a pass over d, n, k: with n the next loop out, the row of w and the row of dw
    // that the innermost k walks are the same for every n, so they stay in cache
    const shared = f.detail.find((d) => d.computes.length === 2)!;
    expect(shared.loops).toEqual(["D", "N", "K"]);
  });

  it.each([
    ["mse", ["dy", "dt"]],
    ["cosine", ["da", "db"]],
  ] as const)("%s: no reduction, and both gradients written in one pass that reads each operand once", async (name, grads) => {
    const f = (await stats(name)).fused;
    expect(f.reductions).toHaveLength(0);
    expect(f.temporaries).toHaveLength(0);
    expect(f.passes).toBe(1);
    expect(f.detail[0]!.computes).toEqual(grads);
  });

  it("attention: dq and dk accumulate straight into their outputs from one stored p*(dp - D) over [L,L]", async () => {
    const f = (await stats("attention")).fused;
    expect(outputs(f).map((r) => r.into).sort()).toEqual(["dk", "dq", "dv"]);
    const stored = f.temporaries.filter((t) => t.name.startsWith("stored("));
    expect(stored.map((t) => t.shape.join(","))).toEqual(["L,L"]);
    // written over dp's array, which dies in the same pass: one [L,L] allocation, not two
    expect(stored[0]!.in).toBe("sum(do[i,f]*v[j,f], f)");
    expect(f.temporaries.filter((t) => t.in === undefined).map((t) => t.shape.join(",")).sort()).toEqual(["L", "L,L"]);
    // no [L,E] temporary copied into dq or dk afterwards
    expect(f.temporaries.filter((t) => t.shape.includes("E"))).toEqual([]);
    // dp, the row term, the stored product and one pass for dq and dk together
    expect(f.passes).toBe(4);
  });

  it("a product that does not move with every loop of a reduction is stored once, in a spec nobody wrote", async () => {
    const spec = {
      name: "tanhmix",
      indices: { n: "N", d: "D", k: "K" },
      inputs: ["x[n,d]", "w[d,k]"],
      steps: ["y[n,k] = sum(tanh(x[n,d]) * w[d,k], d)"],
      output: "y",
    };
    const f = (await compile(spec, { format: false, doubleBackward: false })).stats.fused;
    // dw = sum(dy[n,k]*tanh(x[n,d]), n) would call tanh once per (n, d, k); it reads a stored tanh(x)
    expect(f.temporaries.map((t) => t.name)).toContain("stored(tanh(x[n,d]))");
    expect(f.transcendentalsPerElement).toBeLessThanOrEqual(2);
  });

  it("attention: the row term is sum_f dout*o (cost in F), never sum_j dp*p (cost in L)", async () => {
    const f = (await stats("attention")).fused;
    const rowTerms = f.reductions.filter((r) => r.shape.join(",") === "L");
    expect(rowTerms.map((r) => r.expr)).toEqual(["sum(do[i,f]*o[i,f], f)"]);
    expect(f.reductions.some((r) => r.shape.join(",") === "L" && r.over.join(",") === "L")).toBe(false);
    // dp = dout·vᵀ is computed once and shared by dq and dk
    expect(f.reductions.filter((r) => r.expr.startsWith("sum(do[i,f]*v[")).length).toBe(1);
  });
});

describe("fused double backward kernels (CONTRACT §4.6)", () => {
  const double = async (name: string) => (await compileLibrary(name, { double: true })).stats.double!;

  it("batchnorm: one pass for the per-feature reductions, one pass writing dx and ddout, no temporary of the input's size", async () => {
    const d = await double("batchnorm");
    const f = d.fused;
    expect(f.passesOverLargest).toBe(2);
    expect(f.largeTemporaries).toBe(0);
    expect(f.transcendentalsPerElement).toBe(0);
    // every reduction is per feature (over N), and they share one pass
    expect(f.reductions.length).toBeGreaterThan(0);
    for (const r of f.reductions) expect(r.over).toEqual(["N"]);
    const overNxD = f.detail.filter((ps) => ps.loops.join(",") === "N,D");
    expect(overNxD).toHaveLength(2);
    expect(overNxD[0]!.computes.every((c) => c.startsWith("sum("))).toBe(true);
    expect([...overNxD[1]!.computes].sort()).toEqual(["ddout", "dx"]);
    // the naive double backward, for contrast, stages arrays the size of x
    expect(d.naive.largeTemporaries).toBeGreaterThan(2);
  });

  it.each(["layernorm", "softmax", "softmax_xent", "attention"])("%s: no more temporaries the size of the largest tensor than the naive double backward", async (name) => {
    const d = await double(name);
    expect(d.fused.largeTemporaries).toBeLessThanOrEqual(d.naive.largeTemporaries);
    if (name !== "attention") expect(d.fused.largeTemporaries).toBe(0);
  });
});

describe("one scatter of a hoisted closed form (schedule/scatter.ts)", () => {
  const activation = (k: KernelStats, shape: string) => k.temporaries.filter((t) => t.shape.join(",") === shape);

  it("conv_bn_relu: after the per-channel reductions, dx and dw in one loop nest over the activation and the taps; no temporary the size of the activation", async () => {
    const s = await stats("conv_bn_relu");
    const f = s.fused;
    expect(activation(f, "N,O,I,J")).toEqual([]);
    expect(f.temporaries).toEqual([]);
    // the per-channel reductions are dgamma and dbeta themselves, in one pass
    expect(f.reductions.filter((r) => r.over.join(",") === "I,J,N").map((r) => r.into).sort()).toEqual(["dbeta", "dgamma"]);
    // dz once per element (a local), then each tap adds into dx and accumulates dw
    const nest = f.detail.filter((ps) => ps.computes.includes("dx"));
    expect(nest).toHaveLength(1);
    expect(nest[0]!.computes).toEqual(["dx", "dw"]);
    expect(nest[0]!.loops).toEqual(["N", "O", "I", "J", "C", "K", "K"]);
    const element = f.detail.filter((ps) => ps.computes.some((c) => c.startsWith("dz ")));
    expect(element.map((ps) => ps.loops.join(","))).toEqual(["N,O,I,J"]);
    // the staged kernel, for contrast, stores the activation's adjoints
    expect(activation(s.naive, "N,O,I,J").length).toBeGreaterThan(4);
    expect(f.opsPerElement).toBeLessThanOrEqual(s.naive.opsPerElement);
  });

  it("embedding_layernorm: the row sums, then one pass over (b,s,d) adding layernorm's closed-form dx at dE[ids[b,s], d]; no temporary of size B*S*D", async () => {
    const s = await stats("embedding_layernorm");
    const f = s.fused;
    expect(activation(f, "B,S,D")).toEqual([]);
    expect(f.largeTemporaries).toBe(0);
    expect(f.reductions.filter((r) => r.into === "temporary").map((r) => r.over.join(","))).toEqual(["D", "D"]);
    const nest = f.detail.filter((ps) => ps.computes.includes("dE"));
    expect(nest.map((ps) => ps.loops.join(","))).toEqual(["B,S,D"]);
    expect(activation(s.naive, "B,S,D").length).toBeGreaterThan(2);
  });
});
