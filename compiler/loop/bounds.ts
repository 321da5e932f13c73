/**
 * Bounds from guards (Halide's bounds inference and loop partitioning, for the one case the loop
 * IR writes): an affine read outside its array is a guarded value `ok ? v : 0`, and an add at an
 * affine id adds `ok ? v : 0` at the id clamped into range (`schedule/affine.ts`). In an innermost
 * loop that costs two tests per guard and a clamp per id on every trip, and a body with tests and
 * clamps in it never runs lane-parallel. Where every store of the loop adds nothing when a test
 * fails, the test says which iterations do anything at all:
 * - a test on an index that does not move with the loop (`at = i + p - 1` in a loop over `j`)
 *   runs the loop or not: its length is 0 where the test fails (an `if` around the loop);
 * - a test affine in the counter with coefficient 1 or -1 (`0 <= j + q - 1 < W`) bounds the
 *   counter: the loop runs from `max(0, 1 - q)` to `min(J, W + 1 - q)`.
 * Inside the new loop those tests hold, so each is replaced by its chosen branch (`at_safe` is
 * `at`, a guarded read is the read) and an id that only copies another is that other.
 *
 * "Adds nothing" means: an addition (`+=`) of `ok ? v : 0`, or of a product with such a factor.
 * A product with a zero factor is zero for a finite other factor, so the kernel may differ from
 * the guarded one only where that factor is infinite or NaN (the term `inf * 0` is dropped, as a
 * hand-written convolution never forms it). Any store that is not such an addition, or a loop
 * whose stores share no test, is left as it was.
 *
 *     for j in 0..J {                                  let j_lo: i32 = (0 > 1 - q ? 0 : 1 - q)
 *       let at: i32 = j + q - 1                        let j_hi: i32 = (J < W + 1 - q ? J : W + 1 - q)
 *       let at_safe: i32 = (at >= 0 ? ... : 0)    =>   let j_len: i32 = (j_hi > j_lo ? j_hi - j_lo : 0)
 *       dx[at_safe] += (at >= 0 ? (at < W ? v : 0) : 0) for j0 in 0..j_len {
 *     }                                                  let j: i32 = j0 + j_lo
 *                                                        let at: i32 = j + q - 1
 *                                                        dx[at] += v
 *                                                      }
 *
 * When the loop starts at 0 (no lower bound), the counter stays the loop's own. The new loop's
 * counter moves the position `j` by one per trip: `vectorize.ts` reads `j` and the ids one apart
 * from it (`at`) as contiguous indices.
 */
import { bin, cellName, mapStmts, num, select, stmtNodes, valueNodes, valuesOf, written, type Namer, type Stmt, type Value } from "./ir.js";

/** An affine integer expression: a constant plus named terms with integer coefficients. */
export interface Affine {
  readonly terms: ReadonlyMap<string, number>;
  readonly c: number;
}

/**
 * The value as an affine form over names, or undefined. `defs` gives the value of each integer
 * `let` (resolved through); any other local is a name of its own.
 */
export function affineOf(v: Value, defs: ReadonlyMap<string, Value>, seen: ReadonlySet<string> = new Set()): Affine | undefined {
  switch (v.kind) {
    case "num":
      return Number.isInteger(v.value) ? { terms: new Map(), c: v.value } : undefined;
    case "local": {
      const d = defs.get(v.name);
      if (d !== undefined && !seen.has(v.name)) return affineOf(d, defs, new Set([...seen, v.name]));
      return { terms: new Map([[v.name, 1]]), c: 0 };
    }
    case "neg": {
      const a = affineOf(v.arg, defs, seen);
      return a && scale(a, -1);
    }
    case "bin": {
      const a = affineOf(v.a, defs, seen);
      const b = affineOf(v.b, defs, seen);
      if (!a || !b) return undefined;
      if (v.op === "+") return add(a, b);
      if (v.op === "-") return add(a, scale(b, -1));
      if (v.op === "*" && a.terms.size === 0) return scale(b, a.c);
      if (v.op === "*" && b.terms.size === 0) return scale(a, b.c);
      return undefined;
    }
    case "load":
    case "call":
    case "select":
      return undefined;
    default:
      return undefined;
  }
}

function scale(a: Affine, k: number): Affine {
  return { terms: new Map([...a.terms].map(([n, x]) => [n, x * k] as const).filter(([, x]) => x !== 0)), c: a.c * k };
}

function add(a: Affine, b: Affine): Affine {
  const terms = new Map(a.terms);
  for (const [n, x] of b.terms) terms.set(n, (terms.get(n) ?? 0) + x);
  for (const [n, x] of [...terms]) if (x === 0) terms.delete(n);
  return { terms, c: a.c + b.c };
}

/** The affine form as a value (`q - 1`, `W + 1 - q`). */
export function affineValue(a: Affine): Value {
  const parts: { v: Value; neg: boolean }[] = [];
  for (const [n, x] of [...a.terms].sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0))) {
    const mag = Math.abs(x);
    parts.push({ v: mag === 1 ? { kind: "local", name: n } : bin("*", num(mag), { kind: "local", name: n }), neg: x < 0 });
  }
  if (a.c !== 0 || parts.length === 0) parts.push({ v: num(Math.abs(a.c)), neg: a.c < 0 });
  // positive terms first, so the value reads `W + 1 - q` rather than `-q + W + 1`
  const ordered = [...parts.filter((p) => !p.neg), ...parts.filter((p) => p.neg)];
  let out: Value = ordered[0]!.neg ? { kind: "neg", arg: ordered[0]!.v } : ordered[0]!.v;
  for (const p of ordered.slice(1)) out = bin(p.neg ? "-" : "+", out, p.v);
  return out;
}

/** A test `A >= 0` over integers, from `left op right`, or undefined when a side is not affine or the test is not an order. */
export function testOf(op: string, left: Value, right: Value, defs: ReadonlyMap<string, Value>): Affine | undefined {
  const l = affineOf(left, defs);
  const r = affineOf(right, defs);
  if (!l || !r) return undefined;
  switch (op) {
    case ">=":
      return add(l, scale(r, -1));
    case ">":
      return add(add(l, scale(r, -1)), { terms: new Map(), c: -1 });
    case "<=":
      return add(r, scale(l, -1));
    case "<":
      return add(add(r, scale(l, -1)), { terms: new Map(), c: -1 });
    default:
      return undefined;
  }
}

const keyOf = (a: Affine): string => `${[...a.terms].sort(([p], [q]) => (p < q ? -1 : 1)).map(([n, x]) => `${x}*${n}`).join("+")}+${a.c}>=0`;

type Loop = Stmt & { kind: "for" };

export function bounds(body: readonly Stmt[], namer: Namer, outer: ReadonlyMap<string, Value> = new Map(), ints: ReadonlySet<string> = new Set()): Stmt[] {
  // integer lets in scope (their values resolve ids into affine forms) and integer names (counters, extents)
  const defs = new Map(outer);
  const known = new Set(ints);
  const out: Stmt[] = [];
  for (const s of body) {
    switch (s.kind) {
      case "let":
        if (s.type === "i32" && !s.mutable) defs.set(s.name, s.value);
        out.push(s);
        break;
      case "for": {
        const inner = new Set([...known, s.index, s.extent]);
        const tried = innermost(s) ? partition(s, namer, defs, inner) : undefined;
        out.push(...(tried ?? [{ ...s, body: bounds(s.body, namer.child(), defs, inner) }]));
        break;
      }
      case "block":
        out.push({ ...s, body: bounds(s.body, namer.child(), defs, known) });
        break;
      case "if-given":
        out.push({ ...s, then: bounds(s.then, namer, defs, known) });
        break;
      default:
        out.push(s);
    }
  }
  return out;
}

function innermost(s: Loop): boolean {
  return !s.resume && s.step === 1 && s.vector === undefined && s.body.every((x) => x.kind === "let" || x.kind === "store" || x.kind === "comment" || x.kind === "blank");
}

/** The tests that make a value 0 when they fail: `ok ? v : 0`, and those of either factor of a product. */
function zeroTests(v: Value, defs: ReadonlyMap<string, Value>, out: Map<string, Affine>): void {
  if (v.kind === "select" && v.else.kind === "num" && v.else.value === 0) {
    const t = testOf(v.op, v.left, v.right, defs);
    if (t) out.set(keyOf(t), t);
    zeroTests(v.then, defs, out);
  } else if (v.kind === "bin" && v.op === "*") {
    zeroTests(v.a, defs, out);
    zeroTests(v.b, defs, out);
  }
}

/** The loop with its tests as bounds, or undefined when no test qualifies. */
function partition(s: Loop, namer: Namer, outerDefs: ReadonlyMap<string, Value>, ints: ReadonlySet<string>): Stmt[] | undefined {
  const defs = new Map(outerDefs);
  const local = new Set<string>(); // names defined in the loop: a test on them moves with it
  for (const x of s.body) if (x.kind === "let") {
    local.add(x.name);
    if (x.type === "i32" && !x.mutable) defs.set(x.name, x.value);
  }
  const stores = s.body.filter((x): x is Stmt & { kind: "store" } => x.kind === "store");
  if (stores.length === 0) return undefined;
  let common: Map<string, Affine> | undefined;
  for (const st of stores) {
    if (st.op !== "+=") return undefined;
    const mine = new Map<string, Affine>();
    zeroTests(st.value, defs, mine);
    common = common === undefined ? mine : new Map([...common].filter(([k]) => mine.has(k)));
  }
  // a test on integers only: counters, extents and ids; its other names do not move with the loop
  const integer = (n: string) => ints.has(n) || n === s.index || (outerDefs.has(n) && !local.has(n));
  const sizes = new Set<string>();
  for (const x of stmtNodes(s.body)) for (const v of valuesOf(x)) for (const n of valueNodes(v)) if (n.kind === "select") for (const side of [n.left, n.right]) if (side.kind === "local" && !defs.has(side.name) && !local.has(side.name)) sizes.add(side.name);
  const lo: Affine[] = [];
  const hi: Affine[] = [];
  const gates: Affine[] = [];
  const used = new Set<string>();
  for (const [k, t] of common ?? []) {
    if ([...t.terms.keys()].some((n) => (local.has(n) && n !== s.index) || !(integer(n) || sizes.has(n)))) continue;
    const a = t.terms.get(s.index) ?? 0;
    const rest: Affine = { terms: new Map([...t.terms].filter(([n]) => n !== s.index)), c: t.c };
    if (a === 0) gates.push(t);
    // j + R >= 0: j >= -R
    else if (a === 1) lo.push(scale(rest, -1));
    // -j + R >= 0: j < R + 1
    else if (a === -1) hi.push(add(rest, { terms: new Map(), c: 1 }));
    else continue;
    used.add(k);
  }
  if (used.size === 0) return undefined;
  const pre: Stmt[] = [];
  const max2 = (a: Value, b: Value) => select(">", a, b, a, b);
  const min2 = (a: Value, b: Value) => select("<", a, b, a, b);
  const i32 = (name: string, value: Value): Stmt => ({ kind: "let", name, type: "i32", mutable: false, value });
  let start: Value | undefined;
  if (lo.length) {
    const name = namer.fresh(`${s.index}_lo`);
    pre.push(i32(name, lo.map(affineValue).reduce(max2, num(0))));
    start = { kind: "local", name };
  }
  let end: Value = { kind: "local", name: s.extent };
  if (hi.length) {
    const name = namer.fresh(`${s.index}_hi`);
    pre.push(i32(name, hi.map(affineValue).reduce(min2, end)));
    end = { kind: "local", name };
  }
  let len: Value = start ? select(">", end, start, bin("-", end, start), num(0)) : lo.length || hi.length ? select(">", end, num(0), end, num(0)) : end;
  for (const g of [...gates].reverse()) len = select(">=", affineValue(g), num(0), len, num(0));
  const lenName = namer.fresh(`${s.index}_len`);
  pre.push(i32(lenName, len));
  // inside the new range every test used holds: each is its chosen branch
  const holds = (v: Value): Value => {
    if (v.kind !== "select") return v;
    const t = testOf(v.op, v.left, v.right, defs);
    return t && used.has(keyOf(t)) ? v.then : v;
  };
  let inner = mapStmts(s.body, { value: holds });
  inner = propagateCopies(inner);
  let index = s.index;
  if (start) {
    index = namer.fresh(`${s.index}0`);
    inner = [i32(s.index, bin("+", { kind: "local", name: index }, start)), ...inner];
  }
  return [...pre, { ...s, index, extent: lenName, body: shareLoads(inner, namer) }];
}

/**
 * A cell the body reads more than once, of an array it does not write, at ids it computes (`dz_row[j]`
 * after `let j = j0 + j_lo`), read once into a local after the last of those ids: `scalar-replace.ts`
 * leaves reads at computed ids where they are, and a vector loop would load it twice.
 */
function shareLoads(body: readonly Stmt[], namer: Namer): Stmt[] {
  const writes = written(body);
  const lets = new Map(body.flatMap((x, k) => (x.kind === "let" ? [[x.name, k] as const] : [])));
  const key = (v: Value & { kind: "load" }) => `${v.array}[${v.at.map((i) => `${i.var ?? ""}+${i.plus}`).join(",")}]`;
  const count = new Map<string, { load: Value & { kind: "load" }; n: number }>();
  for (const x of body)
    for (const v of valuesOf(x).slice(0, x.kind === "store" ? 1 : undefined))
      for (const n of valueNodes(v)) {
        if (n.kind !== "load" || writes.has(n.array) || !n.at.some((i) => i.var !== undefined && lets.has(i.var))) continue;
        const c = count.get(key(n)) ?? { load: n, n: 0 };
        count.set(key(n), { ...c, n: c.n + 1 });
      }
  const shared = [...count.values()].filter((c) => c.n > 1);
  if (shared.length === 0) return [...body];
  const name = new Map(shared.map((c) => [key(c.load), namer.fresh(cellName(c.load.array, c.load.at))] as const));
  const after = (c: { load: Value & { kind: "load" } }) => Math.max(...c.load.at.map((i) => (i.var !== undefined ? (lets.get(i.var) ?? -1) : -1)));
  const replaced = mapStmts(body, { value: (v) => (v.kind === "load" && name.has(key(v)) ? { kind: "local", name: name.get(key(v))! } : v) });
  const out: Stmt[] = [];
  replaced.forEach((x, k) => {
    out.push(x);
    for (const c of shared) if (after(c) === k) out.push({ kind: "let", name: name.get(key(c.load))!, type: "f64", mutable: false, value: c.load });
  });
  return out;
}

/** Integer lets that only copy another local (`let at_safe = at`) replaced by that local. */
function propagateCopies(body: readonly Stmt[]): Stmt[] {
  const copies = new Map<string, string>();
  for (const x of body) if (x.kind === "let" && x.type === "i32" && !x.mutable && x.value.kind === "local") copies.set(x.name, copies.get(x.value.name) ?? x.value.name);
  if (copies.size === 0) return [...body];
  const kept = body.filter((x) => !(x.kind === "let" && copies.has(x.name)));
  return mapStmts(kept, {
    index: (i) => (i.var !== undefined && copies.has(i.var) ? { var: copies.get(i.var)!, plus: i.plus } : i),
    value: (v) => (v.kind === "local" && copies.has(v.name) ? { kind: "local", name: copies.get(v.name)! } : v),
  });
}
