/**
 * Scheduling the fused backward: which loops run, in what order, over which memory.
 *
 * Input: the fused gradient expressions. Output: a list of passes.
 * - Every distinct reduction is computed once, into an array over its free indices (or straight
 *   into a gradient's output array when the gradient is that reduction).
 * - Reductions with the same loop nest and no dependence on each other share one pass, so their
 *   operands are read from memory once.
 * - Loops are ordered so that the innermost walks contiguous memory of the largest tensor read.
 * - A product inside a reduction that does not move with every loop of the reduction is stored once
 *   in an array over its own indices (`materialize`), not recomputed on every iteration.
 * - The remaining gradients are elementwise passes, one per index set: gradients over the same
 *   indices are written together.
 */
import { children, collect, contains, isReduction, isStored, mul, renameFree, rewrite, stored, withBody, type Delta, type Expr, type Max, type Ref, type SizeOf, type Stored, type Sum } from "../ir/expr.js";
import { invariantFactors } from "../ir/cost.js";
import { isAffineRead } from "../ir/affine.js";
import { isDifferentiable, type TensorDecl } from "../ir/program.js";
import { nameTable } from "../ir/table.js";

/**
 * What a reduce pass computes into an array: a sum (accumulated with `+=` from 0), a max (with
 * `max=` from -Infinity: a tie test's `max(x[n,c'] - m[n], c')` in a gradient, once per row), or a
 * product stored once.
 */
export type Scheduled = Sum | Max | Stored;

export interface Reduction {
  /** A reduction, or a product stored once (`stored(...)`, no bound index). */
  readonly node: Scheduled;
  /** Free indices of the reduction: the shape of its result. */
  readonly indices: readonly string[];
  /** The gradient (input position) this reduction is exactly, if any. */
  readonly output: number | undefined;
}

export type Pass =
  | {
      readonly kind: "reduce";
      readonly loops: readonly string[];
      readonly reductions: readonly Reduction[];
      /** For each member, its free and bound indices mapped onto the pass's loop indices. */
      readonly bindings: readonly Readonly<Record<string, string>>[];
    }
  | {
      readonly kind: "map";
      readonly loops: readonly string[];
      /** Gradients over the same indices, written in one pass so shared operands are read once. */
      readonly outputs: readonly { readonly input: number; readonly expr: Expr }[];
      /**
       * Gradients that are reductions over the same loops, which nothing else reads (a cell's
       * `dw[d] = sum(..., n)` beside its `dx[n,d]`), accumulated in this pass instead of one of
       * their own (mergeOutputReductions); bindings as a reduce pass's, onto this pass's loops.
       */
      readonly accumulates?: { readonly reductions: readonly Reduction[]; readonly bindings: readonly Readonly<Record<string, string>>[] };
    };

export interface Schedule {
  /** The gradients as scheduled: the fused ones with invariant products stored (`materialize`). */
  readonly gradients: readonly Expr[];
  readonly reductions: readonly Reduction[];
  readonly passes: readonly Pass[];
  /**
   * Reductions equal to a scheduled one up to the names of their free indices (the same tensor read
   * at other indices, like `sum(do[i,f]*v[j,f], f)` inside both `dq` and `dk`): each is read from its
   * representative's array; `mapping` sends the representative's free indices to the alias's.
   */
  readonly aliases: ReadonlyMap<Expr, { readonly of: Expr; readonly mapping: Readonly<Record<string, string>> }>;
  /**
   * Stored products written into the array of a temporary that dies in the same pass (`reuse`
   * maps the product to that temporary): the pass reads the old value of each cell only to compute
   * the new one, so the kernel allocates one array instead of two.
   */
  readonly reuse: ReadonlyMap<Expr, Expr>;
  /**
   * One-scatter passes (`scatter.ts`), run after every pass above: an intermediate adjoint that
   * several gradients read through affine or gather indices, computed once per element as a local
   * and added into each of them for every tap, never stored. Absent when none was chosen.
   */
  readonly elements?: readonly ElementPass[];
}

/**
 * A loop nest over the elements of an intermediate adjoint of the naive backward (`dz[n,o,i,j]`):
 * its closed form computed once per element as a local, then, in loops over the taps (the other
 * indices of the gradients that read it), each gradient's term added where it goes (a scatter at a
 * delta's id) or into its own cell (a reduction over the elements).
 */
export interface ElementPass {
  /** The adjoint's tensor name in the naive backward (`z` for `dz`). */
  readonly adjoint: string;
  /** Its closed form over `elements`; the reductions it reads are scheduled passes. */
  readonly element: Expr;
  /** The adjoint's indices: the outer loops, outermost first. */
  readonly elements: readonly string[];
  /** The inner loops, outermost first: a size each, and a letter to name the counter after. */
  readonly taps: readonly { readonly size: string; readonly letter: string }[];
  readonly outputs: readonly ElementOutput[];
  /**
   * The work (`work.ts`, every size 256) of the kernel with this pass, and of the one it replaced;
   * `ratio`, what decided: the least and the most of the first against the second over sizes (scatter.ts).
   */
  readonly work: { readonly scattered: number; readonly otherwise: number; readonly ratio?: { readonly least: number; readonly most: number } };
}

/** One gradient a one-scatter pass writes, as the naive statement `target = sum(read * ..., ...)` has it. */
export interface ElementOutput {
  readonly input: number;
  /** What one iteration adds: the statement's summand without the deltas it scatters through. */
  readonly body: Expr;
  /** The adjoint as `body` reads it: the element's local stands there. */
  readonly read: Ref;
  /** Deltas over target indices: the add goes to their ids (checked in range); none for a reduction. */
  readonly deltas: readonly Delta[];
  /** The statement's target indices, in the gradient array's order. */
  readonly target: readonly string[];
  /** Every index `body`, `deltas` and `target` loop over, onto an element index or a tap (`#k`). */
  readonly bind: Readonly<Record<string, string>>;
}

/** The reduction with its free indices renamed by order of first appearance, and that order. */
function alphaNormal(node: Expr, sizeOf: SizeOf): { key: Expr; order: string[] } {
  const order: string[] = [];
  const walk = (x: Expr): void => {
    if (x.kind === "ref") for (const i of x.indices) if (node.free.includes(i) && !order.includes(i)) order.push(i);
    operands(x).forEach(walk);
  };
  walk(node);
  const mapping = nameTable(order.map((i, k) => [i, `${sizeOf(i)}:#${k}`]));
  return { key: renameFree(node, mapping, sizeOf), order };
}


/** The factors of a reduction's body (a product) worth storing once (ir/cost.ts `invariantFactors`). */
function invariantFactorsOf(r: Sum): { part: Expr[]; rest: Expr[] } | undefined {
  return r.body.kind === "mul" ? invariantFactors(r.body.factors, [...new Set([...r.free, ...r.indices])]) : undefined;
}

/**
 * Array-level motion of invariant work out of reductions. In `sum(k[j,e]*p[i,j]*(dp[i,j] - D[i]), j)`
 * over the loops i, j, e, the product `p*(dp - D)` does not move with e, yet a pass over the three
 * loops computes it once per e. It is stored once over [i,j] and the reduction reads the array.
 * A gradient that is a scalar times such a reduction takes the scalar into the stored product, so
 * the reduction becomes the gradient itself and is accumulated straight into its output array.
 */
export function materialize(gradients: readonly Expr[], inputs: readonly TensorDecl[], sizeOf: SizeOf): Expr[] {
  // a reduction keeps its bound indices as they are (withBody); its body is rewritten first
  const storeInvariants = (x: Expr, go: (y: Expr) => Expr): Expr | undefined => {
    if (x.kind !== "sum" || x.indices.length === 0) return undefined;
    const r = withBody(x, go(x.body));
    const split = invariantFactorsOf(r);
    // a delta factor stays in the reduction: it makes it a read or a scatter-add (lower.ts), never a stored array of 0s and 1s
    if (split && split.part.some((f) => f.kind === "delta")) return r;
    return split ? withBody(r, mul(stored(mul(...split.part)), ...split.rest)) : r;
  };
  const go = (x: Expr): Expr => rewrite(x, sizeOf, { before: storeInvariants });
  return gradients.map((g, k) => {
    // scalar * sum over exactly the gradient's indices: the scalar joins a stored product, if any
    if (g.kind === "mul") {
      const r = g.factors.find((f): f is Sum => f.kind === "sum" && sameIndices(f.free, inputs[k]!.indices));
      const scalars = g.factors.filter((f) => f !== r);
      if (r && scalars.every((f) => f.free.length === 0)) {
        const folded = withBody(r, mul(...scalars, r.body));
        if (invariantFactorsOf(folded)) return go(folded);
      }
    }
    return go(g);
  });
}

/**
 * The passes of the fused kernel. `skip[k]` leaves input k's gradient out (the fused kernel
 * computes it the staged way, staged.ts): no pass writes it.
 */
export function schedule(fusedGradients: readonly Expr[], inputs: readonly TensorDecl[], sizeOf: SizeOf, skip: readonly boolean[] = []): Schedule {
  const gradients = materialize(fusedGradients, inputs, sizeOf);
  // sums, maxes and stored products, innermost first, a where's comparison operands included (the
  // gradient of a max inside a step tests each element against the max: computed once per row)
  // an affine read (`x[n,c,i + k - 1]`) is a value read where it stands, not a reduction (ir/affine.ts)
  const all = scheduledNodes(gradients);
  const aliases = new Map<Expr, { of: Expr; mapping: Record<string, string> }>();
  const reps = new Map<Expr, { node: Expr; order: string[] }>();
  const nodes: Scheduled[] = [];
  for (const node of all) {
    const { key, order } = alphaNormal(node, sizeOf);
    const rep = reps.get(key);
    const isOutput = node.kind !== "max" && gradients.some((g, j) => g === node && sameIndices(node.free, inputs[j]!.indices));
    if (rep && !isOutput) {
      aliases.set(node, { of: rep.node, mapping: nameTable(rep.order.map((i, k) => [i, order[k]!])) });
      continue;
    }
    if (!rep) reps.set(key, { node, order });
    nodes.push(node);
  }
  const reductions: Reduction[] = nodes.map((node) => {
    // a gradient that is a max is copied from its temporary by an elementwise pass (its output array is not filled with -Infinity)
    const k = node.kind === "max" ? -1 : gradients.findIndex((g, j) => g === node && sameIndices(node.free, inputs[j]!.indices));
    return { node, indices: k >= 0 ? inputs[k]!.indices : layoutOf(node), output: k >= 0 ? k : undefined };
  });
  const layout = new Map(reductions.map((r) => [r.node as Expr, r.indices]));
  const dependsOn = dependence();
  let passes = plan(layout);
  // a temporary that its own pass accumulates outside the innermost loop, but that a later pass
  // reads across its innermost loop, is laid out with that index last (attention's dp, read by the
  // stored product along j): the reading pass then walks it contiguously
  let changed = false;
  for (const r of reductions) {
    if (r.output !== undefined || r.indices.length < 2 || layoutOf(r.node) !== r.node.free) continue;
    const k = passes.findIndex((pass) => pass.kind === "reduce" && pass.reductions.includes(r));
    const own = passes[k];
    if (own?.kind !== "reduce") continue;
    const b = own.bindings[own.reductions.indexOf(r)]!;
    if (r.indices.some((i) => b[i] === own.loops[own.loops.length - 1])) continue;
    const next = passes.slice(k + 1).find((pass) => readsOfTemporary(pass, r, layout, aliases).length > 0);
    if (!next) continue;
    const reader = { cell: readsOfTemporary(next, r, layout, aliases)[0]!.cell, innermost: next.loops[next.loops.length - 1]! };
    const at = reader.cell.indexOf(reader.innermost);
    if (at < 0 || at === reader.cell.length - 1) continue;
    const moved = r.indices[at]!;
    layout.set(r.node, [...r.indices.filter((i) => i !== moved), moved]);
    changed = true;
  }
  if (changed) passes = plan(layout);
  const laid = reductions.map((r) => ({ ...r, indices: layout.get(r.node)! }));
  // passes refer to the reductions by identity: map them onto the relaid records
  const record = new Map(reductions.map((r, k) => [r, laid[k]!]));
  passes = passes.map((pass) => (pass.kind === "reduce" ? { ...pass, reductions: pass.reductions.map((m) => record.get(m)!) } : pass));
  passes = mergeOutputReductions(passes, aliases, sizeOf);

  /** The passes for a memory layout of the temporaries. */
  function plan(layout: ReadonlyMap<Expr, readonly string[]>): Pass[] {
    const passes: Pass[] = [];
    // group by loop space (the sizes of free and bound indices together): a row sum and a column sum
    // over the same [N,D] array are accumulated in one pass
    const done = new Set<Expr>();
    for (const r of reductions) {
      if (done.has(r.node)) continue;
      const key = spaceKey(r, sizeOf);
      // ready when every reduction it reads, directly or through an alias, has been computed
      const ready = (q: Reduction) => !reductions.some((o) => !done.has(o.node) && o.node !== q.node && (dependsOn(q.node, o.node) || [...aliases].some(([a, { of }]) => of === o.node && dependsOn(q.node, a))));
      const group = reductions.filter((q) => !done.has(q.node) && spaceKey(q, sizeOf) === key && ready(q));
      const members = group.includes(r) ? group : [r];
      members.forEach((m) => done.add(m.node));
      const first = members[0]!;
      const space = [...first.indices, ...boundOf(first.node)];
      const readsOf = (m: Reduction, b: Readonly<Record<string, string>>) => readsIn(m.node, (i) => b[i] ?? i, aliases, layout);
      const firstReads = new Set(readsOf(first, nameTable(space.map((i) => [i, i]))).keys());
      const bindings = members.map((m) => bindOnto(m, first, space, sizeOf, firstReads, (b) => new Set(readsOf(m, b).keys())));
      // the order that walks memory best, judged on every array the members read (once each) and write
      const reads = new Map<string, readonly string[]>();
      members.forEach((m, k) => readsOf(m, bindings[k]!).forEach((idx, key) => reads.set(key, idx)));
      const writes = members.map((m, k) => ({ indices: m.indices.map((i) => bindings[k]![i] ?? i), write: true }));
      const loops = bestOrder(space, [...writes, ...[...reads.values()].map((indices) => ({ indices, write: false }))]);
      passes.push({ kind: "reduce", loops, reductions: members, bindings });
    }
    // elementwise gradients over the same indices (mse's dy and dt) share one pass
    const maps = new Map<string, { input: number; expr: Expr }[]>();
    gradients.forEach((g, k) => {
      // an int or nograd input gets no gradient output and no work
      if (reductions.some((r) => r.output === k) || !isDifferentiable(inputs[k]!) || skip[k]) return;
      const key = [...inputs[k]!.indices].sort().join(",");
      maps.set(key, [...(maps.get(key) ?? []), { input: k, expr: g }]);
    });
    for (const outputs of maps.values()) {
      const indices = inputs[outputs[0]!.input]!.indices;
      const reads = new Map<string, readonly string[]>();
      for (const o of outputs) readsIn(o.expr, (i) => i, aliases, layout).forEach((idx, key) => reads.set(key, idx));
      const accesses = [...outputs.map((o) => ({ indices: inputs[o.input]!.indices, write: true })), ...[...reads.values()].map((idx) => ({ indices: idx, write: false }))];
      passes.push({ kind: "map", loops: bestOrder(indices, accesses), outputs });
    }
    return passes;
  }
  return { gradients, reductions: laid, passes, aliases, reuse: reuseBuffers(passes, laid, aliases, sizeOf) };
}

/**
 * Buffer reuse, in the one case that needs no copy: a stored product (each cell written once) whose
 * pass is the last to read a temporary of the same length, and reads it only at the cell it writes
 * (attention's `p*(dp - D)` over dp's array). Each donor gives its array once.
 */
function reuseBuffers(passes: readonly Pass[], reductions: readonly Reduction[], aliases: Schedule["aliases"], sizeOf: SizeOf): Map<Expr, Expr> {
  const reuse = new Map<Expr, Expr>();
  const layout = new Map(reductions.map((r) => [r.node as Expr, r.indices]));
  const given = new Set<Expr>();
  const passOf = (r: Reduction) => passes.findIndex((pass) => pass.kind === "reduce" && pass.reductions.includes(r));
  const sizes = (r: Reduction) => r.indices.map(sizeOf).sort().join(",");
  passes.forEach((pass, k) => {
    if (pass.kind !== "reduce") return;
    pass.reductions.forEach((t, member) => {
      if (!isStored(t.node) || t.output !== undefined) return;
      const writes = t.indices.map((i) => pass.bindings[member]![i] ?? i).join(",");
      const donor = reductions.find((d) => {
        if (d === t || d.output !== undefined || given.has(d.node) || reuse.has(d.node) || sizes(d) !== sizes(t) || passOf(d) >= k) return false;
        const later = passes.slice(passOf(d) + 1).map((p2, j) => ({ at: passOf(d) + 1 + j, reads: readsOfTemporary(p2, d, layout, aliases) }));
        return later.every(({ at, reads }) => reads.length === 0 || (at === k && reads.every((x) => x.member === member && x.cell.join(",") === writes))) && later.some(({ at, reads }) => at === k && reads.length > 0);
      });
      if (donor) {
        reuse.set(t.node, donor.node);
        given.add(donor.node);
      }
    });
  });
  return reuse;
}

/**
 * Every read of the temporary `r` in a pass (directly or through an alias): the member (its
 * position; -1 for an elementwise pass) and the cell, as indices of `r`'s layout mapped onto the
 * pass's loops.
 */
function readsOfTemporary(pass: Pass, r: Reduction, layout: ReadonlyMap<Expr, readonly string[]>, aliases: Schedule["aliases"]): { member: number; cell: readonly string[] }[] {
  const exprs = pass.kind === "reduce" ? pass.reductions.map((m, k) => ({ e: m.node as Expr, b: pass.bindings[k]!, member: k })) : pass.outputs.map((o) => ({ e: o.expr, b: {} as Record<string, string>, member: -1 }));
  const out: { member: number; cell: readonly string[] }[] = [];
  for (const { e, b, member } of exprs)
    for (const [key, cell] of readsIn(e, (i) => b[i] ?? i, aliases, layout)) if (key.startsWith(`#${r.node.id}[`)) out.push({ member, cell });
  return out;
}

/**
 * A pass of reductions that are gradients themselves and that no other pass reads, over the same
 * loop space as an elementwise pass (each loop size once): its reductions are accumulated in the
 * elementwise pass, which reads the same arrays and computes the same parts (a cell's `dw[d] =
 * sum(f*x*(1 - f)*part, n)` beside `dx[n,d]`, with `part` in both), so the kernel walks the data
 * and calls its functions once, not twice.
 */
function mergeOutputReductions(passes: readonly Pass[], aliases: Schedule["aliases"], sizeOf: SizeOf): Pass[] {
  const out = [...passes];
  const sizes = (loops: readonly string[]) => loops.map((l) => sizeOf(l)).sort();
  for (const r of passes) {
    if (r.kind !== "reduce" || r.reductions.some((m) => m.output === undefined || isStored(m.node) || contains(m.node.body, (x) => x.kind === "delta"))) continue;
    const nodes = new Set<Expr>(r.reductions.map((m) => m.node));
    const readers = (e: Expr) => contains(e, (x) => nodes.has(x) || (aliases.has(x) && nodes.has(aliases.get(x)!.of)));
    const read = out.some((q) => q !== r && (q.kind === "reduce" ? q.reductions.some((m) => !nodes.has(m.node) && readers(m.node)) : q.outputs.some((o) => readers(o.expr))));
    if (read) continue;
    const own = sizes(r.loops);
    if (new Set(own).size !== own.length) continue;
    const k = out.findIndex((q) => q.kind === "map" && q.accumulates === undefined && sizes(q.loops).join(",") === own.join(","));
    if (k < 0) continue;
    const m = out[k] as Pass & { kind: "map" };
    const onto = nameTable(r.loops.map((l) => [l, m.loops.find((x) => sizeOf(x) === sizeOf(l))!]));
    out[k] = { ...m, accumulates: { reductions: r.reductions, bindings: r.bindings.map((b) => nameTable(Object.entries(b).map(([i, l]) => [i, onto[l]!]))) } };
    out.splice(out.indexOf(r), 1);
  }
  return out;
}

function sameIndices(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((i) => b.includes(i));
}

function spaceKey(r: Reduction, sizeOf: SizeOf): string {
  return [...r.indices, ...boundOf(r.node)].map(sizeOf).sort().join(",");
}

/**
 * The memory layout of a temporary: the order of its indices in an array its body reads with all
 * of them (a stored `p[i,j]*...` is laid out like `p`), otherwise sorted.
 */
function layoutOf(node: Expr): readonly string[] {
  const [r] = collect(node, (x): x is Ref => x.kind === "ref" && node.free.every((i) => x.indices.includes(i)), { limit: 1 });
  return r ? node.free.slice().sort((a, b) => r.indices.indexOf(a) - r.indices.indexOf(b)) : node.free;
}

/**
 * The arrays an expression reads, keyed by array and cell, each with its indices in memory order
 * renamed by `on`: tensors, and reductions computed by earlier passes (an alias through its
 * representative's array). Reduction bodies are not entered.
 */
function readsIn(e: Expr, on: (i: string) => string, aliases: Schedule["aliases"], layout: ReadonlyMap<Expr, readonly string[]>): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  const go = (x: Expr, top: boolean): void => {
    if (x.kind === "ref") {
      const idx = x.indices.map(on);
      out.set(`${x.space}:${x.name}[${idx.join(",")}]`, idx);
    } else if ((isReduction(x) || isStored(x)) && !top) {
      const a = aliases.get(x);
      const rep = a ? a.of : x;
      const idx = (layout.get(rep) ?? rep.free).map((i) => on(a ? (a.mapping[i] ?? i) : i));
      out.set(`#${rep.id}[${idx.join(",")}]`, idx);
    } else operands(x).forEach((c) => go(c, false));
  };
  go(e, true);
  return out;
}

/**
 * Maps a member's indices onto the loops of its pass. By default a free index that is itself a loop
 * index of the same name keeps it and every other index takes the first unused loop of its size,
 * free indices first, so `sum(dy*g, d)` over [n] and `sum(dy, n)` over [d] share the loops n, d.
 * Another assignment of same-size loops wins when it shares more array reads with the first
 * member: dq and dk of attention then read the stored `p*(dp - D)` at the same cell.
 */
function bindOnto(m: Reduction, first: Reduction, loops: readonly string[], sizeOf: SizeOf, firstReads: ReadonlySet<string>, reads: (b: Readonly<Record<string, string>>) => Set<string>): Record<string, string> {
  if (m === first) return nameTable(loops.map((i) => [i, i]));
  const shared = (b: Readonly<Record<string, string>>) => [...reads(b)].filter((r) => firstReads.has(r)).length;
  let best = defaultBinding(m, first, loops, sizeOf);
  let bestShared = shared(best);
  const all = [...m.indices, ...boundOf(m.node)];
  let tried = 0;
  const assign = (k: number, b: Record<string, string>, used: Set<string>): void => {
    if (tried > 720) return;
    if (k === all.length) {
      tried++;
      const n = shared(b);
      if (n > bestShared) {
        best = { ...b };
        bestShared = n;
      }
      return;
    }
    for (const l of loops) {
      if (used.has(l) || sizeOf(l) !== sizeOf(all[k]!)) continue;
      b[all[k]!] = l;
      used.add(l);
      assign(k + 1, b, used);
      used.delete(l);
    }
  };
  assign(0, {}, new Set());
  return best;
}

function defaultBinding(m: Reduction, first: Reduction, loops: readonly string[], sizeOf: SizeOf): Record<string, string> {
  const out = nameTable<string>();
  const used = new Set<string>();
  const all = [...m.indices, ...boundOf(m.node)];
  for (const i of m.indices) if (loops.includes(i) && first.indices.includes(i)) { out[i] = i; used.add(i); };
  for (const i of all) {
    if (out[i] !== undefined) continue;
    const l = loops.find((x) => !used.has(x) && sizeOf(x) === sizeOf(i));
    if (l === undefined) throw new Error(`schedule: no loop of size ${sizeOf(i)} for ${i}`);
    out[i] = l;
    used.add(l);
  }
  return out;
}

/**
 * Whether `a` reads `b` (`b` occurs in `a`'s body, or in `a` if it is not a reduction). Asked for
 * every pair of reductions each time a pass is grouped, so the nodes under each `a` are found once
 * per schedule, not walked again per question.
 */
function dependence(): (a: Expr, b: Expr) => boolean {
  const under = new Map<Expr, ReadonlySet<Expr>>();
  return (a, b) => {
    if (a === b) return false;
    let nodes = under.get(a);
    if (!nodes) under.set(a, (nodes = new Set(scheduledNodes([a.kind === "sum" || a.kind === "max" || a.kind === "stored" ? a.body : a], () => true))));
    return nodes.has(b);
  };
}

/** The indices a scheduled node binds: a sum's or a max's, none for a stored product. */
export function boundOf(node: Scheduled): readonly string[] {
  return node.kind === "stored" ? [] : node.indices;
}

/** What the schedule walks under a node: its children, and a where's comparison operands, which can hold a reduction. */
function operands(x: Expr): readonly Expr[] {
  return x.kind === "where" ? [x.left, x.right, ...children(x)] : children(x);
}

/**
 * The distinct nodes the schedule computes into arrays (or, with `pred`, the nodes for which it
 * holds), innermost first, a where's comparison operands included: sums that are not affine reads,
 * maxes and stored products.
 */
function scheduledNodes(roots: readonly Expr[], pred?: (x: Expr) => boolean): Scheduled[] {
  const out: Expr[] = [];
  const seen = new Set<Expr>();
  const test = pred ?? ((x: Expr) => (x.kind === "sum" && !isAffineRead(x)) || x.kind === "max" || x.kind === "stored");
  const go = (x: Expr): void => {
    if (seen.has(x)) return;
    seen.add(x);
    operands(x).forEach(go);
    if (test(x)) out.push(x);
  };
  roots.forEach(go);
  return out as Scheduled[];
}

/**
 * Loop order, outermost first, chosen among all orders (passes have at most a few loops) by a
 * cost per access. The innermost loop costs 1 for each array it walks contiguously (the innermost
 * index is the array's last) and 16 for each it strides through. The next loop out costs a quarter
 * for each array the innermost loop walks that it moves to a new stretch of memory: an array it
 * leaves alone is walked again from cache (linear's `dw[d,k]` row, reused across n when n is the
 * next loop out). Ties keep the declared order.
 */
export function bestOrder(indices: readonly string[], accesses: readonly { readonly indices: readonly string[]; readonly write: boolean }[]): string[] {
  if (indices.length <= 1) return [...indices];
  const costOf = (order: readonly string[]): number => {
    const inner = order[order.length - 1]!;
    const next = order[order.length - 2];
    let c = 0;
    for (const { indices: a, write } of accesses) {
      const at = a.indexOf(inner);
      if (at < 0) continue;
      c += at === a.length - 1 ? 1 : 16;
      // a written array is read and written back
      if (next !== undefined && a.includes(next)) c += write ? 0.5 : 0.25;
    }
    return c;
  };
  let best = [...indices];
  let bestCost = costOf(best);
  const permute = (prefix: string[], rest: string[]): void => {
    if (rest.length === 0) {
      const c = costOf(prefix);
      if (c < bestCost) {
        best = prefix;
        bestCost = c;
      }
      return;
    }
    rest.forEach((x, k) => permute([...prefix, x], [...rest.slice(0, k), ...rest.slice(k + 1)]));
  };
  if (indices.length <= 5) permute([], [...indices]);
  return best;
}
