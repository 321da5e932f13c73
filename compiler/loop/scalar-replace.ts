/**
 * Scalar replacement of array reads in an innermost loop. V8 cannot prove that a store to one typed
 * array leaves another unchanged (they may share a buffer), so it reloads every read after every
 * store. Each distinct read of an array the loop does not write is loaded once into a local named
 * for what it holds (`xhat_n1_d` is `xhat[n + 1, d]`): at the top of the body, or before the loop
 * when it does not move with the loop's counter. A body with a loop of its own is left alone, except
 * that the reads its loops placed before themselves are made once, at its top, when nothing in it
 * writes that array (an unrolled loop and its remainder read the row's `r[n]` once).
 */
import { cellName, mapStmts, stmtNodes, valueNodes, valuesOf, written, type Index, type Namer, type Stmt, type Value } from "./ir.js";
import { printIndex } from "./print.js";

export function scalarReplace(body: readonly Stmt[], namer: Namer, slots?: ReadonlyMap<string, readonly string[]>): Stmt[] {
  // arrays with named slots (hoist.ts): a read of a slot is named for it (`dx_xhat_d`)
  const fields = slots ?? new Map(stmtNodes(body).flatMap((x) => (x.kind === "alloc" && x.fields ? [[x.array, x.fields] as const] : [])));
  const nameOf = (array: string, at: readonly Index[]) => {
    const f = fields.get(array);
    const last = at[at.length - 1];
    return f && last && last.var === undefined && f[last.plus] !== undefined ? cellName(f[last.plus]!, at.slice(0, -1)) : cellName(array, at);
  };
  return body.flatMap((s): Stmt[] => {
    if (s.kind === "block") return [{ ...s, body: scalarReplace(s.body, namer, fields) }];
    if (s.kind === "if-given") return [{ ...s, then: scalarReplace(s.then, namer, fields) }];
    if (s.kind !== "for") return [s];
    if (s.body.some((x) => x.kind === "for" || x.kind === "block" || x.kind === "counter")) return [{ ...s, body: shareReads(scalarReplace(s.body, namer.child(), fields)) }];
    const writes = written(s.body);
    const key = (v: Value & { kind: "load" }) => `${v.array}[${v.at.map(printIndex).join(",")}]`;
    const found = new Map<string, { name: string; load: Value & { kind: "load" } }>();
    const order: string[] = [];
    // a read at an index the body computes (an id read from an integer array) stays where it is
    const lets = new Set(s.body.flatMap((x) => (x.kind === "let" ? [x.name] : [])));
    for (const x of s.body)
      for (const v of valuesOf(x).slice(0, x.kind === "store" ? 1 : undefined))
        for (const n of valueNodes(v)) {
          if (n.kind !== "load" || writes.has(n.array) || found.has(key(n)) || n.at.some((i) => i.var !== undefined && lets.has(i.var))) continue;
          found.set(key(n), { name: "", load: n });
          order.push(key(n));
        }
    if (order.length === 0) return [s];
    const before: Stmt[] = [];
    const top: Stmt[] = [];
    const moves = (k: string) => found.get(k)!.load.at.some((i) => i.var === s.index);
    // reads before the loop take names in this scope, reads in the body in the body's own
    const inner = namer.child();
    for (const k of [...order.filter((x) => !moves(x)), ...order.filter(moves)]) {
      const f = found.get(k)!;
      const name = (moves(k) ? inner : namer).fresh(nameOf(f.load.array, f.load.at));
      found.set(k, { ...f, name });
    }
    for (const k of order) {
      const f = found.get(k)!;
      (moves(k) ? top : before).push({ kind: "let", name: f.name, type: "f64", mutable: false, value: f.load });
    }
    const replaced = mapStmts(s.body, { value: (v) => (v.kind === "load" && found.has(key(v)) ? { kind: "local", name: found.get(key(v))!.name } : v) });
    return [...before, { ...s, body: [...top, ...replaced] }];
  });
}

/** The reads at the top level of a body, made once at its top where nothing in the body writes the array; repeats reuse the first. */
function shareReads(body: readonly Stmt[]): Stmt[] {
  const writes = written(body);
  const key = (v: Value & { kind: "load" }) => `${v.array}[${v.at.map(printIndex).join(",")}]`;
  const first = new Map<string, string>();
  const renamed = new Map<string, string>();
  const top: Stmt[] = [];
  const rest: Stmt[] = [];
  for (const s of body) {
    if (s.kind === "let" && !s.mutable && s.value.kind === "load" && !writes.has(s.value.array)) {
      const k = key(s.value);
      const had = first.get(k);
      if (had === undefined) {
        first.set(k, s.name);
        top.push(s);
      } else renamed.set(s.name, had);
      continue;
    }
    rest.push(s);
  }
  if (renamed.size === 0) return [...body];
  return [...top, ...mapStmts(rest, { value: (v) => (v.kind === "local" && renamed.has(v.name) ? { kind: "local", name: renamed.get(v.name)! } : v) })];
}
