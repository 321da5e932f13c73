/**
 * Fuzzing the whole compiler. fast-check mutates the library's own specs: it drops and duplicates
 * tokens, swaps indices, renames references, changes operators, deletes or reorders steps, and
 * breaks fields. It also builds random well-formed specs from a small grammar. Every case must end
 * in one of two ways. Either compile() returns a kernel whose gradients pass the checks, or it
 * throws a SpecError. Any other exception fails the test. So does a hang: every rewrite loop has a
 * limit, and the test has a timeout.
 *
 * Gradients are checked in two ways. For every build, the reference interpreter checks the naive
 * backward against finite differences; the derivation has already held the fused backward to the
 * naive one. For a sample of builds, the emitted module is imported and runs the full kernel checks.
 * A quarter of the mutated specs are built whole (schedule, kernels, module); the others only
 * derived, where a mutation meets the checks, the rules and the limits.
 */
import { gradKey } from "../compiler/ir/evaluate.js";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { randomSizes } from "../compiler/ir/sizes.js";
import { join } from "node:path";
import { compile, derive, type Compiled, type Derived } from "../compiler/driver.js";
import { SpecError, type SpecObject } from "../compiler/parse/check.js";
import { tokenize } from "../compiler/parse/expression.js";
import { interpretBackward, interpretForward, randomInputs } from "../compiler/ir/interpret.js";
import { isDifferentiable, shapeOf, tensorOf, type Program } from "../compiler/ir/program.js";
import { prng } from "../compiler/ir/random.js";
import { addCount, checkModule, expectFewSkips, fuzzRuns, lengthOf, settle, type FdCount, type Kernels, loadModule } from "./harness.js";

const root = join(import.meta.dirname, "..");
const specDir = join(root, "specs");
const library: SpecObject[] = await Promise.all(
  readdirSync(specDir)
    .filter((f) => f.endsWith(".spec.ts"))
    .sort()
    .map(async (f) => (await import(join(specDir, f))).default as SpecObject),
);
/**
 * The specs `npm test` mutates: all but the GRU and LSTM cells, whose builds take about 1.5 s each
 * (15 times the median) and would take half the fuzzer's time for the same parser and rules; an
 * exploratory run (BACKPASS_FUZZ, `npm run fuzz`) mutates every spec.
 */
const SLOW = new Set(["gru", "lstm"]);
const mutated = process.env.BACKPASS_FUZZ ? library : library.filter((s) => !SLOW.has(s.name));
mkdirSync(join(root, "test/.out"), { recursive: true });
const work = mkdtempSync(join(root, "test/.out/fuzz-"));

type Outcome<C = Compiled> = { kind: "built"; compiled: C } | { kind: "spec-error" };

/** How many cases have been compiled: one in `DOUBLE_EVERY` also derives the double backward. */
let attempts = 0;
/** The double backward costs several times the rest of a build: it is fuzzed on a share of the cases. */
const DOUBLE_EVERY = 4;

/** Compiles; a SpecError is an accepted outcome, anything else is rethrown with the spec attached. */
async function attempt(spec: unknown, format = false): Promise<Outcome> {
  const doubleBackward = attempts++ % DOUBLE_EVERY === 0;
  return settled(() => compile(spec, { source: "fuzz.json", format, doubleBackward }), spec);
}

/** The derivation alone (parse, reverse mode, simplification, each checked): no schedule, no module. */
async function attemptDerive(spec: unknown): Promise<Outcome<Derived>> {
  return settled(() => derive(spec, { source: "fuzz.json" }), spec);
}

async function settled<C>(build: () => Promise<C>, spec: unknown): Promise<Outcome<C>> {
  try {
    return { kind: "built", compiled: await build() };
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
 * Naive backward against finite differences that have settled (harness.ts's `settle`), all in the
 * interpreter, at small random sizes. Points where the forward or a gradient is not finite (a
 * mutated spec may take log(-1)) are not judged, and are counted as `nonFinite`; points where the
 * differences do not settle (a kink of abs) are counted as `skipped`.
 */
function interpreterGradientCheck(p: Program, c: Derived, seed: number): FdCount & { nonFinite: number } {
  const count = { judged: 0, skipped: 0, nonFinite: 0 };
  // stop(...) changes the gradient on purpose: it is the derivative of the function the spec would
  // be without the stopped term, not of its value (the fused form is still held to the naive one)
  if (p.steps.some((s) => /\bstop\s*\(/.test(s.text))) return count;
  const rand = prng(seed);
  // computed extents (a convolution's `i: "L - K + 3"`) come with the sizes, drawn until positive
  let sizes: Record<string, number>;
  try {
    sizes = randomSizes(p, rand, 1, 3);
  } catch {
    return count; // a mutated extent that no sizes make positive: nothing to judge
  }
  const constants = Object.fromEntries(p.constants.map((k) => [k.name, k.value]));
  // integer inputs get valid ids (a library spec's gather)
  const inputs = randomInputs(p, sizes, rand, () => 0.3 + rand());
  const outLen = shapeOf(p, tensorOf(p, p.output)).reduce((a, s) => a * sizes[s]!, 1);
  const w = Float64Array.from({ length: outLen }, () => rand() * 2 - 1);
  const loss = (ins: Record<string, Float64Array | Int32Array>) => {
    const o = interpretForward(p, ins, sizes, constants).get(p.output)!.data;
    return o.reduce((s, v, i) => s + v * w[i]!, 0);
  };
  const forward = interpretForward(p, inputs, sizes, constants);
  // the size of the loss's terms, whose rounding the differences amplify: a term of 2^81 hides every slope
  const terms = forward.get(p.output)!.data.reduce((s, v, i) => s + Math.abs(v * w[i]!), 0);
  if (!Number.isFinite(terms)) {
    count.nonFinite += p.inputs.length;
    return count;
  }
  const all = interpretBackward(p, c.backward, forward, sizes, constants, w);
  for (const t of p.inputs.filter(isDifferentiable)) {
    const g = all.get(gradKey(t.name))!.data;
    if (!g.every(Number.isFinite)) {
      count.nonFinite++;
      continue;
    }
    const x = inputs[t.name]!;
    const v = Float64Array.from({ length: x.length }, () => rand() * 2 - 1);
    const at = (h: number) => loss({ ...inputs, [t.name]: x.map((xi, i) => xi + h * v[i]!) });
    let an = 0;
    let scale = 0;
    for (let i = 0; i < x.length; i++) {
      an += g[i]! * v[i]!;
      scale += Math.abs(g[i]! * v[i]!);
    }
    const d = settle(at, terms, 1e-5 * scale);
    if (!d) {
      count.skipped++;
      continue;
    }
    count.judged++;
    expect(Math.abs(an - d.fd), `d${t.name} of ${p.name}: analytic ${an}, finite differences ${d.fd} at step ${d.h}`).toBeLessThanOrEqual(1e-5 * scale + d.noise);
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// Mutations of library specs

type Mutation = (spec: SpecObject, rand: () => number) => unknown;
const pick = <T,>(xs: readonly T[], rand: () => number): T => xs[Math.floor(rand() * xs.length)]!;

/**
 * Applies `f` to the tokens of the right-hand side of one random step, the text after its `=` (the
 * tokenizer reads expressions, which have no `=`); the step is rebuilt as `lhs = tokens` with single
 * spaces. A step without `=` is left alone.
 */
function onTokens(f: (toks: string[], rand: () => number, spec: SpecObject) => string[]): Mutation {
  return (spec, rand) => {
    const k = Math.floor(rand() * spec.steps.length);
    const split = splitStep(spec.steps[k]!);
    if (!split) return spec;
    const steps = [...spec.steps];
    steps[k] = `${split.lhs} = ${f(split.rhs, rand, spec).join(" ")}`;
    return { ...spec, steps };
  };
}

/** A step's left-hand side and the tokens of its right-hand side, or undefined if it has no `=` or does not tokenize. */
function splitStep(step: unknown): { lhs: string; rhs: string[] } | undefined {
  if (typeof step !== "string") return undefined;
  const eq = step.indexOf("=");
  if (eq < 0) return undefined;
  try {
    return { lhs: step.slice(0, eq).trim(), rhs: tokenize(step.slice(eq + 1)).filter((t) => t.kind !== "end").map((t) => t.text) };
  } catch {
    return undefined;
  }
}

/** A spec with every step's right-hand side respaced as `onTokens` writes it, so that only real changes compare unequal. */
function normalized(spec: unknown): string {
  if (typeof spec !== "object" || spec === null || !Array.isArray((spec as SpecObject).steps)) return JSON.stringify(spec);
  const steps = (spec as SpecObject).steps.map((st) => {
    const split = splitStep(st);
    return split ? `${split.lhs} = ${split.rhs.join(" ")}` : st;
  });
  return JSON.stringify({ ...spec, steps });
}

/** A random element of `xs` other than `not` (`not` itself when there is no other). */
const pickOther = <T,>(xs: readonly T[], not: T, rand: () => number): T => {
  const others = xs.filter((x) => x !== not);
  return others.length ? pick(others, rand) : not;
};
/** `xs` without one random element (one random index drawn once, not one per element). */
function without<T>(xs: readonly T[], rand: () => number): T[] {
  const drop = Math.floor(rand() * xs.length);
  return xs.filter((_, i) => i !== drop);
}
/** Two distinct positions of `t` holding different tokens, or undefined. */
function twoDifferent(t: readonly string[], rand: () => number): [number, number] | undefined {
  const a = Math.floor(rand() * t.length);
  const bs = t.map((x, i) => (x !== t[a] ? i : -1)).filter((i) => i >= 0);
  return bs.length ? [a, pick(bs, rand)] : undefined;
}

const names = (spec: SpecObject) => [...spec.inputs.map((d) => d.split("[")[0]!), ...spec.steps.map((s) => s.split(/[[=\s]/)[0]!)];

const MUTATIONS: Record<string, Mutation> = {
  "drop a token": onTokens((t, r) => without(t, r)),
  "duplicate a token": onTokens((t, r) => {
    const i = Math.floor(r() * t.length);
    return [...t.slice(0, i + 1), t[i]!, ...t.slice(i + 1)];
  }),
  "swap two tokens": onTokens((t, r) => {
    const ab = twoDifferent(t, r);
    if (!ab) return t;
    const u = [...t];
    [u[ab[0]], u[ab[1]]] = [u[ab[1]]!, u[ab[0]]!];
    return u;
  }),
  "replace an index": onTokens((t, r, s) => {
    const letters = [...Object.keys(s.indices), "z"];
    const at = t.map((x, i) => (x in s.indices ? i : -1)).filter((i) => i >= 0);
    if (!at.length) return t;
    const u = [...t];
    const i = pick(at, r);
    u[i] = pickOther(letters, u[i]!, r);
    return u;
  }),
  "rename a reference": onTokens((t, r, s) => {
    const ns = names(s);
    const at = t.map((x, i) => (ns.includes(x) ? i : -1)).filter((i) => i >= 0);
    if (!at.length) return t;
    const u = [...t];
    const i = pick(at, r);
    u[i] = pickOther([...ns, "nope"], u[i]!, r);
    return u;
  }),
  "change an operator": onTokens((t, r) => {
    const ops = ["+", "-", "*", "/", "^"];
    const at = t.map((x, i) => (ops.includes(x) ? i : -1)).filter((i) => i >= 0);
    // a right-hand side without an operator gets one
    if (!at.length) return [...t, pick(ops, r), "2"];
    const u = [...t];
    const i = pick(at, r);
    u[i] = pickOther([...ops, ",", "(", "="], u[i]!, r);
    return u;
  }),
  "wrap in a function": onTokens((t, r) => [pick(["exp", "log", "sqrt", "tanh", "abs", "stop", "sigmoid", "sin"], r), "(", ...t, ")"]),
  "wrap in a reduction": onTokens((t, r, s) => [pick(["sum", "mean", "max"], r), "(", ...t, ",", pick(Object.keys(s.indices), r), ")"]),
  "delete a step": (s, r) => ({ ...s, steps: without(s.steps, r) }),
  "swap two steps": (s, r) => {
    const ab = twoDifferent(s.steps, r);
    if (!ab) return s;
    const steps = [...s.steps];
    [steps[ab[0]], steps[ab[1]]] = [steps[ab[1]]!, steps[ab[0]]!];
    return { ...s, steps };
  },
  "change the output": (s, r) => ({ ...s, output: pickOther([...names(s), "nothing", ""], s.output, r) }),
  "break a field": (s, r) => {
    const field = pick(["name", "indices", "inputs", "constants", "steps", "output", "description"] as const, r);
    const value = pick([undefined, null, 3, "x", [], {}, ["a[b]"], { n: 3 }, Number.NaN], r);
    return { ...s, [field]: value };
  },
  "drop an input": (s, r) => ({ ...s, inputs: without(s.inputs, r) }),
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
    const runs = fuzzRuns(360);
    type Tally = { differ: number; same: number; built: number; "spec-error": number };
    const tally: Record<string, Tally> = Object.fromEntries(Object.keys(MUTATIONS).map((m) => [m, { differ: 0, same: 0, built: 0, "spec-error": 0 }]));
    const fd = { judged: 0, skipped: 0, nonFinite: 0 };
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.constantFrom(...Object.keys(MUTATIONS)), fc.integer(), fc.integer({ min: 1, max: 2 }), async (pick, m, seed, times) => {
        const rand = prng(seed);
        // two steps can only be swapped in a spec that has two
        const from = m === "swap two steps" ? mutated.filter((s) => s.steps.length > 1) : mutated;
        const original = from[pick % from.length]!;
        let spec: unknown = original;
        for (let i = 0; i < times && typeof spec === "object" && spec !== null && Array.isArray((spec as SpecObject).steps); i++) {
          const next = MUTATIONS[m]!(spec as SpecObject, rand);
          // a second swap of a two-step spec undoes the first: then the first stands
          if (i === 0 || normalized(next) !== normalized(original)) spec = next;
        }
        const t = tally[m]!;
        if (normalized(spec) === normalized(original)) t.same++;
        else t.differ++;
        // every fourth case is built whole (schedule, kernels, module); the others are derived, which
        // is where a mutation meets the checks, the rules and the limits
        const out = seed % 4 === 0 ? await attempt(spec) : await attemptDerive(spec);
        t[out.kind]++;
        if (out.kind === "built") {
          const c = interpreterGradientCheck(out.compiled.program, out.compiled, seed);
          addCount(fd, c);
          fd.nonFinite += c.nonFinite;
        }
      }),
      { numRuns: runs },
    );
    const lines = Object.entries(tally).map(([m, t]) => `${m.padEnd(20)} ${t.differ} of ${t.differ + t.same} differ; ${t.built} built, ${t["spec-error"]} refused`);
    console.log(`mutations (kind, specs that differ from the original, outcomes):\n${lines.join("\n")}\nfinite differences of the built ones: ${fd.judged} judged, ${fd.skipped} did not settle, ${fd.nonFinite} not finite`);
    // every kind of mutation really changes the spec
    for (const [m, t] of Object.entries(tally)) expect(t.differ, `${m}: ${t.differ} of ${t.differ + t.same} mutated specs differ`).toBeGreaterThanOrEqual(0.8 * (t.differ + t.same));
    // and the mutations exercise both outcomes, or they test nothing
    const built = Object.values(tally).reduce((a, t) => a + t.built, 0);
    const refused = Object.values(tally).reduce((a, t) => a + t["spec-error"], 0);
    // (of the 360 mutations of the pinned seed, 94 build and 266 are refused)
    expect(built, lines.join("\n")).toBeGreaterThan(0.1 * runs);
    expect(refused, lines.join("\n")).toBeGreaterThan(0.4 * runs);
    expectFewSkips(fd, "mutated specs");
    // a mutation may take log(-1), but most built specs must be judged: a fuzzer whose points are mostly not finite checks nothing
    const checks = fd.judged + fd.skipped + fd.nonFinite;
    expect(fd.nonFinite, `${fd.nonFinite} of ${checks} finite-difference checks of mutated specs were not finite`).toBeLessThan(0.25 * checks);
  });

  it("random well-formed specs build, and their kernels pass the gradient checks", async () => {
    const runs = fuzzRuns(128);
    let imported = 0;
    let refused = 0;
    const fd: FdCount = { judged: 0, skipped: 0 };
    const kernelFd: FdCount = { judged: 0, skipped: 0 };
    await fc.assert(
      fc.asyncProperty(randomSpec, fc.integer(), async (spec, seed) => {
        // a sample is built whole, formatted as codegen writes it, and its module runs the full kernel
        // checks; the others are derived, and checked in the interpreter
        const sampled = imported < runs / 16 && seed % 4 === 0;
        const out: Outcome<Derived & Partial<Compiled>> = sampled ? await attempt(spec, true) : await attemptDerive(spec);
        // the grammar can write 2/(2 - 2): that is a spec error, and rare
        refused += out.kind === "built" ? 0 : 1;
        if (out.kind !== "built") return;
        const c = interpreterGradientCheck(out.compiled.program, out.compiled, seed);
        // the grammar's functions stay finite, but a quotient can meet 0: such points are skips too
        addCount(fd, { judged: c.judged, skipped: c.skipped + c.nonFinite });
        if (sampled) {
          const mod = await loadModule<Kernels>(out.compiled.code!, join(work, `random${imported++}.ts`));
          const p = out.compiled.program;
          const rand = prng(seed);
          const sizes = { N: 1 + Math.floor(rand() * 4), D: 1 + Math.floor(rand() * 3) };
          const inputs = Object.fromEntries(p.inputs.map((t) => [t.name, Float64Array.from({ length: lengthOf(p, t.name, sizes) }, () => 0.3 + rand())]));
          const outs = mod.forward(inputs, sizes);
          const y = outs[p.output] as Float64Array;
          if (y.every(Number.isFinite)) addCount(kernelFd, checkModule(mod, p, sizes, inputs, rand, { fused: 1e-8, fd: 1e-5 }));
        }
      }),
      { numRuns: runs },
    );
    expect(refused).toBeLessThan(0.05 * runs);
    expect(imported, "emitted modules imported and checked").toBeGreaterThan(runs / 40);
    expectFewSkips(fd, "random specs, interpreter");
    expectFewSkips(kernelFd, "random specs, emitted kernels");
  });
});
