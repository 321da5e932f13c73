/**
 * Local accumulators. A reduction whose cell does not move with the innermost loop (a row sum
 * `r[n]` over the loop on `d`) would read and write memory on every trip; V8 cannot keep a
 * typed-array cell in a register because another array may share its buffer. The cell is read once
 * into a local before the loop, added into inside it, and written back after it. A running maximum
 * (`max=`, a row's max) is kept in a local the same way.
 */
import { cellName, mapStmts, stmtNodes, type Namer, type Place, type Stmt } from "./ir.js";
import { printIndex } from "./print.js";

export function accumulate(body: readonly Stmt[], namer: Namer): Stmt[] {
  return body.flatMap((s): Stmt[] => {
    if (s.kind === "block") return [{ ...s, body: accumulate(s.body, namer) }];
    if (s.kind === "if-given") return [{ ...s, then: accumulate(s.then, namer) }];
    if (s.kind !== "for") return [s];
    // a loop's body is a scope of its own: the remainder loop's locals reuse the main loop's names
    if (s.body.some((x) => x.kind === "for" || x.kind === "block")) return [{ ...s, body: accumulate(s.body, namer.child()) }];
    // an innermost loop: cells added into that do not move with its counter and are touched by nothing else
    const key = (p: Place) => (p.kind === "cell" ? `${p.array}[${p.at.map(printIndex).join(",")}]` : "");
    const reads = new Set<string>();
    mapStmts(s.body, {
      value: (v) => {
        if (v.kind === "load") reads.add(v.array);
        return v;
      },
    });
    const locals = new Map<string, { name: string; place: Place & { kind: "cell" } }>();
    const lets = new Set(stmtNodes(s.body).flatMap((x) => (x.kind === "let" ? [x.name] : [])));
    for (const x of s.body) {
      if (x.kind !== "store" || x.op === "=" || x.place.kind !== "cell") continue;
      const p = x.place;
      // a cell at an index the body computes (an id of a scatter-add) moves with the loop too
      if (p.at.some((i) => i.var === s.index || (i.var !== undefined && lets.has(i.var))) || reads.has(p.array) || locals.has(key(p))) continue;
      // every store into this array in the loop is an addition (or every one a max=) into a fixed cell
      const all = s.body.filter((y) => y.kind === "store" && y.place.kind === "cell" && y.place.array === p.array);
      if (all.some((y) => y.kind === "store" && (y.op !== x.op || (y.place as Place & { kind: "cell" }).at.some((i) => i.var === s.index)))) continue;
      locals.set(key(p), { name: namer.fresh(cellName(p.array, p.at)), place: p });
    }
    if (locals.size === 0) return [s];
    const before: Stmt[] = [];
    const after: Stmt[] = [];
    for (const { name, place } of locals.values()) {
      before.push({ kind: "let", name, type: "f64", mutable: true, value: { kind: "load", array: place.array, at: place.at } });
      after.push({ kind: "store", place, op: "=", value: { kind: "local", name } });
    }
    const inner = s.body.map((x): Stmt => {
      if (x.kind !== "store" || x.place.kind !== "cell") return x;
      const l = locals.get(key(x.place));
      return l ? { ...x, place: { kind: "local", name: l.name } } : x;
    });
    return [...before, { ...s, body: inner }, ...after];
  });
}
