/**
 * Walking the IR: one collecting walker (`collect`) and one rewriting walker (`rewrite`) that every
 * pass uses, and the measures built on them.
 */
import { children, isReduction, type Expr, type Reduction, type Ref, type SizeOf } from "./node.js";
import { compareExpr, withChildren } from "./build.js";
import { checkBudget } from "../limits.js";

/** What `rewrite` does at a node: each hook may be left out. */
export interface Rewriter {
  /**
   * Before the node's children: a replacement is taken as it is (its children are not visited);
   * undefined goes on into the children. `go` rewrites another node in the same walk.
   */
  readonly before?: (x: Expr, go: (y: Expr) => Expr) => Expr | undefined;
  /** After the node's children were rewritten, on the node rebuilt from them: what it becomes. */
  readonly after?: (x: Expr) => Expr;
}

/**
 * The one rewrite walker. Each distinct node of `e` is visited once (memoized per call), top-down
 * through `before`, then bottom-up through `after`. A node is rebuilt through the factory only when
 * a child changed, so a rewrite that changes nothing returns `e` itself.
 */
export function rewrite(e: Expr, sizeOf: SizeOf, r: Rewriter): Expr {
  const memo = new Map<Expr, Expr>();
  const go = (x: Expr): Expr => {
    const hit = memo.get(x);
    if (hit) return hit;
    checkBudget();
    let y = r.before?.(x, go);
    if (y === undefined) {
      // a new list of children only from the first that changed: most walks change few nodes
      const cs = children(x);
      let ncs: Expr[] | undefined;
      for (let k = 0; k < cs.length; k++) {
        const c = go(cs[k]!);
        if (ncs === undefined && c !== cs[k]) ncs = cs.slice(0, k);
        ncs?.push(c);
      }
      y = ncs === undefined ? x : withChildren(x, ncs, sizeOf);
      if (r.after) y = r.after(y);
    }
    memo.set(x, y);
    return y;
  };
  return go(e);
}

/** Bottom-up map: `f` sees each node after its children were mapped. */
export function mapBottomUp(e: Expr, f: (e: Expr) => Expr, sizeOf: SizeOf): Expr {
  return rewrite(e, sizeOf, { after: f });
}

export interface CollectOptions {
  /** "pre" (the default): a node before its children; "post": after them, innermost first. */
  readonly order?: "pre" | "post";
  /** Nodes left out with everything under them (`stop(...)` for the refs gradients reach). */
  readonly skip?: (x: Expr) => boolean;
  /** Stop after this many. */
  readonly limit?: number;
}

/**
 * The one collecting walker: the distinct nodes of `roots` (each visited once, however often it is
 * shared) for which `pred` holds, in the order the walk meets them.
 */
export function collect<T extends Expr>(roots: Expr | readonly Expr[], pred: (x: Expr) => x is T, opts?: CollectOptions): T[];
export function collect(roots: Expr | readonly Expr[], pred: (x: Expr) => boolean, opts?: CollectOptions): Expr[];
export function collect(roots: Expr | readonly Expr[], pred: (x: Expr) => boolean, opts: CollectOptions = {}): Expr[] {
  const out: Expr[] = [];
  const seen = new Set<Expr>();
  const limit = opts.limit ?? Infinity;
  const post = opts.order === "post";
  const go = (x: Expr): void => {
    if (out.length >= limit || seen.has(x)) return;
    seen.add(x);
    if (opts.skip?.(x)) return;
    if (!post && pred(x)) out.push(x);
    for (const c of children(x)) go(c);
    if (post && out.length < limit && pred(x)) out.push(x);
  };
  for (const r of isList(roots) ? roots : [roots]) go(r);
  return out;
}

function isList(roots: Expr | readonly Expr[]): roots is readonly Expr[] {
  return Array.isArray(roots);
}

/** All distinct reductions (sums and maxes) in the expressions, innermost first. */
export function reductionsOf(es: Expr | readonly Expr[]): Reduction[] {
  return collect(es, isReduction, { order: "post" });
}

/** Replaces every occurrence of the node `target` (by identity) with `by`. */
export function replaceNode(e: Expr, target: Expr, by: Expr, sizeOf: SizeOf): Expr {
  return mapBottomUp(e, (x) => (x === target ? by : x), sizeOf);
}

/** Whether some node of `e` satisfies `pred`. */
export function contains(e: Expr, pred: (x: Expr) => boolean): boolean {
  return collect(e, pred, { limit: 1 }).length > 0;
}

/** Number of nodes in the tree (shared nodes counted at each use): a size measure. */
export function treeSize(e: Expr): number {
  const memo = new Map<Expr, number>();
  const go = (x: Expr): number => {
    const m = memo.get(x);
    if (m !== undefined) return m;
    const s = 1 + children(x).reduce((a, c) => a + go(c), 0);
    memo.set(x, s);
    return s;
  };
  return go(e);
}

/**
 * The refs of each node, sorted, computed once per node (nodes are immutable): the simplifier asks
 * for the refs of every subexpression for every definition, which walked each subtree again.
 */
const refsMemo = new WeakMap<Expr, readonly Ref[]>();

/** All distinct refs in `e`, including those inside sums. */
export function refsOf(e: Expr): Ref[] {
  return [...refsSorted(e)];
}

function refsSorted(e: Expr): readonly Ref[] {
  const hit = refsMemo.get(e);
  if (hit) return hit;
  let out: readonly Ref[];
  if (e.kind === "ref") out = [e];
  else {
    const cs = children(e);
    if (cs.length === 0) out = [];
    else if (cs.length === 1) out = refsSorted(cs[0]!);
    else {
      const all = new Set<Ref>();
      for (const c of cs) for (const r of refsSorted(c)) all.add(r);
      out = [...all].sort(compareExpr);
    }
  }
  refsMemo.set(e, out);
  return out;
}
