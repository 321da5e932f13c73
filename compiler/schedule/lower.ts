/**
 * Lowering to the loop IR: forward steps, the naive backward's statements and the fused schedule
 * become loops, lets, loads and stores (compiler/loop/ir.ts). Every schedule decision is taken here
 * or in the loop passes this file runs (unroll factors as directives on loops, which invariants are
 * named, which gradients share a pass); a backend only prints the result.
 *
 * Names come from the caller's `Namer` (the backend reserves its own words in it), and the
 * arrays and size locals from the caller's `Names`, so the loop IR is final and printed as is.
 */
import { assertNever, canonicalSize, children, collect, contains, formIndices, formName, isReduction, isStored, isTranscendental, mul, ONE, print, printTogether, refName, renameFree, splitCoefficient, type Delta, type Expr, type Ref, type SizeOf, type Sum } from "../ir/expr.js";
import { shapeOf, tensorOf, type Program, type TensorDecl } from "../ir/program.js";
import type { Backward, Fused, Statement } from "../ir/backward.js";
import { at, bin, call, let_, load, local, loop, neg, num, select, store, type Elem, type Namer, type Stmt, type Value } from "../loop/ir.js";
import { hoist as hoistLets } from "../loop/hoist.js";
import { unroll } from "../loop/unroll.js";
import { accumulate } from "../loop/accumulate.js";
import { scalarReplace } from "../loop/scalar-replace.js";
import { rows } from "../loop/rows.js";
import { bounds } from "../loop/bounds.js";
import { printStmts } from "../loop/print.js";
import { hoist, type Hoisted } from "./invariants.js";
import { commonParts } from "./common.js";
import { flattenAll } from "../ir/affine.js";
import { formTest, lowerForm, storeIndex, type FormScope } from "./affine.js";
import { directReads, loopFreeDelta, loopFreeDeltas, topReductions } from "../ir/cost.js";
import type { ElementPass, Pass, Schedule } from "./passes.js";

/** Where a kernel's values live, given by the backend that declared them. */
export interface Names {
  readonly sizeOf: SizeOf;
  readonly namer: Namer;
  /** The array holding a ref's tensor and that tensor's dimensions (size locals). */
  readonly array: (r: Ref) => { readonly name: string; readonly dims: readonly string[] };
  /** The local of a scalar symbol (constant or size). */
  readonly symbol: (name: string) => string;
  /** The loop counter's name for a bound index of a size: a spec letter of that size, one not in `avoid` where there is one (`N` -> `n`). */
  readonly letterFor: (size: string, avoid?: ReadonlySet<string>) => string;
}

export interface Scope extends Names {
  /** Loop counters of the indices in scope. */
  readonly indices: ReadonlyMap<string, string>;
  /** Nodes already computed, with the value that reads them. */
  readonly known?: ReadonlyMap<Expr, Value>;
}

export interface Lowered {
  /** Statements to run before `value` can be read (reduction loops, shared calls). */
  readonly pre: readonly Stmt[];
  readonly value: Value;
}

/** `e` as a loop-IR value, with its reductions as accumulator loops in `pre`. */
export function lowerExpr(e: Expr, scope: Scope): Lowered {
  const pre: Stmt[] = [];
  // transcendental calls and roots that occur more than once (outside reductions) are computed once
  const uses = new Map<Expr, number>();
  const count = (x: Expr): void => {
    if (x.kind === "sum" || x.kind === "max" || x.kind === "stored" || scope.known?.has(x)) return;
    const costly = isTranscendental(x);
    if (costly) uses.set(x, (uses.get(x) ?? 0) + 1);
    if (costly && uses.get(x)! > 1) return;
    for (const c of children(x)) count(c);
  };
  count(e);
  const shared = new Map<Expr, Value>();
  const go = (x: Expr, s: Scope): Value => {
    const k = s.known?.get(x);
    if (k !== undefined) return k;
    if (s === scope && (uses.get(x) ?? 0) > 1) {
      let v = shared.get(x);
      if (v === undefined) {
        const value = goInner(x, s);
        const name = s.namer.fresh("t");
        pre.push(let_(name, value));
        v = local(name);
        shared.set(x, v);
      }
      return v;
    }
    return goInner(x, s);
  };
  const goInner = (x: Expr, s: Scope): Value => {
    switch (x.kind) {
      case "num":
        return num(x.value);
      case "sym":
        return local(s.symbol(x.name));
      case "ref": {
        const a = s.array(x);
        return load(
          a.name,
          ...x.indices.map((i) => {
            const v = s.indices.get(i);
            if (v === undefined) throw new Error(`lowering: index '${i}' is not in scope`);
            return at(v);
          }),
        );
      }
      case "add": {
        const [c0, rest0] = splitCoefficient(x.terms[0]!);
        let out = c0 === -1 ? neg(go(rest0, s)) : go(x.terms[0]!, s);
        for (const t of x.terms.slice(1)) {
          const [c, rest] = splitCoefficient(t);
          if (c < 0) out = bin("-", out, c === -1 ? go(rest, s) : bin("*", num(-c), go(rest, s)));
          else out = bin("+", out, go(t, s));
        }
        return out;
      }
      case "mul": {
        const top: Value[] = [];
        const den: Value[] = [];
        // a factor -1 is a sign, not a multiplication: -(a / b), never -1 * a / b
        let negate = false;
        for (const f of x.factors) {
          if (f.kind === "num" && f.value === -1) {
            negate = !negate;
            continue;
          }
          if (f.kind === "pow" && f.exp.kind === "num" && f.exp.value < 0 && !s.known?.has(f)) den.push(power(base(f.base, -f.exp.value, s), -f.exp.value));
          else top.push(go(f, s));
        }
        let out = top.length ? top.slice(1).reduce((a, b) => bin("*", a, b), top[0]!) : num(1);
        for (const d of den) out = bin("/", out, d);
        return negate ? neg(out) : out;
      }
      case "pow": {
        if (x.exp.kind === "num") {
          const k2 = x.exp.value;
          return k2 < 0 ? bin("/", num(1), power(base(x.base, -k2, s), -k2)) : power(base(x.base, k2, s), k2);
        }
        return call("pow", go(x.base, s), go(x.exp, s));
      }
      case "call": {
        const a = go(x.arg, s);
        switch (x.fn) {
          case "sigmoid":
            return bin("/", num(1), bin("+", num(1), call("exp", neg(a))));
          case "sech":
            return bin("/", num(1), call("cosh", a));
          case "stop":
            return a; // the value passes; only the gradient stops
          case "relu":
            return call("max", a, num(0)); // NaN stays NaN, as in the interpreter
          case "softplus": {
            // log(1 + e^x) without overflow, as the interpreter computes it: x + log1p(e^-x) for positive x
            const v = named(a, s);
            return select(">", v, num(0), bin("+", v, call("log1p", call("exp", neg(v)))), call("log1p", call("exp", v)));
          }
          case "exp":
          case "log":
          case "tanh":
          case "abs":
          case "sin":
          case "cos":
          case "sign":
          case "cosh":
          case "sinh":
          case "erf":
          case "log1p":
          case "expm1":
            return call(x.fn, a);
          default:
            return assertNever(x.fn, "function");
        }
      }
      case "where":
        // only the chosen branch is evaluated
        return select(x.op, go(x.left, s), go(x.right, s), go(x.then, s), go(x.else, s));
      case "delta": {
        // a delta left alone (not under a sum over its index): a test of the counter against the id
        return formTest(x, formScope(s));
      }
      case "sum":
      case "max": {
        // a sum over i of a product with delta(i, f) is a read at f: no loop over i
        const { reads, body: rest } = x.kind === "sum" ? directReads(x.body, x.indices) : { reads: [], body: x.body };
        const looped = x.indices.filter((i) => !reads.some((d) => d.index === i));
        const inner = new Map(s.indices);
        const loops: { v: string; extent: string }[] = [];
        for (const i of looped) {
          const size = canonicalSize(i) ?? s.sizeOf(i);
          const v = s.namer.fresh(s.letterFor(size, new Set([...inner.keys(), ...inner.values()])));
          inner.set(i, v);
          loops.push({ v, extent: s.symbol(size) });
        }
        // a reduction in the body that does not move with this one's loops is computed once, before them
        const invariant = topReductions(rest).filter((r) => !r.free.some((i) => x.indices.includes(i)));
        let outer = s;
        if (invariant.length) {
          const known = new Map(s.known ?? []);
          for (const r of invariant) known.set(r, go(r, s));
          outer = { ...s, known };
        }
        const saved = pre.length;
        // each id is read once, inside the loops its form moves with (a gather's checked in range by
        // the prologue; an affine read outside its array is 0: the body under a test)
        const checks: ((then: Value, otherwise: Value) => Value)[] = [];
        for (const d of reads) {
          const f = lowerForm(d, formScope({ ...s, indices: inner }), s.symbol(canonicalSize(d.index) ?? s.sizeOf(d.index)), formName(d.form));
          // arrays are read at the index clamped into range, so no load leaves its array (V8 slows
          // down on reads past a typed array's end); the test then discards what was read there
          const safe = storeIndex(f, formScope({ ...s, indices: inner }));
          pre.push(...f.lets, ...safe.lets);
          inner.set(d.index, safe.id);
          checks.push(f.check);
        }
        const guard = (v: Value): Value => checks.reduceRight((acc2, c) => c(acc2, num(0)), v);
        if (loops.length === 0 && x.kind === "sum") return guard(go(rest, { ...outer, indices: inner }));
        const acc = s.namer.fresh(x.kind === "max" ? "top" : "acc");
        const body = guard(go(rest, { ...outer, indices: inner }));
        const bodyPre = pre.splice(saved);
        const step = store({ kind: "local", name: acc }, body, x.kind === "max" ? "max=" : "+=");
        pre.push(let_(acc, num(x.kind === "max" ? -Infinity : 0), true), ...nest(loops, [...bodyPre, step]));
        return local(acc);
      }
      case "stored":
        return go(x.body, s); // computed in place where no array holds it
      default:
        return assertNever(x, "expression");
    }
  };
  /**
   * The base of a power: power() writes it more than once (`x^2` is `x*x`), so a base holding a
   * call is named and computed once, as it is counted (`sech(c)^2` is one cosh, not two).
   */
  const base = (b: Expr, k: number, s: Scope): Value => {
    const v = go(b, s);
    return (k === 2 || k === 3) && contains(b, isTranscendental) ? named(v, s) : v;
  };
  /** `v` itself when it is a leaf, else a local holding it (a value read more than once). */
  const named = (v: Value, s: Scope): Value => {
    if (v.kind === "num" || v.kind === "local") return v;
    const name = s.namer.fresh("t");
    pre.push(let_(name, v));
    return local(name);
  };
  const value = go(e, scope);
  return { pre, value };
}


/** A scope as `affine.ts` reads it: a gather's id is the ref's value, lowered here. */
function formScope(s: Scope): FormScope {
  return { namer: s.namer, indices: s.indices, read: (r) => lowerExpr(r, s).value };
}

/** `base^k` as multiplications for small k, a square root for 1/2. */
function power(base: Value, k: number): Value {
  if (k === 1) return base;
  if (k === 2) return bin("*", base, base);
  if (k === 3) return bin("*", bin("*", base, base), base);
  if (k === 0.5) return call("sqrt", base);
  if (k === 1.5) return bin("*", base, call("sqrt", base));
  return call("pow", base, num(k));
}

/** Loops around `body`, outermost first, each with its unroll directive. */
function nest(loops: readonly { v: string; extent: string; unroll?: number }[], body: readonly Stmt[]): Stmt[] {
  return loops.reduceRight<Stmt[]>((b, l) => [loop(l.v, l.extent, b, l.unroll ?? 1)], [...body]);
}


/**
 * The reductions of a statement over `indices` that are computed once per their own free indices,
 * before the element loops that do not move them (issue 13 item 3: softmax's `sum_c' exp(z[n,c'])`
 * inside a step over [n,c] is computed once per n, not once per (n,c)). `prefix` when its free
 * indices are the outermost loops: a local inside them; otherwise an array over its free indices.
 */
export function ownTemporaries(e: Expr, indices: readonly string[]): { node: Expr; prefix: boolean; level: number }[] {
  if (e.kind === "sum" || e.kind === "max") return []; // the statement is the reduction: nothing to share
  return topReductions(e)
    .filter((r) => r.free.length < indices.length)
    .map((node) => {
      const level = Math.max(-1, ...node.free.map((i) => indices.indexOf(i))) + 1;
      return { node, prefix: level === node.free.length, level };
    });
}

/**
 * `target[indices] = expr` over every index of the target, reductions as inner loops (those that
 * move with fewer indices computed once per their own, `ownTemporaries`). A sum over R of a product
 * with `delta(v, f(R))`, `v` an index of the target, is a scatter: the target zeroed, then `+=` at `f`.
 */
export function assignLoop(p: Program, outer: Names, target: string, t: TensorDecl, indices: readonly string[], expr: Expr): Stmt[] {
  // the nest is a scope of its own: its counters are the spec's letters wherever they are free (a
  // scalar target has no loop around it, so its locals are declared in the kernel's scope: they take
  // their names from the kernel's namer, or a second scalar statement would declare them again)
  const names = { ...outer, namer: indices.length ? outer.namer.child() : outer.namer };
  void t;
  const scatter = scatterOf(expr, indices, p.sizeOf);
  if (scatter) return scatterLoop(p, names, target, indices, scatter);
  const vars = new Map<string, string>();
  const loops = indices.map((i) => {
    const v = names.namer.fresh(i);
    vars.set(i, v);
    return { v, extent: names.symbol(p.sizeOf(i)) };
  });
  const known = new Map<Expr, Value>();
  // statements placed right inside loop level-1 (level 0: before every loop)
  const at_: Stmt[][] = indices.map(() => []);
  at_.push([]);
  const before: Stmt[] = [];
  for (const r of ownTemporaries(expr, indices)) {
    if (r.prefix) {
      const { pre, value } = lowerExpr(r.node, { ...names, indices: vars, known });
      if (value.kind === "local") {
        at_[r.level]!.push(...pre);
        known.set(r.node, value);
      } else {
        const v = names.namer.fresh(r.node.kind === "max" ? "top" : "total");
        at_[r.level]!.push(...pre, let_(v, value));
        known.set(r.node, local(v));
      }
    } else {
      const free = indices.filter((i) => r.node.free.includes(i));
      const tmp = names.namer.fresh("total");
      const own = { ...names, namer: names.namer.child() };
      const tv = new Map(free.map((i) => [i, own.namer.fresh(i)]));
      const { pre, value } = lowerExpr(r.node, { ...own, indices: tv, known });
      before.push({ kind: "alloc", array: tmp, type: "f64", dims: free.map((i) => names.symbol(p.sizeOf(i))), note: print(r.node, p.letters) });
      before.push(...nest(free.map((i) => ({ v: tv.get(i)!, extent: names.symbol(p.sizeOf(i)) })), [...pre, store({ kind: "cell", array: tmp, at: free.map((i) => at(tv.get(i)!)) }, value)]));
      known.set(r.node, load(tmp, ...free.map((i) => at(vars.get(i)!))));
    }
  }
  const { pre, value } = lowerExpr(expr, { ...names, indices: vars, known });
  let body: Stmt[] = [...at_[indices.length]!, ...pre, store({ kind: "cell", array: target, at: indices.map((i) => at(vars.get(i)!)) }, value)];
  for (let k = loops.length - 1; k >= 0; k--) body = [...at_[k]!, loop(loops[k]!.v, loops[k]!.extent, body)];
  return [...before, ...body];
}

/** A statement that is a scatter-add: `sum(g * delta(v, f), R)` with `v` an index of the target that only the delta reads. */
export function scatterOf(e0: Expr, indices: readonly string[], sizeOf?: SizeOf): { delta: Delta; deltas?: readonly Delta[]; body: Expr; over: readonly string[] } | undefined {
  // an affine read's gradient: its delta brought out of the read's own sum first (ir/affine.ts)
  const e = sizeOf ? flattenAll(e0, sizeOf) : e0;
  if (e.kind !== "sum") return undefined;
  // affine scatters along several axes at once (a 2-D read's gradient)
  const all = loopFreeDeltas(e);
  if (all && all.deltas.every((d) => d.form.kind === "affine" && indices.includes(d.index) && !e.indices.includes(d.index))) return { delta: all.deltas[0]!, deltas: all.deltas, body: all.body, over: e.indices };
  const factors = e.body.kind === "mul" ? e.body.factors : [e.body];
  for (const d of factors) {
    if (d.kind !== "delta" || !indices.includes(d.index) || e.indices.includes(d.index) || !formIndices(d.form).every((i) => e.indices.includes(i))) continue;
    const rest = factors.filter((f) => f !== d);
    const body = rest.length === 0 ? ONE : rest.length === 1 ? rest[0]! : mul(...rest);
    if (body.free.includes(d.index)) continue;
    return { delta: d, body, over: e.indices };
  }
  return undefined;
}

/** The target zeroed, then for each element of the sum's indices and the target's other indices: `target[.., id, ..] += g`. */
function scatterLoop(p: Program, names: Names, target: string, indices: readonly string[], sc: { delta: Delta; deltas?: readonly Delta[]; body: Expr; over: readonly string[] }): Stmt[] {
  const deltas = sc.deltas ?? [sc.delta];
  const vars = new Map<string, string>();
  const outerLoops = sc.over.map((i) => {
    const size = canonicalSize(i) ?? p.sizeOf(i);
    const v = names.namer.fresh(names.letterFor(size, new Set([...indices, ...vars.values()])));
    vars.set(i, v);
    return { v, extent: names.symbol(size) };
  });
  const rest = indices.filter((i) => !deltas.some((d) => d.index === i));
  const innerLoops = rest.map((i) => {
    const v = names.namer.fresh(i);
    vars.set(i, v);
    return { v, extent: names.symbol(p.sizeOf(i)) };
  });
  // an affine index outside the target adds nothing: its value is 0, added at a clamped index
  const lets: Stmt[] = [];
  const checks: ((then: Value, otherwise: Value) => Value)[] = [];
  for (const d of deltas) {
    const form = lowerForm(d, formScope({ ...names, indices: vars }), names.symbol(p.sizeOf(d.index)), formName(d.form));
    const safe = storeIndex(form, formScope({ ...names, indices: vars }));
    lets.push(...form.lets, ...safe.lets);
    checks.push(form.check);
    vars.set(d.index, safe.id);
  }
  const { pre, value } = lowerExpr(sc.body, { ...names, indices: vars });
  const guarded = checks.reduceRight((v, c) => c(v, num(0)), value);
  const add = store({ kind: "cell", array: target, at: indices.map((i) => at(vars.get(i)!)) }, guarded, "+=");
  // the id moves only with the sum's indices: read once, outside the target's other loops
  return [{ kind: "fill", array: target, value: 0 }, ...nest(outerLoops, [...lets, ...nest(innerLoops, [...pre, add])])];
}

/**
 * The gradient array a naive statement is, when it copies another cell for cell (`dgammax[n,d] =
 * dout[n,d]`) and is not a final gradient (those need memory of their own): the kernel reads that
 * array instead of allocating a copy.
 */
export function aliasOf(s: Statement, finals: ReadonlySet<string>): string | undefined {
  const e = s.expr;
  return !finals.has(s.target.name) && e.kind === "ref" && e.space === "grad" && e.indices.join(",") === s.target.indices.join(",") ? e.name : undefined;
}

/** The forward pass: each step, under its comment, as a loop nest writing the step's array (`arrayOf`). */
export function lowerForward(p: Program, names: Names, arrayOf: (step: string) => string): Stmt[] {
  return p.steps.flatMap((s): Stmt[] => [{ kind: "comment", text: `step ${s.position + 1}: ${s.text}` }, ...assignLoop(p, names, arrayOf(s.name), s, s.indices, s.rhs)]);
}

/**
 * The naive backward: one block per forward step, in reverse, each statement under its comment
 * (the statement and its local partials) and allocating the array it writes, except a statement
 * that is another gradient array (`aliasOf`) and a final gradient (written into the output array,
 * zeroed with `fill` when it is 0). `grads` maps a gradient's name to its array and is filled here.
 */
export function lowerNaive(p: Program, bw: Backward, names: Names, grads: Map<string, string>, type: Elem): Stmt[] {
  const finals = new Set(bw.gradients.map((g) => g.grad.name));
  const body: Stmt[] = [];
  for (const b of bw.blocks) {
    body.push({ kind: "blank" });
    body.push({ kind: "comment", text: b.step ? `step ${b.step.position + 1} reversed: ${b.step.text}` : "gradients of the inputs" });
    for (const s of b.statements) {
      body.push(...statementComment(p, s, b.step?.indices ?? []).map((text): Stmt => ({ kind: "comment", text })));
      const base = tensorOf(p, s.target.name.replace(/#\d+$/, ""));
      const zero = s.expr.kind === "num" && s.expr.value === 0;
      // an adjoint that is exactly another gradient array, cell for cell, is that array
      const alias = aliasOf(s, finals);
      if (alias !== undefined && grads.has(alias)) {
        grads.set(s.target.name, grads.get(alias)!);
        body.push({ kind: "comment", text: `(the same array as ${print(s.expr, p.letters).replace(/\[\]$/, "").replace("#", "")}: no copy)` });
        continue;
      }
      let v = finals.has(s.target.name) ? grads.get(s.target.name)! : undefined;
      if (v === undefined) {
        v = names.namer.fresh(refName(s.target).replace("#", ""));
        grads.set(s.target.name, v);
        body.push({ kind: "alloc", array: v, type, dims: dimsOf(p, base, names), note: "" });
      } else if (zero) body.push({ kind: "fill", array: v, value: 0 });
      if (!zero) body.push(...assignLoop(p, names, v, base, s.target.indices, s.expr));
    }
  }
  return body;
}

/** A backward statement and the local partials it uses, each pair printed in the step's naming context. */
function statementComment(p: Program, s: Statement, stepIndices: readonly string[]): string[] {
  const out = [`${print(s.target, p.letters).replace(/\[\]$/, "").replace("#", "")} = ${print(s.expr, p.letters).replace(/#/g, "")}`];
  for (const lp of s.partials ?? []) {
    const [occurrence, partial] = printTogether([lp.occurrence, lp.partial], p.letters, stepIndices);
    out.push(`  local derivative ∂/∂${occurrence} = ${partial}${lp.fallback ? " (own rule; the CAS answer was rejected)" : ""}`);
  }
  return out;
}

/** What the fused kernel's lowering needs beyond the names: the kernel's output arrays and the element type. */
export interface FusedTarget {
  readonly outputs: readonly string[];
  /** Output keys as the caller gives them in `into` (`dgamma`). */
  readonly keys: readonly string[];
  readonly float32: boolean;
  /** Prints the loop IR of each pass after lowering and after each loop pass (`--debug`). */
  readonly log?: (line: string) => void;
}

/**
 * The fused backward after its prologue: zeroing the outputs it accumulates into, the temporaries,
 * every pass of the schedule (reductions, then elementwise gradients), and the float32 outputs
 * rounded from their float64 scratch arrays.
 */
export function lowerFused(p: Program, fused: Fused, sched: Schedule, outer: Names, target: FusedTarget): Stmt[] {
  // the kernel's own scope; each pass is a block with a scope of its own (`scoped` below)
  const namer = outer.namer;
  const show = (e: Expr) => print(e, p.letters);
  const out: Stmt[] = [];
  const accumulated = new Set(sched.reductions.flatMap((r) => (r.output === undefined ? [] : [r.output])));
  p.inputs.forEach((_, k) => {
    if (accumulated.has(k)) out.push({ kind: "if-given", output: target.keys[k]!, then: [{ kind: "fill", array: target.outputs[k]!, value: 0 }] });
  });
  const done = new Set<Expr>();
  const storage = new Map<Expr, { name: string; indices: readonly string[] }>();
  // float32 outputs that are reductions accumulate in a float64 array and are stored once
  const stores: { scratch: string; output: string }[] = [];
  const dims = (indices: readonly string[]) => indices.map((i) => outer.symbol(p.sizeOf(i)));
  for (const r of sched.reductions) {
    if (sched.reuse.get(r.node) !== undefined) continue;
    if (r.output !== undefined && !target.float32) storage.set(r.node, { name: target.outputs[r.output]!, indices: r.indices });
    else {
      const v = namer.fresh(r.output !== undefined ? `${target.outputs[r.output]}64` : "r");
      const heir = [...sched.reuse].find(([, d]) => d === r.node)?.[0];
      out.push({ kind: "alloc", array: v, type: "f64", dims: dims(r.indices), note: `${show(r.node)}${heir && isStored(heir) ? `, then ${show(heir.body)}` : ""}` });
      // a max is accumulated with max= from -Infinity, as lowerExpr's local one is
      if (r.node.kind === "max") out.push({ kind: "fill", array: v, value: -Infinity });
      storage.set(r.node, { name: v, indices: r.indices });
      if (r.output !== undefined) stores.push({ scratch: v, output: target.outputs[r.output]! });
    }
  }
  // a stored product written over a temporary that dies in its pass takes that array
  for (const [node, donor] of sched.reuse) {
    const r = sched.reductions.find((q) => q.node === node)!;
    storage.set(node, { name: storage.get(donor)!.name, indices: r.indices });
  }
  const read = (node: Expr, vars: ReadonlyMap<string, string>): Value => {
    const s = storage.get(node)!;
    return load(s.name, ...s.indices.map((i) => at(vars.get(i)!)));
  };
  /** Reads of every reduction already computed whose free indices `vars` binds, aliases included. */
  const knownAt = (vars: ReadonlyMap<string, string>, ready: (e: Expr) => boolean): Map<Expr, Value> => {
    const known = new Map<Expr, Value>();
    for (const q of sched.reductions) if (ready(q.node) && q.indices.every((i) => vars.has(i))) known.set(q.node, read(q.node, vars));
    for (const [node, { of, mapping }] of sched.aliases) {
      const rep = sched.reductions.find((q) => q.node === of)!;
      if (!ready(of) || !rep.indices.every((i) => vars.has(mapping[i] ?? i))) continue;
      known.set(node, read(of, new Map(rep.indices.map((i) => [i, vars.get(mapping[i] ?? i)!]))));
    }
    return known;
  };
  const optimize = (body: Stmt[], scope: Names): Stmt[] => {
    let out = body;
    target.log?.(`== loop: lowered\n${printStmts(out, 1)}`);
    for (const [name, pass] of [["rows", rows], ["bounds", bounds], ["hoist", hoistLets], ["unroll", unroll], ["accumulate", accumulate], ["scalar-replace", scalarReplace]] as const) {
      out = pass(out, scope.namer);
      target.log?.(`== loop/${name}\n${printStmts(out, 1)}`);
    }
    return out;
  };
  for (const pass of sched.passes) {
    out.push({ kind: "blank" });
    if (pass.kind === "reduce") {
      const what = pass.reductions.map((r) => (isStored(r.node) ? `${show(r.node.body)} (stored once, not recomputed by later passes)` : show(r.node)));
      out.push({ kind: "comment", text: `one pass over memory for ${what.join(", ")}` });
      for (const r of pass.reductions) if (r.output !== undefined) out.push({ kind: "comment", text: `d${p.inputs[r.output]!.name} is a reduction itself, derived by ${provenance(fused, r.output)}` });
      // scalars (a size's square root) are computed once, before the pass
      const scalars = new Map<Expr, Value>();
      const hoistScalars = (x: Expr): void => {
        if (x.free.length === 0 && x.kind !== "num" && x.kind !== "sym" && !contains(x, (y) => y.kind === "sum" || y.kind === "max" || y.kind === "stored")) {
          if (scalars.has(x)) return;
          const v = namer.fresh(describe(x, "k"));
          out.push(let_(v, lowerExpr(x, { ...outer, indices: new Map() }).value));
          scalars.set(x, local(v));
        } else if (!isReduction(x) && !isStored(x)) children(x).forEach(hoistScalars);
      };
      for (const r of pass.reductions) hoistScalars(r.node.body);
      // the pass is a block of its own, named after the scalars before it: its counters are the spec's letters
      const scoped = { ...outer, namer: outer.namer.child() };
      const counters = new Map<string, string>();
      const letters = new Set(pass.loops.filter((i) => !canonicalSize(i)));
      // a pass of reads at ids or scatter-adds along one index has no loop over it: each reads or adds at its id
      const scattered = scatterLoopsOf(pass);
      const passLoops = pass.loops.filter((l) => !scattered.includes(l));
      const loops = passLoops.map((i, k) => {
        const size = canonicalSize(i) ?? p.sizeOf(i);
        const v = scoped.namer.fresh(canonicalSize(i) ? outer.letterFor(size, letters) : i);
        letters.add(v);
        counters.set(i, v);
        // four rows at a time: copies that add into the same cell add their terms first
        return { v, extent: outer.symbol(size), unroll: k === passLoops.length - 2 ? 4 : 1 };
      });
      const body: Stmt[] = [];
      pass.reductions.forEach((r, k) => {
        const binding = pass.bindings[k]!;
        // this reduction's free and bound indices, on the pass's loops
        const m = new Map(Object.entries(binding).flatMap(([i, l]) => (scattered.includes(l) ? [] : [[i, counters.get(l)!] as const])));
        const sc = scattered.length === 0 ? undefined : loopFreeDeltas(r.node)!;
        let check = (v: Value): Value => v;
        const storeAt = new Map(m);
        for (const d of sc?.deltas ?? []) {
          // a read at the id, or an add at it; an affine id outside its array reads 0 and adds nothing
          const form = lowerForm(d, formScope({ ...scoped, indices: m }), outer.symbol(canonicalSize(d.index) ?? p.sizeOf(d.index)), formName(d.form));
          // reads and adds at the index clamped into range: no load or store leaves its array
          const safe = storeIndex(form, formScope({ ...scoped, indices: m }));
          body.push(...form.lets, ...safe.lets);
          m.set(d.index, safe.id);
          storeAt.set(d.index, safe.id);
          const inner = check;
          check = (v) => inner(form.check(v, num(0)));
        }
        const known = knownAt(m, (e) => done.has(e));
        for (const [x, v] of scalars) known.set(x, v);
        const { pre, value } = lowerExpr(sc ? sc.body : r.node.body, { ...scoped, indices: m, known });
        const s = storage.get(r.node)!;
        body.push(...pre, store({ kind: "cell", array: s.name, at: s.indices.map((i) => at(storeAt.get(i)!)) }, check(value), isStored(r.node) ? "=" : r.node.kind === "max" ? "max=" : "+="));
      });
      out.push({ kind: "block", body: optimize(nest(loops, body), scoped) });
      for (const r of pass.reductions) done.add(r.node);
    } else {
      const written = [...pass.outputs.map((o) => o.input), ...(pass.accumulates?.reductions ?? []).map((r) => r.output!)];
      if (written.length > 1) out.push({ kind: "comment", text: `one pass over memory for ${written.map((k) => `d${p.inputs[k]!.name}`).join(", ")}` });
      for (const o of pass.outputs) {
        const t = p.inputs[o.input]!;
        out.push({ kind: "comment", text: `d${t.indices.length ? `${t.name}[${t.indices.join(",")}]` : t.name} = ${show(fused.gradients[o.input]!)}` });
        out.push({ kind: "comment", text: `derived from the naive backward by ${provenance(fused, o.input)}` });
      }
      for (const r of pass.accumulates?.reductions ?? []) out.push({ kind: "comment", text: `d${p.inputs[r.output!]!.name} = ${show(r.node)}, accumulated in the same pass; derived by ${provenance(fused, r.output!)}` });
      const scoped = { ...outer, namer: outer.namer.child() };
      out.push({ kind: "block", body: optimize(mapPass(pass.outputs, pass.loops, scoped, pass.accumulates), scoped) });
      for (const r of pass.accumulates?.reductions ?? []) done.add(r.node);
    }
  }
  for (const el of sched.elements ?? []) out.push(...elementPass(el));
  for (const { scratch, output } of stores) out.push({ kind: "copy", from: scratch, to: output });
  return out;

  /**
   * A one-scatter pass (schedule/scatter.ts): loops over the adjoint's elements, its closed form
   * once per element as a local, then loops over the taps adding each gradient's term (at a delta's
   * id, checked in range, or into its own cell). The gradients it writes are zeroed first (a
   * float32 gradient accumulates in a float64 array, rounded once at the end).
   */
  function elementPass(el: ElementPass): Stmt[] {
    const body: Stmt[] = [{ kind: "blank" }];
    const outs = el.outputs.map((o) => `d${p.inputs[o.input]!.name}`);
    body.push({ kind: "comment", text: `one pass over the elements of d${el.adjoint}, never stored: each computed once as a local, then added into ${outs.join(", ")}` });
    body.push({ kind: "comment", text: `d${el.adjoint}[${el.elements.join(",")}] = ${show(el.element)}` });
    body.push({ kind: "comment", text: `chosen by the kernel's work (every size 256): ${el.work.scattered.toPrecision(6)} with this pass, ${el.work.otherwise.toPrecision(6)} without${el.work.ratio ? `; over sizes 32 to 1024, ${el.work.ratio.least.toPrecision(3)} to ${el.work.ratio.most.toPrecision(3)} times the work without` : ""}` });
    const dest = new Map<number, string>();
    for (const o of el.outputs) {
      const name = target.outputs[o.input]!;
      if (target.float32) {
        const v = namer.fresh(`${name}64`);
        body.push({ kind: "alloc", array: v, type: "f64", dims: dims(p.inputs[o.input]!.indices), note: `d${p.inputs[o.input]!.name}` });
        stores.push({ scratch: v, output: name });
        dest.set(o.input, v);
      } else {
        body.push({ kind: "if-given", output: target.keys[o.input]!, then: [{ kind: "fill", array: name, value: 0 }] });
        dest.set(o.input, name);
      }
    }
    const scoped = { ...outer, namer: outer.namer.child() };
    const vars = new Map<string, string>();
    const letters = new Set<string>(el.elements);
    const elementLoops = el.elements.map((i) => {
      const v = scoped.namer.fresh(i);
      vars.set(i, v);
      return { v, extent: outer.symbol(p.sizeOf(i)) };
    });
    const tapLoops = el.taps.map((t, k) => {
      const v = scoped.namer.fresh(t.letter || outer.letterFor(t.size, letters));
      letters.add(v);
      vars.set(`#${k}`, v);
      return { v, extent: outer.symbol(t.size) };
    });
    const elementVars = new Map(el.elements.map((i) => [i, vars.get(i)!]));
    const { pre, value } = lowerExpr(el.element, { ...scoped, indices: elementVars, known: knownAt(elementVars, () => true) });
    const local_ = scoped.namer.fresh(`d${el.adjoint}`);
    const inner: Stmt[] = [];
    for (const o of el.outputs) {
      const m = new Map(Object.entries(o.bind).map(([own, shared]) => [own, vars.get(shared)!] as const));
      const storeAt = new Map(m);
      let check = (v: Value): Value => v;
      for (const d of o.deltas) {
        const form = lowerForm(d, formScope({ ...scoped, indices: m }), outer.symbol(canonicalSize(d.index) ?? p.sizeOf(d.index)), formName(d.form));
        const safe = storeIndex(form, formScope({ ...scoped, indices: m }));
        inner.push(...form.lets, ...safe.lets);
        storeAt.set(d.index, safe.id);
        const before = check;
        check = (v) => before(form.check(v, num(0)));
      }
      const term = lowerExpr(o.body, { ...scoped, indices: m, known: new Map([[o.read as Expr, local(local_)]]) });
      inner.push(...term.pre, store({ kind: "cell", array: dest.get(o.input)!, at: o.target.map((i) => at(storeAt.get(i)!)) }, check(term.value), "+="));
    }
    const loops = nest(elementLoops, [...pre, let_(local_, value), ...nest(tapLoops, inner)]);
    body.push({ kind: "block", body: optimize(loops, scoped) });
    return body;
  }

  /**
   * One elementwise pass, `output = expr` over `loopIndices`: each invariant part the schedule
   * names (hoist.ts) is a `let` in the innermost loop, which loop/hoist.ts moves out; two rows and
   * four columns at a time, except where a transcendental call dominates the cost.
   */
  function mapPass(outputs: readonly { input: number; expr: Expr }[], loopIndices: readonly string[], names: Names, accumulates?: (Pass & { kind: "map" })["accumulates"]): Stmt[] {
    const { namer } = names;
    const vars = new Map<string, string>();
    // unrolling pays for loads and stores, not for transcendental calls left in the innermost loop
    // each output's invariants named apart (their placeholders never meet in another output)
    const forms = outputs.map((o, k) => hoist(o.expr, loopIndices, outputs.length > 1 ? `${k}_` : ""));
    const heavy = forms.some((h) => contains(h.body, isTranscendental));
    const loops = loopIndices.map((i, k) => {
      const v = namer.fresh(i);
      vars.set(i, v);
      const unrollBy = heavy ? 1 : k === loopIndices.length - 1 ? 4 : k === loopIndices.length - 2 ? 2 : 1;
      return { v, extent: names.symbol(p.sizeOf(i)), unroll: unrollBy };
    });
    const known = knownAt(vars, () => true);
    const body: Stmt[] = [];
    const named = new Map<Expr, Value>();
    // every output's invariants first, then the parts the outputs compute more than once
    // (common.ts), each once, then the stores
    const kn = new Map(known);
    for (const [k, o] of outputs.entries()) {
      const grad = target.outputs[o.input]!;
      forms[k]!.hoisted.forEach((x: Hoisted) => {
        let v = named.get(x.expr);
        if (v === undefined) {
          const { pre, value } = lowerExpr(x.expr, { ...names, indices: vars, known: kn });
          const name = namer.fresh(`${grad}_${x.element ? elementName(x.element) : describe(x.expr, "inv")}`);
          body.push(...pre, { kind: "let", name, type: "f64", mutable: false, value, note: show(x.expr) });
          v = local(name);
          named.set(x.expr, v);
        }
        kn.set(x.ref, v);
      });
    }
    // the reductions accumulated here, their bodies written with the pass's letters (they share parts with the outputs)
    const sums = (accumulates?.reductions ?? []).map((r, k) => ({ r, body: renameFree((r.node as Sum).body, accumulates!.bindings[k]!, p.sizeOf), at: r.indices.map((i) => accumulates!.bindings[k]![i]!) }));
    for (const x of commonParts([...forms.map((h) => h.body), ...sums.map((a) => a.body)], (y) => kn.has(y))) {
      const { pre, value } = lowerExpr(x, { ...names, indices: vars, known: kn });
      const name = namer.fresh(describe(x, "part"));
      body.push(...pre, { kind: "let", name, type: "f64", mutable: false, value, note: show(x) });
      kn.set(x, local(name));
    }
    for (const [k, o] of outputs.entries()) {
      const t = p.inputs[o.input]!;
      const { pre, value } = lowerExpr(forms[k]!.body, { ...names, indices: vars, known: kn });
      body.push(...pre, store({ kind: "cell", array: target.outputs[o.input]!, at: t.indices.map((i) => at(vars.get(i)!)) }, value));
    }
    for (const a of sums) {
      const { pre, value } = lowerExpr(a.body, { ...names, indices: vars, known: kn });
      body.push(...pre, store({ kind: "cell", array: storage.get(a.r.node)!.name, at: a.at.map((i) => at(vars.get(i)!)) }, value, "+="));
    }
    return nest(loops, body);
  }

  /** A name for what an invariant holds: the arrays it reads (`gamma_ivar`), or `fallback`. */
  function describe(x: Expr, fallback: string): string {
    const parts: string[] = [];
    const walk = (y: Expr): void => {
      const name = y.kind === "ref" ? (y.space === "grad" ? `d${y.name}` : y.name) : "";
      if (y.kind === "ref" && !parts.includes(name)) parts.push(name);
      else if (isReduction(y) || isStored(y)) {
        const s = storage.get(y) ?? storage.get(sched.aliases.get(y)?.of ?? y);
        if (s && !parts.includes(s.name)) parts.push(s.name);
      } else children(y).forEach(walk);
    };
    walk(x);
    return parts.length && parts.length <= 3 ? parts.join("_") : fallback;
  }

  /** The per-element part a coefficient multiplies, as a name: `xhat`, `dout_xhat`, or `offset` for 1. */
  function elementName(e: Expr): string {
    const refs = collect(e, (y): y is Ref => y.kind === "ref").map((r) => (r.space === "grad" ? `d${r.name}` : r.name));
    const unique = [...new Set(refs)];
    return unique.length === 0 ? "offset" : unique.length <= 3 ? unique.join("_") : "part";
  }
}

/** The rules that shaped input `k`'s fused gradient, in derivation order, with counts. */
export function provenance(fused: Fused, k: number): string {
  const seen = new Map<string, number>();
  for (const ph of fused.phases) for (const r of ph.rewrites) if (r.gradients?.includes(k)) seen.set(r.rule, (seen.get(r.rule) ?? 0) + 1);
  if (seen.size === 0) return "inlining alone (no rewrite)";
  return `inlining, then ${[...seen].map(([rule, n]) => (n > 1 ? `${rule} ×${n}` : rule)).join(", ")}`;
}

/** Dimensions of a tensor as size locals. */
export function dimsOf(p: Program, t: TensorDecl, names: Pick<Names, "symbol">): string[] {
  return shapeOf(p, t).map((s) => names.symbol(s));
}

export { tensorOf };

/**
 * The loops of a reduce pass that none of its reductions needs (`scatterLoopOf`, with every delta
 * of `loopFreeDeltas`: an affine read or scatter of a 2-D array frees one loop per axis). Empty when
 * a member has none, or the members free different loops.
 */
export function scatterLoopsOf(pass: Pass & { kind: "reduce" }): string[] {
  let loops: string[] | undefined;
  for (const [k, r] of pass.reductions.entries()) {
    const sc = isStored(r.node) ? undefined : loopFreeDeltas(r.node);
    if (!sc) return [];
    const own = sc.deltas.map((d) => pass.bindings[k]![d.index]);
    if (own.some((l) => l === undefined)) return [];
    const sorted = [...new Set(own as string[])].sort();
    if (sorted.length !== own.length) return [];
    if (loops !== undefined && loops.join(",") !== sorted.join(",")) return [];
    loops = sorted;
  }
  return loops ?? [];
}

/**
 * The loop of a reduce pass that none of its reductions needs: every one is a read at an id or a
 * scatter-add at one (`loopFreeDelta`), with its delta's index on that same loop. Undefined when
 * any is not.
 */
export function scatterLoopOf(pass: Pass & { kind: "reduce" }): string | undefined {
  let loop: string | undefined;
  for (const [k, r] of pass.reductions.entries()) {
    const sc = isStored(r.node) ? undefined : loopFreeDelta(r.node);
    if (!sc) return undefined;
    const l = pass.bindings[k]![sc.delta.index];
    if (l === undefined || (loop !== undefined && l !== loop)) return undefined;
    loop = l;
  }
  return loop;
}
