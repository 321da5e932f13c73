/**
 * Scheduling the fused backward: which loops run, in what order, over which memory.
 *
 * Input: the fused gradient expressions. Output: a list of passes.
 * - Every distinct reduction is computed once, into an array over its free indices (or straight
 *   into a gradient's output array when the gradient is that reduction).
 * - Reductions with the same loop nest and no dependence on each other share one pass, so their
 *   operands are read from memory once.
 * - Loops are ordered so that the innermost walks contiguous memory of the largest tensor read.
 * - Each remaining gradient is one elementwise pass over its own indices.
 */
import { children, renameFree, type Expr, type Ref, type SizeOf } from "../ir/expr.js";
import type { TensorDecl } from "../ir/program.js";
import { reductionsOf } from "../simplify/fused.js";

export interface Reduction {
  readonly node: Expr & { kind: "sum" };
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
  | { readonly kind: "map"; readonly input: number; readonly loops: readonly string[]; readonly expr: Expr };

export interface Schedule {
  readonly reductions: readonly Reduction[];
  readonly passes: readonly Pass[];
  /**
   * Reductions equal to a scheduled one up to the names of their free indices (the same tensor read
   * at other indices, like `sum(do[i,f]*v[j,f], f)` inside both `dq` and `dk`): each is read from its
   * representative's array; `mapping` sends the representative's free indices to the alias's.
   */
  readonly aliases: ReadonlyMap<Expr, { readonly of: Expr; readonly mapping: Readonly<Record<string, string>> }>;
}

/** The reduction with its free indices renamed by order of first appearance, and that order. */
function alphaNormal(node: Expr, sizeOf: SizeOf): { key: Expr; order: string[] } {
  const order: string[] = [];
  const walk = (x: Expr): void => {
    if (x.kind === "ref") for (const i of x.indices) if (node.free.includes(i) && !order.includes(i)) order.push(i);
    children(x).forEach(walk);
  };
  walk(node);
  const mapping = Object.fromEntries(order.map((i, k) => [i, `${sizeOf(i)}:#${k}`]));
  return { key: renameFree(node, mapping, sizeOf), order };
}


export function schedule(gradients: readonly Expr[], inputs: readonly TensorDecl[], sizeOf: SizeOf): Schedule {
  const all = reductionsOf(gradients).filter((r): r is Expr & { kind: "sum" } => r.kind === "sum");
  const aliases = new Map<Expr, { of: Expr; mapping: Record<string, string> }>();
  const reps = new Map<Expr, { node: Expr; order: string[] }>();
  const nodes: (Expr & { kind: "sum" })[] = [];
  for (const node of all) {
    const { key, order } = alphaNormal(node, sizeOf);
    const rep = reps.get(key);
    const isOutput = gradients.some((g, j) => g === node && sameIndices(node.free, inputs[j]!.indices));
    if (rep && !isOutput) {
      aliases.set(node, { of: rep.node, mapping: Object.fromEntries(rep.order.map((i, k) => [i, order[k]!])) });
      continue;
    }
    if (!rep) reps.set(key, { node, order });
    nodes.push(node);
  }
  const reductions: Reduction[] = nodes.map((node) => {
    const k = gradients.findIndex((g, j) => g === node && sameIndices(node.free, inputs[j]!.indices));
    return { node, indices: k >= 0 ? inputs[k]!.indices : node.free, output: k >= 0 ? k : undefined };
  });
  const passes: Pass[] = [];
  // group by loop space (the sizes of free and bound indices together): a row sum and a column sum
  // over the same [N,D] array are accumulated in one pass
  const done = new Set<Expr>();
  for (const r of reductions) {
    if (done.has(r.node)) continue;
    const key = spaceKey(r, sizeOf);
    const ready = (q: Reduction) => !reductions.some((o) => !done.has(o.node) && o.node !== q.node && dependsOn(q.node, o.node));
    const group = reductions.filter((q) => !done.has(q.node) && spaceKey(q, sizeOf) === key && ready(q));
    const members = group.includes(r) ? group : [r];
    members.forEach((m) => done.add(m.node));
    const first = members[0]!;
    const space = [...first.indices, ...first.node.indices];
    const bindings = members.map((m) => bindOnto(m, first, space, sizeOf));
    // the order that walks memory best, judged on every array the members read and write
    const accesses = members.flatMap((m, k) => {
      const b = bindings[k]!;
      const on = (idx: readonly string[]) => idx.map((i) => b[i] ?? i);
      return [on(m.indices), ...arrayReads(m.node.body).map(on)];
    });
    const loops = bestOrder(space, accesses);
    passes.push({ kind: "reduce", loops, reductions: members, bindings });
  }
  gradients.forEach((g, k) => {
    if (reductions.some((r) => r.output === k)) return;
    passes.push({ kind: "map", input: k, loops: bestOrder(inputs[k]!.indices, [inputs[k]!.indices, ...arrayReads(g)]), expr: g });
  });
  return { reductions, passes, aliases };
}

function sameIndices(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((i) => b.includes(i));
}

function spaceKey(r: Reduction, sizeOf: SizeOf): string {
  return [...r.indices, ...r.node.indices].map(sizeOf).sort().join(",");
}

/**
 * Maps a member's indices onto the loops of its pass: a free index that is itself a loop index of
 * the same name keeps it; every other index takes the first unused loop of its size, free indices
 * first, so `sum(dy*g, d)` over [n] and `sum(dy, n)` over [d] share the loops n, d.
 */
function bindOnto(m: Reduction, first: Reduction, loops: readonly string[], sizeOf: SizeOf): Record<string, string> {
  if (m === first) return Object.fromEntries(loops.map((i) => [i, i]));
  const out: Record<string, string> = {};
  const used = new Set<string>();
  const all = [...m.indices, ...m.node.indices];
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

function dependsOn(a: Expr, b: Expr): boolean {
  if (a === b) return false;
  let found = false;
  const go = (x: Expr): void => {
    if (found) return;
    if (x === b) found = true;
    else children(x).forEach(go);
  };
  go(a.kind === "sum" ? a.body : a);
  return found;
}

/**
 * The index lists of the arrays an expression reads: refs, and reductions computed by earlier
 * passes (read from their arrays over their free indices). Reduction bodies are not entered.
 */
function arrayReads(e: Expr): string[][] {
  const out: string[][] = [];
  const go = (x: Expr, top: boolean): void => {
    if (x.kind === "ref") out.push([...x.indices]);
    else if ((x.kind === "sum" || x.kind === "max") && !top) out.push([...x.free]);
    else children(x).forEach((c) => go(c, false));
  };
  go(e, true);
  return out;
}

/**
 * Loop order, outermost first, chosen among all orders (passes have at most a few loops) by a
 * cost per access: nothing when the innermost loop does not move it, 1 when it walks contiguous
 * memory (the innermost index is the array's last), 16 when it strides. The next loop out counts a
 * quarter as much. Ties keep the declared order.
 */
export function bestOrder(indices: readonly string[], accesses: readonly (readonly string[])[]): string[] {
  if (indices.length <= 1) return [...indices];
  const costOf = (order: readonly string[]): number => {
    let c = 0;
    const levels = [order[order.length - 1]!, order[order.length - 2]];
    levels.forEach((loop, depth) => {
      if (loop === undefined) return;
      const weight = depth === 0 ? 1 : 0.25;
      for (const a of accesses) {
        const at = a.indexOf(loop);
        if (at < 0) continue;
        c += weight * (at === a.length - 1 ? 1 : 16);
      }
    });
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
