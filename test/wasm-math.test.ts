/**
 * The math functions of the WebAssembly modules (emit/wasm-math.ts) against `Math` and the
 * TypeScript modules' erf, in ulps, on random arguments over each function's range (log-uniform
 * magnitudes, both signs) and on the special values (0, -0, ±Infinity, NaN, overflow edges).
 */
import { describe, expect, it } from "vitest";
import { assemble } from "../compiler/emit/wasm.js";
import { mathFunctions } from "../compiler/emit/wasm-math.js";
import { prng } from "../compiler/ir/random.js";

const FNS = ["exp", "log", "log1p", "expm1", "tanh", "sinh", "cosh", "sin", "cos", "sign", "erf"] as const;

/** The TypeScript modules' erf (emit/module.ts), the reference for the wasm one. */
function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const a = Math.abs(x);
  if (a < 3) {
    let term = a;
    let total = a;
    for (let n = 1; n < 200 && term > 1e-17 * total; n++) {
      term *= (2 * a * a) / (2 * n + 1);
      total += term;
    }
    const v = (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * total;
    return x < 0 ? -v : v;
  }
  if (a > 6) return x < 0 ? -1 : 1;
  let f = a;
  for (let n = 80; n >= 1; n--) f = a + n / 2 / f;
  const v = 1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * f);
  return x < 0 ? -v : v;
}

const REF: Record<string, (...args: number[]) => number> = { exp: Math.exp, log: Math.log, log1p: Math.log1p, expm1: Math.expm1, tanh: Math.tanh, sinh: Math.sinh, cosh: Math.cosh, sin: Math.sin, cos: Math.cos, sign: Math.sign, erf, pow: Math.pow };

/** Distance in units in the last place of `b` (0 when both are the same NaN-or-value). */
function ulps(a: number, b: number): number {
  if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) return 0;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
  const e = Math.max(Math.floor(Math.log2(Math.abs(b))), -1022);
  return Math.abs(a - b) / 2 ** (e - 52);
}

let built: Promise<Record<string, (x: number, y?: number) => number>> | undefined;
function instance(): Promise<Record<string, (x: number, y?: number) => number>> {
  return (built ??= make());
}
async function make(): Promise<Record<string, (x: number, y?: number) => number>> {
  const exports = [...FNS, "pow"].map((f) => (f === "pow" ? `(func (export "pow") (param f64 f64) (result f64) (call $m.pow (local.get 0) (local.get 1)))` : `(func (export "${f}") (param f64) (result f64) (call $m.${f} (local.get 0)))`));
  const bytes = await assemble(`(module (memory 1)\n${mathFunctions([...FNS, "pow"]).join("\n")}\n${exports.join("\n")})`);
  const api = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object, i: object) => { exports: unknown } } }).WebAssembly;
  return new api.Instance(new api.Module(bytes), {}).exports as never;
}

/** Arguments for `fn`: magnitudes log-uniform over its useful range, both signs where defined. */
function args(fn: string, rand: () => number, n: number): number[] {
  const [lo, hi, positive] = fn === "log" ? [-300, 300, true] : fn === "log1p" ? [-12, 12, false] : fn === "sin" || fn === "cos" ? [-8, 5, false] : fn === "exp" || fn === "expm1" ? [-12, 2.85, false] : fn === "sinh" || fn === "cosh" ? [-12, 2.85, false] : [-12, 1.5, false];
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const m = 10 ** (lo + (hi - lo) * rand());
    const x = fn === "log1p" && !positive && rand() < 0.5 ? -Math.min(m, 1 - 1e-12) : positive || rand() < 0.5 ? m : -m;
    out.push(x);
  }
  return out;
}

/** Largest error allowed, in ulps: fdlibm's own bound for exp, log, sin, cos; a few for the corrections through them. */
const LIMIT: Record<string, number> = { exp: 1, log: 1, sin: 2, cos: 2, sign: 0, log1p: 4, expm1: 4, tanh: 4, sinh: 4, cosh: 3, erf: 4, pow: 4 };

describe("wasm math functions", () => {
  it.each([...FNS])("%s agrees with Math within its ulp limit, special values exactly", async (fn) => {
    const m = await instance();
    const rand = prng(FNS.indexOf(fn) + 17);
    let worst = 0;
    for (const x of args(fn, rand, 4000)) worst = Math.max(worst, ulps(m[fn]!(x), REF[fn]!(x)));
    expect(worst, `${fn}: worst ulps`).toBeLessThanOrEqual(LIMIT[fn]!);
    for (const x of [0, -0, Infinity, -Infinity, NaN, 1, -1, 709.78, -745.2, 710, 1e-300, 5e-324]) {
      const a = m[fn]!(x);
      const b = REF[fn]!(x);
      expect(ulps(a, b), `${fn}(${x}) = ${a}, Math gives ${b}`).toBeLessThanOrEqual(Number.isFinite(b) && b !== 0 ? LIMIT[fn]! : 0);
    }
  });
  it("pow agrees with Math.pow for integer and fractional exponents", async () => {
    const m = await instance();
    const rand = prng(5);
    let worst = 0;
    for (let k = 0; k < 4000; k++) {
      const x = (rand() < 0.2 ? -1 : 1) * 10 ** (4 * rand() - 2);
      const y = rand() < 0.5 ? Math.round(rand() * 20 - 10) : rand() * 6 - 3;
      // exp(y log x): the rounding of y ln x, an ulp of a number of size |y ln x|, is that many ulps of the result
      const bound = Number.isInteger(y) ? LIMIT.pow! : LIMIT.pow! + Math.abs(y * Math.log(Math.abs(x)));
      worst = Math.max(worst, ulps(m.pow!(x, y), Math.pow(x, y)) / bound);
    }
    expect(worst).toBeLessThanOrEqual(1);
    for (const [x, y] of [[0, 2], [-0, 3], [0, -1], [-2, 0.5], [2, NaN], [NaN, 0], [Infinity, -1], [-8, 3]] as const) expect(ulps(m.pow!(x, y), Math.pow(x, y)), `pow(${x}, ${y})`).toBe(0);
  });
});
