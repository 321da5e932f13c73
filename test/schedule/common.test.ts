/**
 * compiler/schedule/common.ts: the parts an elementwise pass computes more than once, input ⇒
 * expected; and a two-output kernel that computes its common part once, as `stats` counts it.
 */
import { describe, expect, it } from "vitest";
import { print } from "../../compiler/ir/expr.js";
import { commonParts } from "../../compiler/schedule/common.js";
import { compile } from "../../compiler/driver.js";
import { expr } from "../rules/helpers.js";
import { SPECS } from "../layers-cases.js";

const shown = (xs: readonly string[]) => commonParts(xs.map((x) => expr(x, "[n,d]")), () => false).map((e) => print(e));

describe("commonParts", () => {
  it("finds the part two outputs share, and the call inside it, smaller first", () => {
    expect(shown(["x[n,d]*(y[n,d] + tanh(x[n,d])*y[n,d])", "y[n,d]*(y[n,d] + tanh(x[n,d])*y[n,d])"])).toEqual([print(expr("y[n,d] + tanh(x[n,d])*y[n,d]", "[n,d]"))]);
    // a call used twice in one output, a product not worth a local (one operation)
    expect(shown(["exp(x[n,d])*y[n,d] + exp(x[n,d])", "x[n,d]*y[n,d]", "x[n,d]*y[n,d] + 1"])).toEqual([print(expr("exp(x[n,d])", "[n,d]"))]);
  });

  it("leaves reductions, known values and parts used once alone", () => {
    expect(shown(["sum(x[n,d]*tanh(y[n,d]), n) + 1", "sum(x[n,d]*tanh(y[n,d]), n)*2"])).toEqual([]);
    expect(shown(["tanh(x[n,d]) + 1", "tanh(y[n,d])"])).toEqual([]);
    const t = expr("tanh(x[n,d])*y[n,d] + x[n,d]", "[n,d]");
    expect(commonParts([t, t], (e) => e === t)).toEqual([]);
  });

  it("an LSTM-like cell's one pass computes each call once and the part dx, dc0 and dw share once, as stats counts it", async () => {
    const c = await compile(SPECS.cell!, { format: false, doubleBackward: false });
    const fused = c.code.slice(c.code.indexOf("export function backwardFused"));
    const pass = fused.slice(fused.indexOf("one pass over memory for dx, dc0, dw"), fused.indexOf("return {"));
    const calls = [...pass.matchAll(/Math\.(\w+)\((\w+)\)/g)].map((m) => `${m[1]}(${m[2]})`);
    expect(calls.length).toBeGreaterThan(1);
    expect(calls).toEqual([...new Set(calls)]);
    // sech(u)^2 goes through the tanh(u) the pass computes anyway (simplify/tanh.ts): tanh(x), tanh(c), no cosh
    expect(calls.map((k) => k.slice(0, k.indexOf("(")))).toEqual(["tanh", "tanh"]);
    // dc0 = f*(dc + dh*relu(x + 0.5)*(1 - tanh(c)^2)), which dx reads twice: one local, read by both stores
    const part = /const (part\w*) = /.exec(pass)?.[1];
    expect(part).toBeDefined();
    expect(pass).toMatch(new RegExp(`dc0\\[[^\\]]+\\] = \\w+ \\* ${part};`));
    expect(pass.split(part!).length - 1).toBe(5);
    // stats counts the pass as it runs: one transcendental per call in it (relu's Math.max too)
    const detail = c.stats.fused.detail.find((d) => d.computes.includes("dx") && d.computes.includes("dc0"))!;
    // dw = sum(f*x*(1 - f)*part*(c0 - tanh(x)), n) accumulates in the same pass, reading the same locals
    expect(c.stats.fused.passes).toBe(1);
    expect(detail.computes).toEqual(["dx", "dc0", "dw"]);
    expect(pass).toMatch(new RegExp(`dw\\[d\\] = dw\\[d\\]! \\+ [^;]*${part}`));
    expect(detail.transcendentals).toBe(pass.split("Math.").length - 1);
  });
});
