/**
 * Real layers' constructs (issue 13; CONTRACT §4.1, §4.2, the gather of §4.3, §4.4), from the spec
 * to the naive and fused derivations, judged with the reference interpreter: both backwards against
 * each other and against finite differences of the interpreted forward at random sizes (N = 1
 * included) and points, exact values at kinks and ties (where finite differences judge nothing),
 * gathers with repeated and out-of-range ids, and several outputs with one `dout` left out.
 * The kernels come later (the loop IR lowers `where` and `delta`); until then `compile` refuses
 * these specs with a SpecError, which the last test holds.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { compile, derive, type Derived } from "../compiler/driver.js";
import { constantsOf, derived, gradients, lengthOf, SPECS } from "./layers-cases.js";
import { explain } from "../compiler/api.js";
import { run } from "../compiler/cli.js";
import katex from "katex";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SpecError } from "../compiler/parse/check.js";
import { interpretForward, randomInputs } from "../compiler/ir/interpret.js";
import { isDifferentiable } from "../compiler/ir/program.js";
import { prng } from "../compiler/ir/random.js";
import { erf } from "../compiler/ir/build.js";
import { collect, print } from "../compiler/ir/expr.js";
import { addCount, expectFewSkips, fuzzRuns, settle, type FdCount } from "./harness.js";

/**
 * One random point: both backwards agree, and each differentiable input's gradient matches the
 * directional derivative of `sum_o dout_o · o` (finite differences that must settle first).
 * `leaveOut` drops that output's `dout`: its gradient is then zero.
 */
function checkPoint(d: Derived, sizes: Record<string, number>, rand: () => number, leaveOut?: string): FdCount {
  const p = d.program;
  const count: FdCount = { judged: 0, skipped: 0 };
  const inputs = randomInputs(p, sizes, rand, () => rand() * 4 - 2);
  const dout: Record<string, Float64Array> = {};
  for (const o of p.outputs) if (o !== leaveOut) dout[o] = Float64Array.from({ length: lengthOf(p, o, sizes) }, () => rand() * 2 - 1);
  const { naive, fused, noise } = gradients(d, inputs, sizes, dout);
  const loss = (ins: Record<string, Float64Array | Int32Array>) => {
    const t = interpretForward(p, ins, sizes, constantsOf(p));
    let s = 0;
    let terms = 0;
    for (const [o, w] of Object.entries(dout)) {
      const v = t.get(o)!.data;
      for (let i = 0; i < v.length; i++) {
        s += w[i]! * v[i]!;
        terms += Math.abs(w[i]! * v[i]!);
      }
    }
    return { s, terms };
  };
  const terms = loss(inputs).terms;
  let largest = 1e-300;
  for (const g of naive.values()) for (const v of g) largest = Math.max(largest, Math.abs(v));
  for (const [name, g] of naive) {
    const f = fused.get(name)!;
    expect(g.length).toBe(lengthOf(p, name, sizes));
    for (let i = 0; i < g.length; i++) {
      expect(Number.isFinite(g[i]!), `naive d${name}[${i}] finite`).toBe(true);
      const tol = 1e-12 * largest + 64 * Number.EPSILON * noise.get(name)![i]!;
      expect(Math.abs(f[i]! - g[i]!), `fused d${name}[${i}] = ${f[i]} against naive ${g[i]}`).toBeLessThanOrEqual(tol);
    }
    const x = inputs[name] as Float64Array;
    const v = Float64Array.from({ length: x.length }, () => rand() * 2 - 1);
    let an = 0;
    let scale = 0;
    for (let i = 0; i < x.length; i++) {
      an += g[i]! * v[i]!;
      scale += Math.abs(g[i]! * v[i]!);
    }
    const fd = settle((h) => loss({ ...inputs, [name]: x.map((xi, i) => xi + h * v[i]!) }).s, terms, 1e-7 * scale);
    if (!fd) {
      count.skipped++;
      continue;
    }
    count.judged++;
    expect(Math.abs(fd.fd - an), `d${name} against finite differences (fd ${fd.fd}, analytic ${an})`).toBeLessThanOrEqual(1e-7 * scale + fd.noise);
  }
  return count;
}

describe("each construct: naive and fused backward against finite differences", () => {
  for (const key of Object.keys(SPECS) as (keyof typeof SPECS)[]) {
    it(key, async () => {
      const d = await derived(key);
      const p = d.program;
      const count: FdCount = { judged: 0, skipped: 0 };
      fc.assert(
        fc.property(fc.tuple(...p.sizes.map(() => fc.integer({ min: 1, max: 3 }))), fc.integer(), (dims, seed) => {
          const sizes = Object.fromEntries(p.sizes.map((s, k) => [s, dims[k]!]));
          addCount(count, checkPoint(d, sizes, prng(seed)));
        }),
        { numRuns: 12, examples: [[p.sizes.map(() => 1), 1]] },
      );
      expectFewSkips(count, key);
    });
  }
});

/** The gradients at one point given by name, with dout = 1 everywhere unless given. */
async function at(key: keyof typeof SPECS, sizes: Record<string, number>, inputs: Record<string, number[]>, dout?: Record<string, number[]>) {
  const d = await derived(key);
  const p = d.program;
  const typed = Object.fromEntries(p.inputs.map((t) => [t.name, t.kind === "int" ? Int32Array.from(inputs[t.name]!) : Float64Array.from(inputs[t.name]!)]));
  const ups = Object.fromEntries(p.outputs.map((o) => [o, Float64Array.from(dout?.[o] ?? Array.from({ length: lengthOf(p, o, sizes) }, () => 1))]));
  const { naive, fused, tensors } = gradients(d, typed, sizes, ups);
  // the two derivations agree at kinks too, to rounding: a convention that differs at a kink or a
  // tie is off by a whole share of the gradient, not by ulps (the fused cross-entropy divides by the
  // cached exp(lse - m), the naive one by the sum it came from)
  for (const [name, g] of naive) {
    const f = fused.get(name)!;
    g.forEach((v, i) => {
      if (!Object.is(f[i], v)) expect(Math.abs(f[i]! - v), `fused d${name}[${i}] = ${f[i]}, naive ${v}`).toBeLessThanOrEqual(4 * Number.EPSILON * Math.abs(v));
    });
  }
  return { grad: (name: string) => [...naive.get(name)!], value: (name: string) => [...tensors.get(name)!.data] };
}

describe("kinks and ties, exactly (PyTorch's conventions)", () => {
  it("relu'(0) = 0, relu' = 1 above and 0 below", async () => {
    const r = await at("relu", { N: 1, D: 4 }, { x: [0, -0, 2, -3] });
    expect(r.grad("x")).toEqual([0, 0, 1, 0]);
    expect(r.value("y")).toEqual([0, 0, 2, 0]);
  });
  it("leaky relu and elu take the else branch at 0, whole", async () => {
    expect((await at("leaky", { N: 3 }, { x: [0, 1, -1] })).grad("x")).toEqual([0.01, 1, 0.01]);
    const e = await at("elu", { N: 3 }, { x: [0, 1, -1] });
    expect(e.grad("x")).toEqual([1, 1, Math.exp(-1)]);
    expect(e.value("y")).toEqual([0, 1, Math.expm1(-1)]);
  });
  it("abs'(0) = 0 and sign' = 0; maximum/minimum split a tie in half; where never NaN in the branch not taken", async () => {
    // y = max(a,b)*min(a,2b) + |a-b|, z = where(a != b, log|a-b|, 0) + sign(a)*b, dout = 1 on both
    const r = await at("choices", { N: 3 }, { a: [1, 0, 2], b: [1, 0, 3] });
    // n=0: a = b = 1: max = 1 (half to each), min(1, 2) = a; |a-b|' = 0; z's where takes 0
    //   da = 0.5*min + max*1 + 0 + 0 = 1.5; db = 0.5*min + 0 + sign(a) = 0.5 + 1 = 1.5
    // n=1: a = b = 0: max = 0, min(0, 0) = 0 is a tie too; sign(0) = 0: da = db = 0
    // n=2: a = 2, b = 3: max = b, min = a: da = b - 1 + 1/(a-b) = 3 - 1 - 1 = 1; db = a + 1 - 1/(a-b) + 1 = 2 + 1 + 1 + 1 = 5
    expect(r.grad("a")).toEqual([1.5, 0, 1]);
    expect(r.grad("b")).toEqual([1.5, 0, 5]);
  });
  it("maximum and minimum of huge or NaN values: the tie's value is exact, NaN propagates", async () => {
    const r = await at("choices", { N: 3 }, { a: [1e308, NaN, -1e308], b: [1e308, 1, -1e308] });
    const y = r.value("y");
    // y = max(a,b)*min(a,2b) + |a-b|: at a = b = 1e308, max = 1e308 and min(1e308, Inf) = 1e308
    expect(y[0]).toBe(Infinity); // 1e308 * 1e308 overflows in the product, as it must
    expect(Number.isNaN(y[1]!)).toBe(true);
    const d = await derived("choices");
    const m = await derive({ ...SPECS.choices, name: "m", steps: ["y[n] = maximum(a[n], b[n])", "z[n] = minimum(a[n], b[n])"] });
    const t = interpretForward(m.program, { a: Float64Array.from([1e308, NaN, -1e308]), b: Float64Array.from([1e308, 1, -1e308]) }, { N: 3 }, {});
    expect([...t.get("y")!.data]).toEqual([1e308, NaN, -1e308]);
    expect([...t.get("z")!.data]).toEqual([1e308, NaN, -1e308]);
    expect(d.program.outputs).toEqual(["y", "z"]);
  });
  it("max and min over an index split the gradient evenly among the elements that attain them", async () => {
    // y = m*k + max(x - m, c) with m = max_c x, k = min_c x^2
    const r = await at("maxmin", { N: 1, C: 4 }, { x: [3, 1, 3, -1] });
    // m = 3 (two ties), k = 1 (x^2 = 1 at c = 1 and c = 3), max(x - m) = 0 (ties at 0 and 2)
    // d/dx: m-part k*[x = m]/2 = 0.5 at c = 0, 2; k-part m*2x*[x^2 = k]/2 = 3*x at c = 1, 3;
    // max(x - m): [x - m = 0]/2 = 0.5 at c = 0, 2, and through m the same taken back: 0
    expect(r.grad("x")).toEqual([0.5, 3, 0.5, -3]);
  });
  it("huber: the whole gradient to the branch chosen at |r| = delta; none for the nograd target", async () => {
    const d = await derived("huber");
    expect(d.backward.gradients.map((g) => g.input.name)).toEqual(["x"]);
    const r = await at("huber", { N: 1, D: 4 }, { x: [1, -1, 0, 3], t: [0, 0, 0, 0] });
    // |r| <= 1 takes 0.5 r^2 (derivative r), beyond delta*sign(r); the mean divides by 4
    expect(r.grad("x")).toEqual([0.25, -0.25, 0, 0.25]);
  });
  it("erf, log1p, expm1, softplus: values and derivatives, finite where the function is", async () => {
    expect(erf(0)).toBe(0);
    for (const [x, want] of [
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [-1.5, -0.9661051464753108],
      [5, 0.9999999999984626],
    ] as const)
      expect(Math.abs(erf(x) - want), `erf(${x})`).toBeLessThanOrEqual(4 * Number.EPSILON * Math.abs(want));
    const r = await at("functions", { N: 4 }, { x: [0, 400, -400, 1] });
    const g = r.grad("x");
    // at 0: erf' = 2/sqrt(pi), log1p(x^2)' = 0, expm1(x/2)' = 1/2, softplus(3x)' = 3/2, gelu' = 1/2
    expect(Math.abs(g[0]! - (2 / Math.sqrt(Math.PI) + 0.5 + 1.5 + 0.5))).toBeLessThanOrEqual(1e-15);
    // softplus(1200) and its derivative 3 are finite; expm1(200)' = e^200/2 is finite too
    for (const v of g) expect(Number.isFinite(v)).toBe(true);
    expect(r.value("y").every(Number.isFinite)).toBe(true);
    expect(Math.abs(g[2]! - (-800 / (1 + 160000) + Math.exp(-200) / 2))).toBeLessThanOrEqual(1e-15);
  });
});

describe("inputs without gradients, gathers and several outputs", () => {
  it("int and nograd inputs get no gradient and no backward statement", async () => {
    for (const key of ["xent", "embedding", "dropout", "huber"] as const) {
      const d = await derived(key);
      const none = d.program.inputs.filter((t) => !isDifferentiable(t)).map((t) => t.name);
      expect(none.length).toBeGreaterThan(0);
      for (const n of none) expect(d.backward.gradients.some((g) => g.input.name === n)).toBe(false);
      const targets = d.backward.blocks.flatMap((b) => b.statements.map((s) => s.target.name.replace(/#\d+$/, "")));
      for (const n of none) expect(targets, `${key}: no statement computes d${n}`).not.toContain(n);
    }
    // dropout: the step of the mask alone needs no gradient either
    const d = await derived("dropout");
    expect(d.backward.blocks.map((b) => b.step?.name)).toEqual(["y"]);
  });
  it("a gather's gradient scatters and adds: repeated ids add up", async () => {
    // xent: loss = mean(lse - z[n, label[n]]): dz = (softmax - onehot)/N
    const r = await at("xent", { N: 2, C: 3 }, { z: [0, 0, 0, 1, 2, 3], label: [2, 2] });
    const g = r.grad("z");
    const e = [1, 2, 3].map((v) => Math.exp(v - 3));
    const s = e[0]! + e[1]! + e[2]!;
    const want = [1 / 3, 1 / 3, 1 / 3 - 1, e[0]! / s, e[1]! / s, e[2]! / s - 1].map((v) => v / 2);
    g.forEach((v, i) => expect(Math.abs(v - want[i]!), `dz[${i}]`).toBeLessThanOrEqual(1e-15));
    // embedding with every id the same: dE[id, d] is the sum over all (b, s) of dh, the rest 0
    const d = await derived("embedding");
    const sizes = { B: 2, S: 2, V: 3, D: 2 };
    const inputs = { E: Float64Array.from([1, 2, 3, 4, 5, 6]), ids: Int32Array.from([1, 1, 1, 1]), g: Float64Array.from([1, 1]) };
    const dout = { y: Float64Array.from({ length: 8 }, (_, i) => i + 1) };
    const { naive } = gradients(d, inputs, sizes, dout);
    // y = h - mean_d h with g = 1: dh[b,s,d] = dy - mean_d dy = -0.5, 0.5 per pair
    expect([...naive.get("E")!]).toEqual([0, 0, -2, 2, 0, 0]);
    const mixed = gradients(d, { ...inputs, ids: Int32Array.from([0, 2, 0, 2]) }, sizes, dout);
    expect([...mixed.naive.get("E")!]).toEqual([-1, 1, 0, 0, -1, 1]);
  });
  it("a gather prints as it is written, and the printed step parses back to the same node", async () => {
    for (const key of ["embedding", "xent"] as const) {
      const d = await derived(key);
      const st = d.program.steps.find((s) => collect(s.rhs, (x) => x.kind === "delta").length > 0)!;
      const text = print(st.rhs, d.program.letters);
      expect(text).toContain(key === "embedding" ? "E[ids[b,s],d]" : "z[n,label[n]]");
      expect(text).not.toContain("delta");
      const steps = SPECS[key]!.steps.map((s) => (s === st.text ? `${s.slice(0, s.indexOf("="))}= ${text}` : s));
      const again = await derive({ ...SPECS[key], steps });
      expect(again.program.steps.find((s) => s.name === st.name)!.rhs).toBe(st.rhs);
    }
  });
  it("out-of-range ids are a RangeError naming the input and the element, before anything is computed", async () => {
    const d = await derived("embedding");
    const sizes = { B: 1, S: 2, V: 3, D: 2 };
    const base = { E: new Float64Array(6), g: new Float64Array(2) };
    const run = (ids: number[]) => () => interpretForward(d.program, { ...base, ids: Int32Array.from(ids) }, sizes, {});
    expect(run([0, 3])).toThrow(RangeError);
    expect(run([0, 3])).toThrow("ids[0,1] is 3, outside [0, V) = [0, 3)");
    expect(run([-1, 0])).toThrow("ids[0,0] is -1, outside [0, V)");
    expect(run([2, 0])).not.toThrow();
  });
  it("several outputs: dout by name, and an output left out has zero gradient", async () => {
    const d = await derived("cell");
    expect(d.program.outputs).toEqual(["h", "c"]);
    expect(d.backward.upstreams.map((u) => u.output)).toEqual(["h", "c"]);
    const p = d.program;
    const sizes = { N: 2, D: 3 };
    const rand = prng(7);
    const inputs = randomInputs(p, sizes, rand, () => rand() * 2 - 1);
    const dh = Float64Array.from({ length: 6 }, () => rand() - 0.5);
    const left = gradients(d, inputs, sizes, { h: dh });
    const zero = gradients(d, inputs, sizes, { h: dh, c: new Float64Array(6) });
    for (const n of ["x", "c0", "w"]) {
      expect([...left.naive.get(n)!]).toEqual([...zero.naive.get(n)!]);
      expect([...left.fused.get(n)!]).toEqual([...zero.fused.get(n)!]);
    }
    // and each output's dout counts: with dc alone, dc0 = dc * f
    const only = gradients(d, inputs, sizes, { c: Float64Array.from({ length: 6 }, () => 1) });
    const f = only.tensors.get("f")!.data;
    only.naive.get("c0")!.forEach((v, i) => expect(v).toBe(f[i]));
    for (let k = 0; k < 6; k++) addCount({ judged: 0, skipped: 0 }, checkPoint(d, sizes, prng(k), k % 2 ? "h" : "c"));
  });
});

describe("misuse is a spec error that says what and where", () => {
  const base = { name: "bad", indices: { n: "N", c: "C" }, inputs: ["x[n,c]", "label[n]: int", "t[n,c]: nograd"], output: "y" };
  const message = async (spec: unknown) => {
    try {
      await derive(spec);
    } catch (e) {
      if (e instanceof SpecError) return e.message;
      throw e;
    }
    throw new Error("no spec error");
  };
  const CASES: [string, unknown, string][] = [
    ["comparison outside where", { ...base, steps: ["y[n,c] = x[n,c] > 0"] }, `step 1 "y[n,c] = x[n,c] > 0": a comparison ('>') is allowed only as the first argument of where(condition, a, b)`],
    ["comparison as a where branch", { ...base, steps: ["y[n,c] = where(x[n,c] > 0, x[n,c] < 1, 0)"] }, "a comparison ('<') is allowed only as the first argument of where"],
    ["where without a comparison", { ...base, steps: ["y[n,c] = where(x[n,c], 1, 0)"] }, "the first argument of where must be a comparison, like where(x[n] > 0, a, b)"],
    ["chained comparison", { ...base, steps: ["y[n,c] = where(0 < x[n,c] < 1, 1, 0)"] }, "comparisons do not chain"],
    ["maximum with one argument", { ...base, steps: ["y[n,c] = maximum(x[n,c])"] }, "maximum(a, b) takes 2 arguments, got 1"],
    ["int input in arithmetic", { ...base, steps: ["y[n,c] = x[n,c] * label[n]"] }, "'label' is an integer input: it can only stand in an index position"],
    ["gather by a float input", { ...base, steps: ["y[n,c] = x[n, t[n,c]]"] }, "'t[...]' in an index position of 'x' must be an integer input (declared like \"t[n]: int\"); 't' is a float tensor"],
    ["gather with a free index", { ...base, steps: ["y[n] = x[n, label[c]]"] }, "index 'c' has size C, but dimension 1 of 'label' has size N"],
    ["a gather on the left", { ...base, steps: ["y[label[n]] = x[n,n]"] }, "its index positions hold letters only"],
    ["unknown input kind", { ...base, inputs: ["x[n,c]: integer"], steps: ["y[n,c] = x[n,c]"] }, "unknown input kind 'integer'"],
    ["output list naming no step", { ...base, steps: ["y[n,c] = x[n,c]"], output: ["y", "q"] }, "output: 'q' is not a step"],
    ["empty output list", { ...base, steps: ["y[n,c] = x[n,c]"], output: [] }, "output: must be the name of a step, or a non-empty list"],
    // ties are found by comparing the body with the max: a body of three terms rounds differently
    // where the factory orders them differently, so it must be a step of its own
    ["a gradient through max of a three-term body", { ...base, steps: ["y[n] = max(x[n,c] + x[n,c]^2 + exp(x[n,c]), c)"] }, "write a body that adds or multiplies more than two terms as a step of its own"],
  ];
  for (const [what, spec, want] of CASES)
    it(what, async () => {
      expect(await message(spec)).toContain(want);
    });

  it("explain writes the derivation of a spec with a gather, with its cost table", async () => {
    const { files } = await explain(SPECS.xent);
    const md = files["xent.md"]!;
    expect(md).toContain("label[n]: int");
    expect(md).toContain("\\delta_{c,\\,\\mathrm{label}_{n}}");
    expect(md).not.toContain("No kernels yet");
    expect(md).toContain("From `backpass stats`.");
    expect(files["xent.svg"]).toContain("<svg");
    await expect(explain(SPECS.relu)).resolves.toBeDefined();
  });

  it("explain's formulas render with KaTeX for every spec here (cases for where, a delta for a gather)", async () => {
    for (const [key, spec] of Object.entries(SPECS)) {
      const md = (await explain(spec)).files[`${spec.name}.md`]!;
      // display blocks and inline formulas outside code, as explain.test.ts reads them
      const text = md.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
      const fs: { tex: string; display: boolean }[] = [];
      const rest = text.replace(/\$\$\n?([\s\S]*?)\n?\s*\$\$/g, (_, tex: string) => {
        fs.push({ tex, display: true });
        return "";
      });
      for (const m of rest.matchAll(/\$([^$\n]+)\$/g)) fs.push({ tex: m[1]!, display: false });
      expect(fs.length, key).toBeGreaterThan(5);
      for (const f of fs) expect(() => katex.renderToString(f.tex, { displayMode: f.display, throwOnError: true, strict: "error" }), `${key}: ${f.tex}`).not.toThrow();
    }
  });

  it("the command line: explain writes the derivation of a spec with two outputs, and build writes its module", async () => {
    const root = join(import.meta.dirname, "..");
    mkdirSync(join(root, "test/.out"), { recursive: true });
    const dir = mkdtempSync(join(root, "test/.out/layers-"));
    try {
      writeFileSync(join(dir, "cell.json"), JSON.stringify(SPECS.cell));
      let stderr = "";
      const io = { cwd: dir, stdout: () => undefined, stderr: (s: string) => void (stderr += s) };
      expect(await run(["explain", "cell.json", "--out", "ex"], io)).toBe(0);
      const md = readFileSync(join(dir, "ex/cell.md"), "utf8");
      expect(md).toContain("output:    h, c");
      // both outputs are sinks of the graph, each with its upstream gradient
      const svg = readFileSync(join(dir, "ex/cell.svg"), "utf8");
      expect(svg).toContain(">dh<");
      expect(svg).toContain(">dc<");
      // and builds: forward returns both outputs
      expect(await run(["build", "cell.json", "--out", "out"], io)).toBe(0);
      expect(stderr).toBe("");
      expect(readFileSync(join(dir, "out/cell.ts"), "utf8")).toContain("return { h: h, c: c, cache };");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("compile builds every construct: where, int and nograd inputs, gathers, several outputs", async () => {
    // the whole module, double backward included (prettier's formatting is the CLI tests' and codegen's)
    const codes = new Map<string, string>();
    for (const key of Object.keys(SPECS)) {
      const { code } = await compile(SPECS[key], { format: false });
      expect(code, key).toContain("export function backwardFused(");
      expect(code, key).toContain("export function doubleBackwardFused(");
      codes.set(key, code);
    }
    expect(codes.get("embedding")).toContain("ids: Int32Array;");
  });
});

describe("random specs mixing the constructs", () => {
  // atoms over [n,c]; a gather x[n, lab[n]] broadcast along c; t is nograd, lab is int
  const atoms = ["x[n,c]", "y[n,c]", "w[c]", "t[n,c]", "x[n, lab[n]]", "0.5", "2"];
  const unary = ["relu", "abs", "tanh", "sigmoid", "erf", "softplus", "expm1", "sin"];
  const expr = fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constantFrom(...atoms),
      fc.tuple(fc.constantFrom("+", "-", "*"), tie("e"), tie("e")).map(([op, a, b]) => `(${a} ${op} ${b})`),
      fc.tuple(fc.constantFrom(...unary), tie("e")).map(([f, a]) => `${f}(${a})`),
      fc.tuple(fc.constantFrom("maximum", "minimum"), tie("e"), tie("e")).map(([f, a, b]) => `${f}(${a}, ${b})`),
      fc.tuple(fc.constantFrom("<", "<=", ">", ">=", "==", "!="), tie("e"), tie("e"), tie("e"), tie("e")).map(([op, l, r, a, b]) => `where(${l} ${op} ${r}, ${a}, ${b})`),
      fc.constantFrom("log1p(abs(x[n,c]))", "max(x[n,c], c)", "min(y[n,c], c)", "sum(x[n,c]*w[c], c)"),
      // a max over a computed body: its tie test needs the body to round the same wherever it is
      // written (two operands per sum or product), or the spec is refused
      fc.tuple(fc.constantFrom("max", "min"), tie("e")).map(([f, e]) => `${f}(${e} * x[n,c], c)`),
    ),
  })).e;

  it("derive either checks the derivation (the fused form verified against the naive one) or gives a spec error; derived gradients pass finite differences", async () => {
    const count: FdCount = { judged: 0, skipped: 0 };
    let built = 0;
    let refused = 0;
    const runs = fuzzRuns(40);
    await fc.assert(
      fc.asyncProperty(expr, expr, fc.integer(), async (a, b, seed) => {
        const spec = {
          name: "mix",
          indices: { n: "N", c: "C" },
          inputs: ["x[n,c]", "y[n,c]", "w[c]", "t[n,c]: nograd", "lab[n]: int"],
          steps: [`s[n,c] = ${a}`, `u[n] = sum(s[n,c]*(${b}), c)`, "o = sum(u[n]*u[n], n)"],
          output: ["o", "s"],
        };
        let d: Derived;
        try {
          d = await derive(spec);
        } catch (e) {
          if (!(e instanceof SpecError)) throw new Error(`not a spec error for ${JSON.stringify(spec.steps)}: ${(e as Error).stack}`);
          refused++;
          return;
        }
        built++;
        const rand = prng(seed);
        addCount(count, checkPoint(d, { N: 1 + Math.floor(rand() * 3), C: 1 + Math.floor(rand() * 3) }, rand));
      }),
      { numRuns: runs },
    );
    expect(built, `${built} built, ${refused} refused`).toBeGreaterThan(0.75 * runs);
    expectFewSkips(count, "random specs");
  });
});
