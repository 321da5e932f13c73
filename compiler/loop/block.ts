/**
 * Register blocking for matmul-shaped passes, for backends with SIMD (the WebAssembly one), run
 * after the other loop passes and before `vectorize.ts`. Why: `unroll.ts` already gives a
 * matmul-shaped pass several output rows per trip (`n`, `n + 1`, ...), but each iteration of the
 * loop around them still reloads the operand those rows share and reads and writes its own row of
 * the other output. Running `factor` iterations of that outer loop together (unroll and jam, down
 * to the innermost loop) makes a block of outputs per trip: a shared operand (`dout[n, k]`) is
 * loaded once for `factor` rows of the other (`w[d, k]`, `w[d + 1, k]`), every output of the
 * block keeps its own accumulator (a local, which the vector loop holds in a register), and
 * additions of the copies into the same cell (`dk[j, e] += q[i, e] * r_i_j` for i and i + 1)
 * become one read and write of it with the terms added first.
 *
 *     for d in 0..D {                          counter d
 *       for k in 0..K {                        for d in d..D by 2 {
 *         let a = dout[n, k]                     for k in 0..K {
 *         let b = w[d, k]              =>          let a = dout[n, k]
 *         acc_d += a * b                           let b = w[d, k]
 *       }                                          let b2 = w[d + 1, k]
 *     }                                            acc_d += a * b
 *                                                  acc_d2 += a * b2
 *                                                }
 *                                              }
 *                                              for d in d..D { (the loop's own body) }
 *
 * A loop (step 1, not yet unrolled or vectorized) is blocked when:
 * - its body holds loops, and only loops, counters, lets, stores and comments below it;
 * - some innermost loop below it reads a cell that does not move with the loop's counter (the
 *   shared operand) and one that does, and adds into a place (a sum of products): the matmul
 *   shape (an elementwise nest with a broadcast operand is left to `unroll.ts`);
 * - its iterations are independent: each array written below it either has the counter at one
 *   position, with one offset, in every cell written and read (each iteration owns its slice), or
 *   is only added into (`+=`) at cells without the counter and never read otherwise (a sum over
 *   the loop, whose order the block changes as `unroll.ts` does);
 * - every local it writes is declared below it;
 * - no loop below it has an extent that moves with the counter (a range `bounds.ts` computed).
 * Copy c moves the counter on by c; a `let` that does not depend on the counter is shared by the
 * copies (declared once), any other `let` takes a fresh name in each copy.
 */
import { assertNever, bin, dependsOn, mapStmts, num, stmtNodes, valueNodes, valuesOf, type Index, type Namer, type Stmt, type Value } from "./ir.js";
import { printIndex } from "./print.js";

export function block(body: readonly Stmt[], namer: Namer, factor: number): Stmt[] {
  if (factor <= 1) return [...body];
  return body.flatMap((s): Stmt[] => {
    switch (s.kind) {
      case "for":
        if (s.step === 1 && !s.resume && s.vector === undefined && blockable(s)) {
          const main: Stmt = { ...s, resume: true, step: factor, unroll: 1, body: jam(s, factor, namer.child()) };
          return [{ kind: "counter", index: s.index }, main, { ...s, resume: true, unroll: 1 }];
        }
        return [{ ...s, body: block(s.body, namer.child(), factor) }];
      case "block":
        return [{ ...s, body: block(s.body, namer.child(), factor) }];
      case "if-given":
        return [{ ...s, then: block(s.then, namer, factor) }];
      case "counter":
      case "let":
      case "store":
      case "alloc":
      case "copy":
      case "fill":
      case "comment":
      case "blank":
        return [s];
      default:
        return assertNever(s, "statement");
    }
  });
}

const cellKey = (array: string, at: readonly Index[]) => `${array}[${at.map(printIndex).join(",")}]`;

/** Whether the loop `s` qualifies (the conditions above). */
function blockable(s: Stmt & { kind: "for" }): boolean {
  const i = s.index;
  const all = stmtNodes(s.body);
  if (!s.body.some((x) => x.kind === "for")) return false;
  if (!all.every((x) => x.kind === "for" || x.kind === "counter" || x.kind === "let" || x.kind === "store" || x.kind === "comment" || x.kind === "blank")) return false;
  // locals that move with the counter (lets computed from it), and locals declared below
  const moving = new Set<string>([i]);
  const declared = new Set<string>();
  for (const x of all) {
    if (x.kind === "let") {
      declared.add(x.name);
      if (dependsOn(x.value, moving) || x.mutable) moving.add(x.name);
    }
    if (x.kind === "for" || x.kind === "counter") declared.add(x.index);
  }
  const movesAt = (at: readonly Index[]) => at.some((x) => x.var !== undefined && moving.has(x.var));
  // a loop below whose extent moves with the counter (a range from `bounds.ts`) cannot take the copies' iterations together
  if (all.some((x) => x.kind === "for" && moving.has(x.extent))) return false;
  // the matmul shape: an innermost loop reading a shared operand and one of the counter's own
  const innermost = all.filter((x): x is Stmt & { kind: "for" } => x.kind === "for" && !x.body.some((y) => y.kind === "for" || y.kind === "block"));
  const shape = innermost.some((loop) => {
    const loads = loop.body.flatMap(valuesOf).flatMap(valueNodes).filter((v): v is Value & { kind: "load" } => v.kind === "load");
    const own = loads.some((v) => movesAt(v.at));
    const shared = loads.some((v) => !movesAt(v.at) && v.at.some((x) => x.var === loop.index));
    const contracts = loop.body.some((x) => x.kind === "store" && x.op === "+=");
    return own && shared && contracts;
  });
  if (!shape) return false;
  // independence: each array written is the counter's own slice, or a sum over the loop
  const stores = all.filter((x): x is Stmt & { kind: "store" } => x.kind === "store");
  if (stores.some((x) => x.place.kind === "local" && !declared.has(x.place.name))) return false;
  const loads = all.flatMap((x) => (x.kind === "let" ? [x.value] : x.kind === "store" ? [x.value] : [])).flatMap(valueNodes).filter((v): v is Value & { kind: "load" } => v.kind === "load");
  const arrays = new Set(stores.flatMap((x) => (x.place.kind === "cell" ? [x.place.array] : [])));
  for (const a of arrays) {
    const cells = stores.flatMap((x) => (x.place.kind === "cell" && x.place.array === a ? [{ at: x.place.at, op: x.op }] : []));
    const reads = loads.filter((v) => v.array === a);
    const slot = (at: readonly Index[]) => {
      const ks = at.flatMap((x, k) => (x.var === i ? [`${k}:${x.plus}`] : []));
      // the counter through a moving local (an index computed from it) is not a slice we can see
      if (at.some((x) => x.var !== undefined && x.var !== i && moving.has(x.var))) return "?";
      return ks.length === 1 ? ks[0]! : "?";
    };
    const slots = new Set([...cells.map((c) => slot(c.at)), ...reads.map((r) => slot(r.at))]);
    const own = slots.size === 1 && !slots.has("?");
    const sum = cells.every((c) => c.op === "+=" && !movesAt(c.at)) && reads.length === 0;
    if (!own && !sum) return false;
  }
  return true;
}

/** The body of `s` run `factor` times per trip, copy c with the counter moved on by c, statement by statement. */
function jam(s: Stmt & { kind: "for" }, factor: number, namer: Namer): Stmt[] {
  const copies = Array.from({ length: factor }, (_, c) => copyBody(s.body, s.index, c, namer));
  return zip(copies);
}

/** Copy `c` of a body: the counter `i` moved on by `c`, each `let` that moves with it renamed (the others keep their name: copy 0 declares them). */
function copyBody(body: readonly Stmt[], i: string, c: number, namer: Namer): Stmt[] {
  if (c === 0) return [...body];
  const moving = new Set<string>([i]);
  const renames = new Map<string, string>();
  for (const x of stmtNodes(body))
    if (x.kind === "let" && (x.mutable || dependsOn(x.value, moving))) {
      moving.add(x.name);
      if (!renames.has(x.name)) renames.set(x.name, namer.fresh(x.name));
    }
  const shift = (x: Index): Index => (x.var === i ? { var: i, plus: x.plus + c } : x.var !== undefined && renames.has(x.var) ? { var: renames.get(x.var)!, plus: x.plus } : x);
  const rename = (v: Value): Value => (v.kind === "local" && renames.has(v.name) ? { kind: "local", name: renames.get(v.name)! } : v.kind === "local" && v.name === i ? bin("+", v, num(c)) : v);
  const fix = (ss: readonly Stmt[]): Stmt[] =>
    ss.map((x): Stmt => {
      if (x.kind === "let" && renames.has(x.name)) return { ...x, name: renames.get(x.name)! };
      if (x.kind === "store" && x.place.kind === "local" && renames.has(x.place.name)) return { ...x, place: { kind: "local", name: renames.get(x.place.name)! } };
      if (x.kind === "for") return { ...x, body: fix(x.body) };
      return x;
    });
  return fix(mapStmts(body, { index: shift, value: rename }));
}

/**
 * The copies side by side (they have the same statements, in the same places): one loop (or
 * counter) for the copies' loops, the copies of each other statement one after another, a shared
 * `let` once, and the copies' additions into one place added up first.
 */
function zip(copies: readonly (readonly Stmt[])[]): Stmt[] {
  const out: Stmt[] = [];
  copies[0]!.forEach((s, j) => {
    const group = copies.map((c) => c[j]!);
    if (s.kind === "for") out.push({ ...s, body: zip(group.map((l) => (l as Stmt & { kind: "for" }).body)) });
    else if (s.kind === "counter" || s.kind === "comment" || s.kind === "blank") out.push(s);
    else if (s.kind === "let") out.push(...group.filter((x, k) => k === 0 || (x as Stmt & { kind: "let" }).name !== s.name));
    else out.push(...merge(group));
  });
  return out;
}

/** Copies of one statement that add into the same place become one addition of their terms. */
function merge(group: readonly Stmt[]): Stmt[] {
  const out: Stmt[] = [];
  for (const s of group) {
    const last = out[out.length - 1];
    if (last?.kind === "store" && s.kind === "store" && last.op === "+=" && s.op === "+=" && placeKey(last) === placeKey(s)) {
      out[out.length - 1] = { ...last, value: bin("+", last.value, s.value) };
      continue;
    }
    out.push(s);
  }
  return out;
}

const placeKey = (s: Stmt & { kind: "store" }) => (s.place.kind === "cell" ? cellKey(s.place.array, s.place.at) : s.place.name);
