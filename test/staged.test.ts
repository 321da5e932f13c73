/**
 * schedule/staged.ts: the fused kernel computes a gradient the staged way where its derived form is
 * more work than the staged statements it reads, so the fused kernel as a whole is never more work
 * than the naive one (by the accounting `backpass stats` reports, schedule/work.ts).
 */
import { describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compileLibrary, type Kernels, loadModule } from "./harness.js";
import { ZERO } from "../compiler/ir/expr.js";
import { prng } from "../compiler/ir/random.js";
import { schedule } from "../compiler/schedule/passes.js";
import { emitModule } from "../compiler/emit/module.js";
import { chooseStaged, stagedPart } from "../compiler/schedule/staged.js";
import { scheduledWork, stagedWork, workTotal } from "../compiler/schedule/work.js";

const library = readdirSync(join(import.meta.dirname, "../specs"))
  .filter((f) => f.endsWith(".spec.ts"))
  .map((f) => f.slice(0, -".spec.ts".length))
  .sort();

describe("the staged computation where no derived form is less work", () => {
  // The measure counts arithmetic and the temporaries a kernel writes and reads back, not the reads
  // of its operands, which fusing passes saves too: by it, a fused kernel of many layers (gru,
  // lstm, mlp) is within 1% of the naive one, and `npm run bench` times it 2-3x faster. What it
  // must catch is a derived form asymptotically worse than the staged one; the 2% is its resolution.
  it.each(library)("%s: the fused kernel is no more work than the naive one, and each gradient takes the lesser of its two forms", async (name) => {
    const c = await compileLibrary(name);
    const choice = chooseStaged(c.program, c.backward, c.fused.gradients);
    const at = 256;
    const fused = scheduledWork(c.program, c.schedule, at);
    // the statements the kernel runs staged: the compiled choice's (a gradient a one-scatter pass writes, schedule/scatter.ts, is not among them)
    const part = c.staged?.part;
    const staged = part ? workTotal(stagedWork(c.program, part, at), at) : 0;
    expect(workTotal(fused, at) + staged).toBeLessThanOrEqual(1.02 * workTotal(stagedWork(c.program, c.backward, at), at));
    choice.work.forEach((w, k) => expect(choice.staged[k]).toBe(w.derived > w.staged || w.oversized === true));
  });

  it("a derived form that stores a temporary of higher rank than every tensor is not taken, though less work at every size 256 (max pooling's window)", async () => {
    const c = await compileLibrary("maxpool2d");
    const choice = chooseStaged(c.program, c.backward, c.fused.gradients);
    const k = c.program.inputs.findIndex((t) => t.name === "x");
    expect(choice.work[k]!.derived).toBeLessThan(choice.work[k]!.staged);
    expect(choice.work[k]!.oversized).toBe(true);
    expect(choice.staged[k]).toBe(true);
    // the temporary: more indices than x[n,c,h,w] and y[n,c,i,j]
    const alone = c.fused.gradients.map((g, j) => (j === k ? g : ZERO));
    const temps = scheduledWork(c.program, schedule(alone, c.program.inputs, c.program.sizeOf), 256).temporaries;
    expect(Math.max(...temps.map((t) => t.shape.length))).toBeGreaterThan(4);
    // a spec whose derived forms store nothing larger than its tensors has no oversized gradient
    const ln = await compileLibrary("layernorm");
    expect(chooseStaged(ln.program, ln.backward, ln.fused.gradients).work.some((w) => w.oversized)).toBe(false);
  });

  it("lowers a staged gradient as the naive kernel's statements: layernorm's dx staged gives the naive dx, the others stay derived", async () => {
    const c = await compileLibrary("layernorm");
    const p = c.program;
    const staged = p.inputs.map((t) => t.name === "x");
    const part = stagedPart(c.backward, ["x"]);
    const sched = schedule(c.fused.gradients.map((g, k) => (staged[k] ? ZERO : g)), p.inputs, p.sizeOf, staged);
    const code = await emitModule({ program: p, backward: c.backward, fused: c.fused, schedule: sched, staged: { staged, part, work: p.inputs.map(() => ({ derived: 2, staged: 1 })) }, source: "test", format: false });
    expect(code).toContain("computed the staged way (no derived form is less work): dx");
    mkdirSync(join(import.meta.dirname, ".out"), { recursive: true });
    const file = join(mkdtempSync(join(import.meta.dirname, ".out/staged-")), "layernorm.ts");
    const mod = await loadModule<Kernels>(code, file);
    const rand = prng(5);
    const [N, D] = [7, 13];
    const data = (n: number) => Float64Array.from({ length: n }, () => rand() * 2 - 1);
    const { cache } = mod.forward({ x: data(N * D), gamma: data(D), beta: data(D) }, { N, D });
    const dout = data(N * D);
    const naive = mod.backwardNaive(dout, cache) as Record<string, Float64Array>;
    const fused = mod.backwardFused(dout, cache) as Record<string, Float64Array>;
    // the same statements, so the same numbers, bit for bit; the derived ones agree to rounding
    expect(fused["dx"]).toEqual(naive["dx"]);
    for (const k of ["dgamma", "dbeta"]) fused[k]!.forEach((v, i) => expect(Math.abs(v - naive[k]![i]!)).toBeLessThan(1e-12));
    // and the library's own layernorm derives dx (it is less work)
    expect(chooseStaged(p, c.backward, c.fused.gradients).staged).toEqual([false, false, false]);
  });

  it("keeps the derived form of every gradient of batchnorm, gru and attention", async () => {
    for (const name of ["batchnorm", "gru", "attention"]) {
      const c = await compileLibrary(name);
      expect(chooseStaged(c.program, c.backward, c.fused.gradients).staged.some(Boolean), name).toBe(false);
    }
  });

  it("cuts the staged backward down to what the named gradients read", async () => {
    const c = await compileLibrary("batchnorm");
    const all = c.backward.blocks.flatMap((b) => b.statements).length;
    const beta = stagedPart(c.backward, ["beta"]);
    expect(beta.gradients.map((g) => g.input.name)).toEqual(["beta"]);
    expect(beta.blocks.flatMap((b) => b.statements).length).toBeLessThan(all);
    expect(stagedPart(c.backward, ["x", "gamma", "beta"]).blocks.flatMap((b) => b.statements).length).toBe(all);
  });
});
