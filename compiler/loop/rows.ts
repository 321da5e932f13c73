/**
 * Row scratch: the loop over a row moved inside the loops it holds (loop interchange, with the
 * row's values kept in a scratch array of the row's length). Why: a one-scatter pass
 * (`schedule/scatter.ts`) computes an adjoint's element as a local, then adds its terms in loops
 * over the taps (a convolution's `c, p, q`), whose innermost trip is the window's width (3). Each
 * add goes through memory at an id and nothing runs lane-parallel. A person writes the taps
 * outside the row instead: the row's values first, into `J` slots, then for each tap a loop over
 * the row, contiguous over the arrays it reads and adds into, `J` trips long, with the tap's
 * weight and the weight gradient's accumulator invariant in it (`accumulate.ts` keeps the
 * accumulator in a register, `bounds.ts` turns the padding tests into the loop's range,
 * `vectorize.ts` runs it lane-parallel). The scratch holds one row, not the adjoint: no
 * temporary the size of the activation.
 *
 *     for j in 0..J {                        alloc dz_row: f64[J]
 *       let dz: f64 = e[j]                   for j in 0..J {
 *       for c in 0..C {               =>       let dz: f64 = e[j]
 *         dx[c, j] += dz * w[c]                dz_row[j] = dz
 *       }                                    }
 *     }                                      for c in 0..C {
 *                                              for j in 0..J {
 *                                                dx[c, j] += dz_row[j] * w[c]
 *                                              }
 *                                            }
 *
 * A loop qualifies when its body is `let`s of floats, then one perfect nest of loops (each level
 * one loop, the innermost lets and stores) that:
 * - only adds (`+=`) into cells of arrays that nothing in the loop reads otherwise: the additions
 *   are then the same, in another order (as `unroll.ts` and `block.ts` reorder sums);
 * - has extents that the row loop does not define;
 * - reads or adds along the row contiguously somewhere: the last index of a cell is the row's
 *   counter, or an id that is the counter plus something that does not move (`j + q - 1`), or
 *   such an id clamped into range.
 * The allocations go first in the body the pass is given; the row's extent must be a name that
 * nothing in that body defines.
 */
import { dependsOn, stmtNodes, valueNodes, valuesOf, mapStmts, type Namer, type Stmt, type Value } from "./ir.js";
import { affineOf } from "./bounds.js";

type Loop = Stmt & { kind: "for" };

export function rows(body: readonly Stmt[], namer: Namer): Stmt[] {
  const defined = new Set(stmtNodes(body).flatMap((s) => (s.kind === "let" ? [s.name] : s.kind === "for" || s.kind === "counter" ? [s.index] : [])));
  const allocs: Stmt[] = [];
  const out = walk(body, namer, allocs, defined);
  return allocs.length ? [...allocs, ...out] : out;
}

function walk(body: readonly Stmt[], namer: Namer, allocs: Stmt[], defined: ReadonlySet<string>): Stmt[] {
  return body.flatMap((s): Stmt[] => {
    switch (s.kind) {
      case "for": {
        const done = interchange(s, namer, allocs, defined);
        return done ?? [{ ...s, body: walk(s.body, namer, allocs, defined) }];
      }
      case "block":
        return [{ ...s, body: walk(s.body, namer, allocs, defined) }];
      case "if-given":
        return [{ ...s, then: walk(s.then, namer, allocs, defined) }];
      default:
        return [s];
    }
  });
}

const quiet = (s: Stmt) => s.kind === "comment" || s.kind === "blank";

function interchange(row: Loop, namer: Namer, allocs: Stmt[], defined: ReadonlySet<string>): Stmt[] | undefined {
  if (row.resume || row.step !== 1 || row.vector !== undefined || defined.has(row.extent)) return undefined;
  const items = row.body.filter((s) => !quiet(s));
  const head = items.slice(0, -1);
  const taps = items[items.length - 1];
  if (!taps || taps.kind !== "for" || head.length === 0 || !head.every((s) => s.kind === "let" && !s.mutable && s.type !== "i32")) return undefined;
  const heads = new Set(head.map((s) => (s as Stmt & { kind: "let" }).name));
  // the perfect nest of the taps
  const nest: Loop[] = [taps];
  for (;;) {
    const cur = nest[nest.length - 1]!;
    const inner = cur.body.filter((s) => !quiet(s));
    const only = inner[0];
    if (inner.length === 1 && only?.kind === "for") nest.push(only);
    else break;
  }
  const innermost = nest[nest.length - 1]!;
  const leaf = innermost.body;
  if (!leaf.every((s) => quiet(s) || (s.kind === "let" && !s.mutable) || (s.kind === "store" && s.place.kind === "cell" && s.op === "+="))) return undefined;
  if (nest.some((l) => l.resume || l.step !== 1 || l.vector !== undefined || heads.has(l.extent) || l.extent === row.index)) return undefined;
  // the arrays added into: read by nothing in the row loop but their own additions
  const added = new Set(leaf.flatMap((s) => (s.kind === "store" && s.place.kind === "cell" ? [s.place.array] : [])));
  for (const s of stmtNodes(row.body)) {
    const vals = s.kind === "store" ? [s.value] : s.kind === "let" ? [s.value] : [];
    for (const v of vals) for (const n of valueNodes(v)) if (n.kind === "load" && added.has(n.array)) return undefined;
  }
  // something along the row is contiguous
  const defs = new Map(leaf.flatMap((s) => (s.kind === "let" && s.type === "i32" ? [[s.name, s.value] as const] : [])));
  const alongRow = (v: string | undefined): boolean => {
    if (v === undefined) return false;
    if (v === row.index) return true;
    const d = defs.get(v);
    return d !== undefined && rowish(d);
  };
  // an id one apart from the counter per trip, or such an id clamped into range (`at_safe`)
  const rowish = (d: Value): boolean => {
    if (d.kind === "select") return rowish(d.then) && (d.else.kind === "num" || rowish(d.else));
    if (d.kind === "local" && defs.has(d.name)) return rowish(defs.get(d.name)!);
    const a = affineOf(d, defs);
    return a !== undefined && a.terms.get(row.index) === 1;
  };
  const cells = leaf.flatMap((s) => [...(s.kind === "store" && s.place.kind === "cell" ? [s.place.at] : []), ...valuesOf(s).flatMap((v) => valueNodes(v).flatMap((n) => (n.kind === "load" ? [n.at] : [])))]);
  if (!cells.some((at) => at.length > 0 && alongRow(at[at.length - 1]!.var))) return undefined;
  // the row's values the taps read, each kept in a row of scratch
  const read = head.filter((s) => s.kind === "let" && stmtNodes(nest).some((x) => valuesOf(x).some((v) => dependsOn(v, new Set([s.name])))));
  if (read.length === 0) return undefined;
  const scratch = new Map<string, string>();
  for (const s of read) {
    const name = (s as Stmt & { kind: "let" }).name;
    const array = namer.fresh(`${name}_row`);
    scratch.set(name, array);
    allocs.push({ kind: "alloc", array, type: "f64", dims: [row.extent], note: `${name} over ${row.index}, one row at a time` });
  }
  const at = [{ var: row.index, plus: 0 }];
  const fill: Loop = { ...row, unroll: 1, body: [...row.body.filter((s) => s !== taps), ...[...scratch].map(([name, array]): Stmt => ({ kind: "store", place: { kind: "cell", array, at }, op: "=", value: { kind: "local", name } }))] };
  const fromRow = (v: Value): Value => (v.kind === "local" && scratch.has(v.name) ? { kind: "load", array: scratch.get(v.name)!, at } : v);
  const along: Loop = { kind: "for", index: row.index, extent: row.extent, step: 1, resume: false, unroll: 1, body: mapStmts(leaf, { value: fromRow }) };
  const rebuild = (k: number): Loop => (k === nest.length - 1 ? { ...nest[k]!, body: [along] } : { ...nest[k]!, body: nest[k]!.body.map((s) => (s === nest[k + 1] ? rebuild(k + 1) : s)) });
  const note: Stmt = { kind: "comment", text: `${[...scratch.keys()].join(", ")} for a whole row of ${row.index} first, into ${[...scratch.values()].join(", ")} (${row.extent} values, not the activation), then the loops over ${nest.map((l) => l.index).join(", ")} with ${row.index} innermost (loop/rows.ts)` };
  return [note, fill, rebuild(0)];
}
