/**
 * One scatter of a hoisted closed form. Where several input gradients of the naive backward read
 * the same intermediate adjoint through affine or gather indices (`dx[n,c,h,v] = sum(dz[n,o,i,j] *
 * w[o,c,p,q] * delta(h, i + p - 1) * ..., ...)` and `dw[o,c,p,q] = sum(dz[n,o,i,j] * x[n,c,i + p - 1,
 * j + q - 1], n, i, j)`), the fused kernel can run one loop nest over the adjoint's elements that
 * computes its closed form once, as a local (`simplify/adjoint.ts`), and then, in loops over the
 * other indices (the taps), adds each gradient's term where it goes: a scatter-add at the delta's
 * id, or an accumulation into the gradient's own cell. No array the size of the adjoint is stored,
 * and the adjoint's arithmetic is done once per element, not once per tap as in a gather.
 *
 * The rule knows no layer: it reads the shape of the naive statements only. It is kept only where
 * the kernel it gives is less work than the one without it (`work.ts`, the staged choice's measure;
 * issue 13: a choice that raises the cost is not kept), weighed over sizes (`sizePoints`, by the
 * worst case, `lessWorkOverSizes`), not at one point: with every size 256, a gather form that moves the adjoint's arithmetic from the
 * adjoint's elements (an embedding's [B,S,D]) onto the gradient's ([V,D], through a scattered
 * temporary of that size) looks cheaper because [V,D] has fewer indices, whatever V is; at the
 * sizes of a layer (B=8, S=64, V=1024) the one-scatter kernel ran twice as fast.
 */
import { canonicalSize, collect, contains, renameFree, rewrite, ZERO, type Delta, type Expr, type Ref } from "../ir/expr.js";
import type { Backward, Statement } from "../ir/backward.js";
import type { Program, TensorDecl } from "../ir/program.js";
import { nameTable } from "../ir/table.js";
import { schedule, type ElementOutput, type ElementPass, type Schedule } from "./passes.js";
import { stagedPart, type StagedChoice } from "./staged.js";
import { scatterOf } from "./lower.js";
import { scheduledWork, stagedWork, workTotal, type SizePoint } from "./work.js";
import { extentsPositive, withDerived } from "../ir/sizes.js";

/** The size every symbol is given when the kernels are weighed (as staged.ts and `backpass stats`). */
const AT = 256;

/** A gradient statement that reads one adjoint through indices: what a one-scatter pass needs of it. */
interface Reader {
  readonly input: number;
  readonly statement: Statement;
  readonly body: Expr;
  readonly read: Ref;
  readonly deltas: readonly Delta[];
  /** The statement's own loop indices besides the adjoint's, in order: target indices first. */
  readonly taps: readonly string[];
}

/** The statement of input `k`'s gradient as a reader of one adjoint, or undefined. */
function readerOf(p: Program, bw: Backward, k: number, st: Statement, adjoints: ReadonlyMap<string, Statement>, finals: ReadonlySet<string>): Reader | undefined {
  const e = st.expr;
  const target = st.target.indices;
  // the read must go through indices (a delta: an affine read, a gather, or their gradients)
  if (!contains(e, (x) => x.kind === "delta")) return undefined;
  const sc = scatterOf(e, target, p.sizeOf);
  let body: Expr, loops: string[], deltas: readonly Delta[];
  if (sc) {
    deltas = sc.deltas ?? [sc.delta];
    body = sc.body;
    loops = [...target.filter((i) => !deltas.some((d) => d.index === i)), ...sc.over];
  } else if (e.kind === "sum") {
    deltas = [];
    body = e.body;
    loops = [...target, ...e.indices];
  } else return undefined;
  const grads = collect(body, (x): x is Ref => x.kind === "ref" && x.space === "grad");
  if (grads.length !== 1) return undefined;
  const read = grads[0]!;
  // the adjoint a factor of the summand, read once, at distinct indices the loops run over
  const factors = body.kind === "mul" ? body.factors : [body];
  if (!factors.includes(read) || factors.filter((f) => f !== read).some((f) => contains(f, (x) => x === read))) return undefined;
  if (read === bw.upstream || bw.upstreams.some((u) => u.grad === read) || finals.has(read.name) || !adjoints.has(read.name)) return undefined;
  if (new Set(read.indices).size !== read.indices.length || !read.indices.every((i) => loops.includes(i))) return undefined;
  if (adjoints.get(read.name)!.target.indices.length !== read.indices.length) return undefined;
  const taps = [...new Set(loops.filter((i) => !read.indices.includes(i)))];
  return { input: k, statement: st, body, read, deltas, taps };
}

/** The readers of each adjoint whose taps have the same sizes: the candidates for one pass each. */
function candidates(p: Program, bw: Backward): { adjoint: Statement; readers: Reader[] }[] {
  const statements = new Map<string, Statement>();
  for (const b of bw.blocks) for (const s of b.statements) statements.set(s.target.name, s);
  const finals = new Set(bw.gradients.map((g) => g.grad.name));
  const groups = new Map<string, { adjoint: Statement; readers: Reader[] }>();
  for (const g of bw.gradients) {
    const k = p.inputs.findIndex((t) => t.name === g.input.name);
    const st = statements.get(g.grad.name);
    if (k < 0 || !st) continue;
    const r = readerOf(p, bw, k, st, statements, finals);
    if (!r) continue;
    const sizes = r.taps.map((i) => canonicalSize(i) ?? p.sizeOf(i)).sort().join(",");
    const key = `${r.read.name}|${sizes}`;
    const group = groups.get(key) ?? { adjoint: statements.get(r.read.name)!, readers: [] };
    group.readers.push(r);
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** The shared tap loops of a group, and each reader's indices bound onto the element loops and the taps (`#k`). */
function bindTaps(p: Program, adjoint: Statement, readers: readonly Reader[]): { taps: ElementPass["taps"]; binds: Record<string, string>[] } {
  const size = (i: string) => canonicalSize(i) ?? p.sizeOf(i);
  // the taps named after the reader with the most spec letters among them (a weight gradient's
  // `o,c,p,q`), in its order, so the innermost tap walks its arrays' last index
  const lettered = (r: Reader) => r.taps.filter((i) => canonicalSize(i) === undefined).length;
  const lead = readers.reduce((a, b) => (lettered(b) > lettered(a) ? b : a));
  const taps = lead.taps.map((i) => ({ size: size(i), letter: canonicalSize(i) === undefined ? i : "" }));
  const binds = readers.map((r) => {
    const b = nameTable<string>();
    r.read.indices.forEach((i, k) => (b[i] = adjoint.target.indices[k]!));
    const used = new Set<number>();
    const pick = (i: string): number => {
      const same = taps.findIndex((t, k) => !used.has(k) && t.letter === i && t.size === size(i));
      return same >= 0 ? same : taps.findIndex((t, k) => !used.has(k) && t.size === size(i));
    };
    for (const i of r.taps) {
      const k = pick(i);
      used.add(k);
      b[i] = `#${k}`;
    }
    return b;
  });
  return { taps, binds };
}

/** The kernel's work with a schedule and the staged statements it runs (every size `AT`, or the sizes of `point`). */
function kernelWork(p: Program, sched: Schedule, part: Backward | undefined, point?: SizePoint): number {
  return workTotal(scheduledWork(p, sched, AT, point), AT, point) + (part ? workTotal(stagedWork(p, part, AT, point), AT, point) : 0);
}

/** The two sizes each size symbol takes in the points a choice is weighed at: a small and a large one. */
const SIZE_RANGE = [32, 1024] as const;

/**
 * The size points a choice is weighed at: every size symbol small or large, independently (up to
 * 2^8 points; a spec with more symbols takes the first 8 that way, the rest at `AT`), with the
 * computed extents from them; points where an extent is not positive are left out.
 */
export function sizePoints(p: Program): SizePoint[] {
  const symbols = p.sizes.slice(0, 8);
  const out: SizePoint[] = [];
  for (let m = 0; m < 1 << symbols.length; m++) {
    const base: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const s of p.sizes) base[s] = AT;
    symbols.forEach((s, k) => (base[s] = SIZE_RANGE[(m >> k) & 1]!));
    const full = withDerived(p, base);
    if (extentsPositive(p, full)) out.push((size) => full[size] ?? AT);
  }
  return out;
}

/**
 * How much work kernel `a` is against kernel `b` over the size points: the least and the most of
 * the ratio (every size `AT` where there are no points).
 */
function workRatios(p: Program, points: readonly SizePoint[], a: { sched: Schedule; part: Backward | undefined }, b: { sched: Schedule; part: Backward | undefined }): { least: number; most: number } {
  const ratios = (points.length ? points : [undefined]).map((pt) => kernelWork(p, a.sched, a.part, pt) / kernelWork(p, b.sched, b.part, pt));
  return { least: Math.min(...ratios), most: Math.max(...ratios) };
}

/**
 * The choice by its worst case: kernel `a` is taken over `b` when the most it can cost more (its
 * largest ratio) is less than the most it can save (the inverse of its smallest). An embedding's
 * one scatter is at most 1.3 times the work of the gather form (where the batch's tokens outnumber
 * the vocabulary), and as little as a third of it, less the larger the vocabulary.
 */
export function lessWorkOverSizes(r: { least: number; most: number }): boolean {
  return r.most < 1 / r.least;
}

/**
 * The schedule with one-scatter passes where they make the kernel less work, or undefined where
 * none does. `closedForm(name)` is the simplified adjoint `name` over its statement's indices.
 */
export function withElementScatters(p: Program, bw: Backward, gradients: readonly Expr[], choice: StagedChoice, sched: Schedule, closedForm: (name: string) => Expr | undefined): { choice: StagedChoice; sched: Schedule } | undefined {
  let best = { choice, sched, work: kernelWork(p, sched, choice.part) };
  const accepted: { adjoint: Statement; readers: Reader[]; element: Expr }[] = [];
  let changed = false;
  const points = sizePoints(p);
  for (const g of candidates(p, bw)) {
    const element = closedForm(g.adjoint.target.name);
    // a closed form that is a reduction itself would be scheduled as a gradient's output
    if (!element || element.kind === "sum" || element.kind === "max" || !element.free.every((i) => g.adjoint.target.indices.includes(i))) continue;
    const tried = build(p, bw, gradients, choice, [...accepted, { ...g, element }]);
    const work = kernelWork(p, tried.sched, tried.choice.part);
    const ratio = workRatios(p, points, { sched: tried.sched, part: tried.choice.part }, { sched: best.sched, part: best.choice.part });
    if (!lessWorkOverSizes(ratio)) continue;
    accepted.push({ ...g, element });
    const elements = tried.sched.elements!.map((el) => ({ ...el, work: { scattered: work, otherwise: best.work, ratio } }));
    best = { choice: tried.choice, sched: { ...tried.sched, elements }, work };
    changed = true;
  }
  return changed ? { choice: best.choice, sched: best.sched } : undefined;
}

/** The schedule and staged choice with a one-scatter pass for each group. */
function build(p: Program, bw: Backward, gradients: readonly Expr[], choice: StagedChoice, groups: readonly { adjoint: Statement; readers: Reader[]; element: Expr }[]): { choice: StagedChoice; sched: Schedule } {
  const n = p.inputs.length;
  const scattered = (k: number) => groups.some((g) => g.readers.some((r) => r.input === k));
  // each closed form stands as the gradient of a pseudo-input over the adjoint's indices: the
  // scheduler computes the reductions it reads, and writes nothing for it
  const pseudo: TensorDecl[] = groups.map((g) => ({ name: `d${g.adjoint.target.name}`, indices: g.adjoint.target.indices }));
  const all = [...gradients.map((g, k) => (choice.staged[k] || scattered(k) ? ZERO : g)), ...groups.map((g) => g.element)];
  const skip = [...p.inputs.map((_, k) => choice.staged[k]! || scattered(k)), ...groups.map(() => true)];
  const s = schedule(all, [...p.inputs, ...pseudo], p.sizeOf, skip);
  const elements: ElementPass[] = groups.map((g, j) => {
    const { taps, binds } = bindTaps(p, g.adjoint, g.readers);
    const outputs: ElementOutput[] = g.readers.map((r, k) => ({ input: r.input, body: r.body, read: r.read, deltas: r.deltas, target: r.statement.target.indices, bind: binds[k]! }));
    return { adjoint: g.adjoint.target.name, element: s.gradients[n + j]!, elements: g.adjoint.target.indices, taps, outputs, work: { scattered: 0, otherwise: 0 } };
  });
  // each scattered gradient as an expression (the statement with the closed form in place of the
  // adjoint), for the numeric checks and for what the kernel reads
  const substituted = (k: number): Expr => {
    const j = groups.findIndex((g) => g.readers.some((r) => r.input === k));
    const g = groups[j]!;
    const r = g.readers.find((x) => x.input === k)!;
    const el = s.gradients[n + j]!;
    return rewrite(r.statement.expr, p.sizeOf, {
      before: (x) => (x.kind === "ref" && x.space === "grad" && x.name === g.adjoint.target.name ? renameFree(el, nameTable(g.adjoint.target.indices.map((i, m) => [i, x.indices[m]!])), p.sizeOf) : undefined),
    });
  };
  const staged = choice.staged.map((st, k) => st && !scattered(k));
  const names = p.inputs.filter((_, k) => staged[k]).map((t) => t.name);
  const sched: Schedule = { ...s, gradients: s.gradients.slice(0, n).map((g, k) => (scattered(k) ? substituted(k) : g)), elements };
  return { choice: { ...choice, staged, part: names.length ? stagedPart(bw, names) : undefined }, sched };
}
