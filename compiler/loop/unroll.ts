/**
 * Unrolling, the pass that carries out a loop's `unroll` directive. Unrolling pays for loads and
 * stores: four rows of a reduction read four cells per trip and add them up before touching the
 * accumulator once; an elementwise pass writes two rows by four columns per trip.
 *
 * - An innermost loop runs `factor` copies of its body per trip, then a remainder loop.
 * - A loop whose body is exactly one loop (a perfect nest) is unrolled and jammed: the copies of
 *   its innermost body run together in that innermost loop, then a remainder nest.
 * - Any other loop (its body holds statements beside the inner loop, or the innermost body holds a
 *   loop of its own) is left as it is: the directive is dropped.
 *
 * A body that adds into places has its copies interleaved statement by statement (copy 0, 1, ...
 * of each statement in turn), so copies that add into the same place are next to each other and
 * become one addition of their terms, added together first. Any other body runs copy after copy,
 * each as written (stores to several outputs stay interleaved, which measured faster for
 * softmax_xent's dz and dt). A `let` in a copy takes a fresh name.
 */
import { at, bin, mapStmts, num, sumOf, type Index, type Namer, type Stmt, type Value } from "./ir.js";
import { printIndex } from "./print.js";

export function unroll(body: readonly Stmt[], namer: Namer): Stmt[] {
  return body.flatMap((s): Stmt[] => {
    if (s.kind === "block") return [{ ...s, body: unroll(s.body, namer) }];
    if (s.kind === "if-given") return [{ ...s, then: unroll(s.then, namer) }];
    if (s.kind !== "for") return [s];
    if (s.unroll <= 1 || s.step !== 1 || s.resume) return [{ ...s, unroll: 1, body: unroll(s.body, namer.child()) }];
    const innermost = s.body.some((x) => x.kind === "for" || x.kind === "block") ? undefined : s;
    const nest = innermost ? [s] : perfectNest(s);
    const inner = nest?.[nest.length - 1];
    if (!nest || !inner || inner.kind !== "for" || inner.body.some((x) => x.kind === "for" || x.kind === "block")) return [{ ...s, unroll: 1, body: unroll(s.body, namer.child()) }];
    // the copies' lets are named in the main loop's own scope
    const scope = namer.child();
    const copies = Array.from({ length: s.unroll }, (_, k) => copyBody(inner.body, s.index, k, scope));
    const adds = inner.body.some((x) => x.kind === "store" && x.op === "+=");
    const jammed = adds ? merge(copies[0]!.flatMap((_, j) => copies.map((c) => c[j]!))) : copies.flat();
    let main: Stmt = { ...s, unroll: 1, step: s.unroll, resume: true, body: unroll(rebuild(nest.slice(1), jammed), scope) };
    if (!adds && nest.length > 1 && inner.unroll > 1) {
      // the innermost loop unrolled too: its copies row by row (n: d, d+1, ...; then n+1), as a
      // hand-written 2x4 block stores each row's cells in order
      const cells = copies.flatMap((c) => Array.from({ length: inner.unroll }, (_, b) => copyBody(c, inner.index, b, scope))).flat();
      const innermost: Stmt[] = [
        { kind: "counter", index: inner.index },
        { ...inner, unroll: 1, step: inner.unroll, resume: true, body: cells },
        { ...inner, unroll: 1, resume: true, body: jammed },
      ];
      main = { ...s, unroll: 1, step: s.unroll, resume: true, body: rebuild(nest.slice(1, -1), innermost) };
    }
    const rest: Stmt = { ...s, unroll: 1, resume: true, body: unroll(s.body, namer.child()) };
    return [{ kind: "counter", index: s.index }, main, rest];
  });
}

/** The loops of a perfect nest from `s` down (each body exactly one loop), or undefined. */
function perfectNest(s: Stmt): Stmt[] | undefined {
  const out: Stmt[] = [s];
  let cur = s;
  while (cur.kind === "for" && cur.body.some((x) => x.kind === "for")) {
    if (cur.body.length !== 1) return undefined;
    cur = cur.body[0]!;
    out.push(cur);
  }
  return out;
}

/** The nest `loops` (outermost first) around `body`. */
function rebuild(loops: readonly Stmt[], body: readonly Stmt[]): Stmt[] {
  if (loops.length === 0) return [...body];
  const [first, ...rest] = loops;
  if (first!.kind !== "for") throw new Error("unroll: a nest holds only loops");
  return [{ ...first!, body: rebuild(rest, body) }];
}

/** Copy `k` of a body: `index` moved on by `k`, each `let` renamed. */
function copyBody(body: readonly Stmt[], index: string, k: number, namer: Namer): Stmt[] {
  if (k === 0) return [...body];
  const renames = new Map<string, string>();
  for (const s of body) if (s.kind === "let") renames.set(s.name, namer.fresh(s.name));
  // an index may be a let of the body too (an id read from an integer array: `z[n, label_id]`)
  const shift = (i: Index): Index => (i.var === index ? at(i.var, i.plus + k) : i.var !== undefined && renames.has(i.var) ? at(renames.get(i.var)!, i.plus) : i);
  // the counter read as a value (a delta's test `v === id`) moves on too
  const rename = (v: Value): Value =>
    v.kind === "local" && renames.has(v.name) ? { kind: "local", name: renames.get(v.name)! } : v.kind === "local" && v.name === index ? bin("+", v, num(k)) : v;
  return mapStmts(body, { index: shift, value: rename }).map((s) => {
    if (s.kind === "let") return { ...s, name: renames.get(s.name)! };
    if (s.kind === "store" && s.place.kind === "local" && renames.has(s.place.name)) return { ...s, place: { kind: "local", name: renames.get(s.place.name)! } };
    return s;
  });
}

/** Adjacent additions into the same place become one: `c += a; c += b` is `c += a + b`. */
function merge(body: readonly Stmt[]): Stmt[] {
  const out: Stmt[] = [];
  let terms: Value[] = [];
  const key = (s: Stmt) => (s.kind === "store" && s.op === "+=" ? (s.place.kind === "cell" ? `${s.place.array}[${s.place.at.map(printIndex).join(",")}]` : s.place.name) : undefined);
  for (const s of body) {
    const last = out[out.length - 1];
    if (last && key(s) !== undefined && key(s) === key(last) && s.kind === "store") {
      terms.push(s.value);
      out[out.length - 1] = { ...(last as Stmt & { kind: "store" }), value: sumOf(terms) };
      continue;
    }
    terms = s.kind === "store" ? [s.value] : [];
    out.push(s);
  }
  return out;
}
