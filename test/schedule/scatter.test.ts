/**
 * compiler/schedule/scatter.ts: a one-scatter pass is weighed over sizes, each size symbol small or
 * large apart (`sizePoints`), and kept by its worst case (`lessWorkOverSizes`), input ⇒ expected;
 * an embedding's one scatter is kept though it is more work with every size 256.
 */
import { describe, expect, it } from "vitest";
import { checkSpec } from "../../compiler/parse/check.js";
import { compile } from "../../compiler/driver.js";
import { lessWorkOverSizes, sizePoints } from "../../compiler/schedule/scatter.js";
import { SPECS } from "../layers-cases.js";

describe("one-scatter passes weighed over sizes", () => {
  it("lessWorkOverSizes: kept when the most it can cost more is less than the most it saves", () => {
    expect(lessWorkOverSizes({ least: 0.39, most: 1.33 })).toBe(true);
    expect(lessWorkOverSizes({ least: 0.5, most: 0.9 })).toBe(true);
    expect(lessWorkOverSizes({ least: 0.8, most: 1.3 })).toBe(false);
    expect(lessWorkOverSizes({ least: 0.4, most: 2.6 })).toBe(false);
    expect(lessWorkOverSizes({ least: 1, most: 1 })).toBe(false);
  });

  it("sizePoints: every symbol 32 or 1024 apart, computed extents from them, points with an extent below 1 left out", () => {
    const p = checkSpec({ name: "t", indices: { n: "N", l: "L", k: "K", i: "L - K + 1" }, inputs: ["x[n,l]", "w[k]"], steps: ["y[n,i] = sum(x[n,i + k]*w[k], k)"], output: "y" });
    const points = sizePoints(p);
    // 8 choices of N, L, K; L = 32 with K = 1024 gives I < 1 (2 of them)
    expect(points.length).toBe(6);
    const seen = points.map((pt) => [pt("N"), pt("L"), pt("K"), pt(p.derived![0]!.name)].join(","));
    expect(seen).toContain("32,1024,32,993");
    expect(seen).not.toContain("32,32,1024,-991");
    expect(new Set(seen).size).toBe(6);
  });

  it("test:embedding scatters dh once into dE, though with every size 256 the gather form is less work ([V,D] has fewer indices than [B,S,D])", async () => {
    const c = await compile(SPECS.embedding!, { format: false, doubleBackward: false });
    const el = c.schedule.elements ?? [];
    expect(el.map((e) => e.adjoint)).toEqual(["h"]);
    expect(el[0]!.work.scattered).toBeGreaterThan(el[0]!.work.otherwise);
    expect(el[0]!.work.ratio!.least).toBeLessThan(0.5);
    expect(lessWorkOverSizes(el[0]!.work.ratio!)).toBe(true);
    expect(c.code).toContain("one pass over the elements of dh, never stored");
  });
});
