/**
 * Fuzzing the whole compiler. fast-check mutates the library's own specs: it drops and duplicates
 * tokens, swaps indices, renames references, changes operators, deletes or reorders steps, and
 * breaks fields. It also builds random well-formed specs from a small grammar. Every case must end
 * in one of two ways. Either compile() returns a kernel whose gradients pass the checks, or it
 * throws a SpecError. Any other exception fails the test. So does a hang: every rewrite loop has a
 * limit, and the test has a timeout.
 *
 * Gradients are checked in two ways. For every build, the reference interpreter checks the naive
 * backward against finite differences; compile() has already held the fused backward to the naive
 * one. For a sample of builds, the emitted module is imported and runs the full kernel checks.
 */
import { gradKey } from "../compiler/ir/evaluate.js";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compile, type Compiled } from "../compiler/driver.js";
import { SpecError, type SpecObject } from "../compiler/parse/check.js";
import { tokenize } from "../compiler/parse/expression.js";
import { interpretBackward, interpretForward } from "../compiler/ir/interpret.js";
import { shapeOf, tensorOf, type Program } from "../compiler/ir/program.js";
import { prng } from "../compiler/ir/random.js";
import { checkModule, lengthOf, type Kernels } from "./harness.js";

const root = join(import.meta.dirname, "..");
const specDir = join(root, "specs");
const library: SpecObject[] = await Promise.all(
  readdirSync(specDir)
    .filter((f) => f.endsWith(".spec.ts"))
    .sort()
    .map(async (f) => (await import(join(specDir, f))).default as SpecObject),
);
mkdirSync(join(root, "test/.out"), { recursive: true });
const work = mkdtempSync(join(root, "test/.out/fuzz-"));

type Outcome = { kind: "built"; compiled: Compiled } | { kind: "spec-error" };

/** Compiles; a SpecError is an accepted outcome, anything else is rethrown with the spec attached. */
async function attempt(spec: unknown, format = false): Promise<Outcome> {
  try {
    return { kind: "built", compiled: await compile(spec, { source: "fuzz.json", format }) };
  } catch (e) {
    if (e instanceof SpecError) {
      // a spec error always says where: every problem has a message
      expect(e.problems.length).toBeGreaterThan(0);
      for (const p of e.problems) expect(p.message.length).toBeGreaterThan(0);
      return { kind: "spec-error" };
    }
    throw new Error(`not a spec error for ${JSON.stringify(spec)}: ${(e as Error).stack}`);
  }
}

/**
 * Naive backward against central differences, all in the interpreter, at small random sizes.
 * Points where the forward or a gradient is not finite (a mutated spec may take log(-1)) are
 * skipped; so are points where the differences do not settle (a kink of abs).
 */
function interpreterGradientCheck(p: Program, c: Compiled, seed: number): void {
  // stop(...) changes the gradient on purpose: it is the derivative of the function the spec would
  // be without the stopped term, not of its value (the fused form is still held to the naive one)
  if (p.steps.some((s) => s.text.includes("stop("))) return;
  const rand = prng(seed);
  const sizes = Object.fromEntries(p.sizes.map((s) => [s, 1 + Math.floor(rand() * 3)]));
  const constants = Object.fromEntries(p.constants.map((k) => [k.name, k.value]));
  const inputs = Object.fromEntries(p.inputs.map((t) => [t.name, Float64Array.from({ length: lengthOf(p, t.name, sizes) }, () => 0.3 + rand())]));
  const outLen = shapeOf(p, tensorOf(p, p.output)).reduce((a, s) => a * sizes[s]!, 1);
  const w = Float64Array.from({ length: outLen }, () => rand() * 2 - 1);
  const loss = (ins: Record<string, Float64Array>) => {
    const o = interpretForward(p, ins, sizes, constants).get(p.output)!.data;
    return o.reduce((s, v, i) => s + v * w[i]!, 0);
  };
  if (!Number.isFinite(loss(inputs))) return;
  // rounding of the loss, amplified by 1/h: a term of 2^81 hides every slope
  const terms = interpretForward(p, inputs, sizes, constants).get(p.output)!.data.reduce((s, v, i) => s + Math.abs(v * w[i]!), 0);
  const roundoff = (10 * Number.EPSILON * terms) / 5e-5;
  const all = interpretBackward(p, c.backward, interpretForward(p, inputs, sizes, constants), sizes, constants, w);
  for (const t of p.inputs) {
    const g = all.get(gradKey(t.name))!.data;
    if (!g.every(Number.isFinite)) continue;
    const x = inputs[t.name]!;
    const v = Float64Array.from({ length: x.length }, () => rand() * 2 - 1);
    const at = (h: number) => loss({ ...inputs, [t.name]: x.map((xi, i) => xi + h * v[i]!) });
    const fd = (h: number) => (at(h) - at(-h)) / (2 * h);
    const a = fd(1e-4);
    const b = fd(5e-5);
    if (!Number.isFinite(a) || Math.abs(a - b) > 1e-5 * (1 + Math.abs(a))) continue;
    let an = 0;
    let scale = 0;
    for (let i = 0; i < x.length; i++) {
      an += g[i]! * v[i]!;
      scale += Math.abs(g[i]! * v[i]!);
    }
    expect(Math.abs(an - b), `d${t.name} of ${p.name}: analytic ${an}, finite differences ${b}`).toBeLessThanOrEqual(1e-5 * (scale + Math.abs(b)) + 1e-8 + roundoff);
  }
}

// ---------------------------------------------------------------------------------------------
// Mutations of library specs

type Mutation = (spec: SpecObject, rand: () => number) => unknown;
const pick = <T,>(xs: readonly T[], rand: () => number): T => xs[Math.floor(rand() * xs.length)]!;

/** Applies `f` to the tokens of one random step (the text is rebuilt with single spaces). */
function onTokens(f: (toks: string[], rand: () => number, spec: SpecObject) => string[]): Mutation {
  return (spec, rand) => {
    const k = Math.floor(rand() * spec.steps.length);
    let toks: string[];
    try {
      toks = tokenize(spec.steps[k]!).filter((t) => t.kind !== "end").map((t) => t.text);
    } catch {
      return spec;
    }
    const steps = [...spec.steps];
    steps[k] = f(toks, rand, spec).join(" ");
    return { ...spec, steps };
  };
}

const names = (spec: SpecObject) => [...spec.inputs.map((d) => d.split("[")[0]!), ...spec.steps.map((s) => s.split(/[[=\s]/)[0]!)];

const MUTATIONS: Record<string, Mutation> = {
  "drop a token": onTokens((t, r) => t.filter((_, i) => i !== Math.floor(r() * t.length))),
  "duplicate a token": onTokens((t, r) => {
    const i = Math.floor(r() * t.length);
    return [...t.slice(0, i + 1), t[i]!, ...t.slice(i + 1)];
  }),
  "swap two tokens": onTokens((t, r) => {
    const a = Math.floor(r() * t.length);
    const b = Math.floor(r() * t.length);
    const u = [...t];
    [u[a], u[b]] = [u[b]!, u[a]!];
    return u;
  }),
  "replace an index": onTokens((t, r, s) => {
    const letters = [...Object.keys(s.indices), "z"];
    const at = t.map((x, i) => (x in s.indices ? i : -1)).filter((i) => i >= 0);
    if (!at.length) return t;
    const u = [...t];
    u[pick(at, r)] = pick(letters, r);
    return u;
  }),
  "rename a reference": onTokens((t, r, s) => {
    const ns = names(s);
    const at = t.map((x, i) => (ns.includes(x) ? i : -1)).filter((i) => i >= 0);
    if (!at.length) return t;
    const u = [...t];
    u[pick(at, r)] = pick([...ns, "nope"], r);
    return u;
  }),
  "change an operator": onTokens((t, r) => {
    const ops = ["+", "-", "*", "/", "^"];
    const at = t.map((x, i) => (ops.includes(x) ? i : -1)).filter((i) => i >= 0);
    if (!at.length) return t;
    const u = [...t];
    u[pick(at, r)] = pick([...ops, ",", "(", "="], r);
    return u;
  }),
  "wrap in a function": onTokens((t, r) => {
    const eq = t.indexOf("=");
    return [...t.slice(0, eq + 1), pick(["exp", "log", "sqrt", "tanh", "abs", "stop", "sigmoid", "sin"], r), "(", ...t.slice(eq + 1), ")"];
  }),
  "wrap in a reduction": onTokens((t, r, s) => {
    const eq = t.indexOf("=");
    return [...t.slice(0, eq + 1), pick(["sum", "mean", "max"], r), "(", ...t.slice(eq + 1), ",", pick(Object.keys(s.indices), r), ")"];
  }),
  "delete a step": (s, r) => ({ ...s, steps: s.steps.filter((_, i) => i !== Math.floor(r() * s.steps.length)) }),
  "swap two steps": (s, r) => {
    const steps = [...s.steps];
    const a = Math.floor(r() * steps.length);
    const b = Math.floor(r() * steps.length);
    [steps[a], steps[b]] = [steps[b]!, steps[a]!];
    return { ...s, steps };
  },
  "change the output": (s, r) => ({ ...s, output: pick([...names(s), "nothing", ""], r) }),
  "break a field": (s, r) => {
    const field = pick(["name", "indices", "inputs", "constants", "steps", "output", "description"] as const, r);
    const value = pick([undefined, null, 3, "x", [], {}, ["a[b]"], { n: 3 }, Number.NaN], r);
    return { ...s, [field]: value };
  },
  "drop an input": (s, r) => ({ ...s, inputs: s.inputs.filter((_, i) => i !== Math.floor(r() * s.inputs.length)) }),
  "change a constant": (s, r) => ({ ...s, constants: { ...(s.constants ?? {}), [pick(["eps", "N", "exp", "k2"], r)]: pick([1e-3, Infinity, -1, 0], r) } }),
};

// ---------------------------------------------------------------------------------------------
// Random well-formed specs

const LETTERS = { n: "N", d: "D" } as const;
/** Expressions over x[n,d], g[d] and earlier steps; `free` is what the left-hand side allows. */
function expr(refs: readonly string[]): fc.Arbitrary<string> {
  const leaf = fc.oneof(fc.constantFrom(...refs), fc.constantFrom("2", "0.5", "eps"));
  return fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      leaf,
      fc.tuple(tie("e"), fc.constantFrom("+", "-", "*", "/"), tie("e")).map(([a, o, b]) => `(${a} ${o} ${b})`),
      // functions on bounded or positive arguments, so that a random spec stays finite
      fc.tuple(fc.constantFrom("exp", "tanh", "sigmoid", "sin", "sqrt", "log"), tie("e")).map(([f, a]) =>
        f === "sqrt" || f === "log" ? `${f}(1 + (${a})^2)` : f === "exp" ? `exp(-(${a})^2)` : f === "sin" ? `sin(tanh(${a}))` : `${f}(${a})`,
      ),
      fc.tuple(tie("e"), fc.constantFrom("2", "-1", "-2")).map(([a, k]) => (k.startsWith("-") ? `(1 + (${a})^2)^${k}` : `(${a})^${k}`)),
    ),
  })).e;
}

const randomSpec: fc.Arbitrary<SpecObject> = fc
  .tuple(
    expr(["x[n,d]", "g[d]"]),
    fc.constantFrom("sum", "mean"),
    expr(["x[n,d]", "a[n,d]", "g[d]"]),
    expr(["a[n,d]", "r[d]", "x[n,d]"]),
  )
  .map(([a, red, rb, y]) => ({
    name: "random",
    indices: LETTERS,
    inputs: ["x[n,d]", "g[d]"],
    constants: { eps: 0.1 },
    steps: [`a[n,d] = ${a}`, `r[d] = ${red}(${rb}, n)`, `y[n,d] = ${y}`],
    output: "y",
  }));

describe("fuzzing the compiler", () => {
  it("mutated library specs either build with correct gradients or get a spec error", async () => {
    const counts = { built: 0, "spec-error": 0 };
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: library.length - 1 }), fc.constantFrom(...Object.keys(MUTATIONS)), fc.integer(), fc.integer({ min: 1, max: 2 }), async (k, m, seed, times) => {
        const rand = prng(seed);
        let spec: unknown = library[k]!;
        for (let i = 0; i < times && typeof spec === "object" && spec !== null && Array.isArray((spec as SpecObject).steps); i++) spec = MUTATIONS[m]!(spec as SpecObject, rand);
        const out = await attempt(spec);
        counts[out.kind]++;
        if (out.kind === "built") interpreterGradientCheck(out.compiled.program, out.compiled, seed);
      }),
      { numRuns: 2500 },
    );
    // the mutations must exercise both outcomes, or they test nothing
    expect(counts.built).toBeGreaterThan(100);
    expect(counts["spec-error"]).toBeGreaterThan(500);
  });

  it("random well-formed specs build, and their kernels pass the gradient checks", async () => {
    let imported = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(randomSpec, fc.integer(), async (spec, seed) => {
        const out = await attempt(spec, true);
        // the grammar can write 2/(2 - 2): that is a spec error, and rare
        refused += out.kind === "built" ? 0 : 1;
        if (out.kind !== "built") return;
        interpreterGradientCheck(out.compiled.program, out.compiled, seed);
        // a sample of the emitted modules runs the full kernel checks
        if (imported < 25 && seed % 4 === 0) {
          const file = join(work, `random${imported++}.ts`);
          writeFileSync(file, out.compiled.code);
          const mod = (await import(file)) as Kernels;
          const p = out.compiled.program;
          const rand = prng(seed);
          const sizes = { N: 1 + Math.floor(rand() * 4), D: 1 + Math.floor(rand() * 3) };
          const inputs = Object.fromEntries(p.inputs.map((t) => [t.name, Float64Array.from({ length: lengthOf(p, t.name, sizes) }, () => 0.3 + rand())]));
          const outs = mod.forward(inputs, sizes);
          const y = outs[p.output] as Float64Array;
          if (y.every(Number.isFinite)) checkModule(mod, p, sizes, inputs, rand, { fused: 1e-8, fd: 1e-5 });
        }
      }),
      { numRuns: 400 },
    );
    expect(refused).toBeLessThan(20);
  });
});
