/**
 * Vectorization, for backends with SIMD (the WebAssembly one): an innermost loop whose iterations
 * are independent along its counter becomes a loop of `width` iterations per trip, marked
 * `vector: width` for the backend to run lane-parallel, then the scalar loop for the tail. A trip
 * runs two vectors' worth (`step` = 2 * width): two independent chains of additions for a
 * reduction, and half the loop overhead; a body that adds into four places or more runs one
 * vector per trip (its chains are independent already).
 *
 *     for d in 0..D { dx[n, d] = a[d] * xhat[n, d] }
 *  => counter d
 *     for d in d..D by 4, vector 2 { dx[n, d] = a[d] * xhat[n, d] }
 *     for d in d..D { dx[n, d] = a[d] * xhat[n, d] }
 *
 * An innermost loop that `unroll.ts` already unrolled (`counter d; for d in d..D by 4 {copies};
 * for d in d..D {body}`) is vectorized from its remainder's body, which is the loop's own body:
 * the copies were for scalar code, and lanes take their place.
 *
 * A loop qualifies when its body is lets and stores only, and:
 * - the cells of an array written in one iteration all have the counter at the same place (rows
 *   `dx[n, d]` and `dx[n + 1, d]`, never `dx[n, d + 1]`), and every read of that array in the
 *   loop reads one of those cells (no iteration reads or writes what another writes);
 * - every store to a cell or a local that does not move with the counter adds (`+=`) or keeps the
 *   larger (`max=`), and the loop never reads that place: a reduction, which the backend
 *   accumulates in vector registers and adds up across lanes after the loop;
 * - no integer local (an id) moves with the counter (a gather is left scalar), except a position:
 *   the counter, or another position, plus a value that does not move (`j = j0 + j_lo`,
 *   `at = j + q - 1`, as `bounds.ts` writes a loop over a range), which moves one element per
 *   iteration and is used only as an index or in another position. A cell whose last index is a
 *   position is contiguous (the backend reads and writes its lanes from where the position stands
 *   in the first lane); the cells written at positions must all be at the same one;
 * - a choice (`select`) that moves with the counter reads no cell off the iteration's own
 *   (`x[d + 1]`), since both branches are evaluated lane-parallel.
 * Reads along any index are allowed: contiguous ones become vector loads, strided ones lane loads.
 */
import { assertNever, valueNodes, type Stmt, type Value } from "./ir.js";
import { affineOf } from "./bounds.js";

export function vectorize(body: readonly Stmt[], width: number): Stmt[] {
  const out: Stmt[] = [];
  for (let k = 0; k < body.length; k++) {
    const s = body[k]!;
    const main = body[k + 1];
    const rest = body[k + 2];
    // an unrolled innermost loop: counter, main loop of copies, remainder with the body itself
    if (s.kind === "counter" && main?.kind === "for" && rest?.kind === "for" && main.index === s.index && rest.index === s.index && main.resume && rest.resume && rest.step === 1 && innermost(main) && innermost(rest) && vectorizable(rest.body, rest.index)) {
      out.push(s, { ...rest, step: vectors(rest.body, rest.index) * width, vector: width }, rest);
      k += 2;
      continue;
    }
    if (s.kind === "for" && !s.resume && s.step === 1 && innermost(s) && vectorizable(s.body, s.index)) {
      out.push({ kind: "counter", index: s.index }, { ...s, resume: true, step: vectors(s.body, s.index) * width, unroll: 1, vector: width }, { ...s, resume: true, unroll: 1 });
      continue;
    }
    switch (s.kind) {
      case "for":
      case "block":
        out.push({ ...s, body: vectorize(s.body, width) });
        break;
      case "if-given":
        out.push({ ...s, then: vectorize(s.then, width) });
        break;
      default:
        out.push(s);
    }
  }
  return out;
}

/**
 * Vectors per trip: two, or one when the body adds into four places or more across iterations
 * (rows of a reduction, a block's outputs): they are independent chains already, and one
 * accumulator each leaves registers free (layernorm's row sums, linear's blocked outputs measured
 * faster so in float32).
 */
function vectors(body: readonly Stmt[], i: string): number {
  const moving = new Set([i, ...positions(body, i)]);
  const reductions = body.filter((s) => s.kind === "store" && s.op !== "=" && (s.place.kind === "local" || !s.place.at.some((x) => x.var !== undefined && moving.has(x.var)))).length;
  return reductions >= 4 ? 1 : 2;
}

function innermost(s: Stmt & { kind: "for" }): boolean {
  return s.body.every((x) => x.kind === "let" || x.kind === "store" || x.kind === "comment" || x.kind === "blank");
}

/** Whether a value moves with the loop counter `i` (directly, or through a local in `varying`). */
export function varies(v: Value, i: string, varying: ReadonlySet<string>): boolean {
  return valueNodes(v).some((n) => (n.kind === "local" && (n.name === i || varying.has(n.name))) || (n.kind === "load" && n.at.some((x) => x.var !== undefined && (x.var === i || varying.has(x.var)))));
}

/** The loop-IR text of a cell, to compare places. */
function cellKey(array: string, at: readonly { var: string | undefined; plus: number }[]): string {
  return `${array}[${at.map((x) => `${x.var ?? ""}+${x.plus}`).join(",")}]`;
}

/**
 * The integer lets of an innermost body that are positions along `i`: the counter, or another
 * position, plus terms that do not move (affine, coefficient 1), in order.
 */
export function positions(body: readonly Stmt[], i: string): Set<string> {
  const out = new Set<string>();
  const varying = new Set<string>();
  for (const s of body) {
    if (s.kind !== "let") continue;
    if (!varies(s.value, i, varying)) continue;
    varying.add(s.name);
    if (s.type !== "i32" || s.mutable) continue;
    const a = affineOf(s.value, new Map());
    if (!a) continue;
    const moving = [...a.terms].filter(([n]) => n === i || varying.has(n));
    if (moving.length === 1 && moving[0]![1] === 1 && (moving[0]![0] === i || out.has(moving[0]![0]))) out.add(s.name);
  }
  return out;
}

/** Whether the innermost body runs lane-parallel along `i` (the conditions above). */
export function vectorizable(body: readonly Stmt[], i: string): boolean {
  const pos = positions(body, i);
  const moving = (v: string | undefined) => v !== undefined && (v === i || pos.has(v));
  const varying = new Set<string>();
  const reduced = new Set<string>(); // places added into across iterations (cells by key, locals by name)
  const declared = new Set<string>();
  const written = new Map<string, Set<string>>(); // array -> cells written
  const steps = new Map<string, Set<string>>(); // array -> where the counter stands in the cells written (`0:+1`: first index, i + 1; `-` for a cell that does not move)
  const reads: Value[] = [];
  for (const s of body) {
    switch (s.kind) {
      case "let":
        if (s.mutable) return false;
        if (varies(s.value, i, varying)) {
          if (s.type === "i32" && !pos.has(s.name)) return false;
          varying.add(s.name);
        }
        declared.add(s.name);
        if (!pos.has(s.name)) reads.push(s.value);
        break;
      case "store": {
        const moves = varies(s.value, i, varying);
        if (s.place.kind === "local") {
          if (declared.has(s.place.name) || s.op === "=") return false;
          reduced.add(s.place.name);
        } else {
          const at = s.place.at;
          if (at.some((x) => x.var !== undefined && !moving(x.var) && varying.has(x.var))) return false;
          const key = cellKey(s.place.array, at);
          if (!steps.has(s.place.array)) steps.set(s.place.array, new Set());
          steps.get(s.place.array)!.add(at.some((x) => moving(x.var)) ? at.map((x, k) => (x.var === i ? `${k}:${x.plus}` : moving(x.var) ? `${k}:${x.var}:${x.plus}` : "")).join("") : "-");
          if (at.some((x) => moving(x.var))) {
            if (!written.has(s.place.array)) written.set(s.place.array, new Set());
            written.get(s.place.array)!.add(key);
          } else {
            if (s.op === "=" && moves) return false;
            if (s.op !== "=") reduced.add(key);
            else if (!written.has(s.place.array)) written.set(s.place.array, new Set([key]));
            else written.get(s.place.array)!.add(key);
          }
        }
        reads.push(s.value);
        break;
      }
      case "comment":
      case "blank":
        break;
      case "for":
      case "counter":
      case "block":
      case "alloc":
      case "copy":
      case "if-given":
      case "fill":
        return false;
      default:
        return assertNever(s, "statement");
    }
  }
  // cells written in one iteration differ in an index that does not move (rows n and n + 1), so no
  // two iterations write the same cell
  for (const st of steps.values()) if (st.size > 1) return false;
  for (const v of reads) {
    for (const n of valueNodes(v)) {
      if (n.kind === "local" && reduced.has(n.name)) return false;
      // a position is an index, not a number computed with
      if (n.kind === "local" && pos.has(n.name)) return false;
      if (n.kind === "load") {
        if (reduced.has(cellKey(n.array, n.at))) return false;
        if ([...reduced].some((r) => r.startsWith(`${n.array}[`))) return false;
        const w = written.get(n.array);
        if (w && !w.has(cellKey(n.array, n.at))) return false;
      }
      // both branches of a choice that moves run lane-parallel: they may read only the iteration's own cells
      if (n.kind === "select" && varies(n, i, varying)) {
        for (const b of [n.then, n.else]) for (const m of valueNodes(b)) if (m.kind === "load" && m.at.some((x) => x.plus !== 0)) return false;
      }
    }
  }
  // a reduced cell's array must not be written elsewhere in the loop either
  for (const r of reduced) {
    const array = r.includes("[") ? r.slice(0, r.indexOf("[")) : undefined;
    if (array !== undefined && written.has(array)) return false;
  }
  return true;
}
