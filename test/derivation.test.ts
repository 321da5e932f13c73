/**
 * Every rewrite the fused derivation records, for every library spec, preserves values: before and
 * after are evaluated on the same forward data (so definitions hold: xhat really is xmu*ivar).
 */
import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { deriveLibrary } from "./harness.js";
import { randomSizes } from "../compiler/ir/sizes.js";
import { evaluate, tensorEnv } from "../compiler/ir/evaluate.js";
import { print } from "../compiler/ir/expr.js";
import { shapeOf, tensorOf } from "../compiler/ir/program.js";
import { interpretBackward, interpretForward, randomInputs } from "../compiler/ir/interpret.js";
import { prng } from "../compiler/ir/random.js";

const specDir = join(import.meta.dirname, "../specs");

describe.each(readdirSync(specDir).filter((f) => f.endsWith(".spec.ts")))("derivation of %s", (file) => {
  it("each recorded rewrite keeps the value at random points", async () => {
    // the build every test worker shares (harness.ts): the derivation is the same one codegen makes
    const { program: p, backward: bw, fused } = await deriveLibrary(file.replace(/\.spec\.ts$/, ""));
    const rewrites = fused.phases.flatMap((ph) => ph.rewrites.map((r) => ({ phase: ph.name, ...r })));
    // a gradient the chain rule already gives in closed form (linear, mse) may need no rewrite
    if (rewrites.length === 0) expect(fused.gradients).toEqual(fused.phases[0]!.gradients);
    for (let trial = 0; trial < 3; trial++) {
      const rand = prng(trial + 1);
      const sizes = randomSizes(p, rand, 1, 4);
      const constants = Object.fromEntries(p.constants.map((c) => [c.name, c.value]));
      // integer inputs get valid ids
      const inputs = randomInputs(p, sizes, rand, () => 2 * rand() - 0.5);
      const tensors = interpretForward(p, inputs, sizes, constants);
      const outLen = shapeOf(p, tensorOf(p, p.output)).reduce((a, s) => a * sizes[s]!, 1);
      const all = interpretBackward(p, bw, tensors, sizes, constants, Float64Array.from({ length: outLen }, () => 2 * rand() - 1));
      const env = tensorEnv({ tensors: all, sizes, constants, sizeOf: p.sizeOf });
      for (const r of rewrites) {
        const free = [...new Set([...r.before.free, ...r.after.free])];
        const binding = new Map(free.map((i) => [i, Math.floor(rand() * sizes[p.sizeOf(i)]!)] as const));
        const a = evaluate(r.before, env, binding);
        const b = evaluate(r.after, env, binding);
        expect(Math.abs(a - b), `${r.phase}/${r.rule}: ${print(r.before, p.letters)} => ${print(r.after, p.letters)}`).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(a)));
      }
    }
  });
});
