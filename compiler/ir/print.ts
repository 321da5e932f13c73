/**
 * The deterministic printer, in the spec language: bound indices print as letters of their size
 * when the spec's letters are given, so a printed gradient reads like the spec.
 */
import { affineText, assertNever, canonicalSize, formIndices, isCanonicalIndex, type Delta, type Expr, type IndexForm, type Ref, type Sum } from "./node.js";
import { mul, num, pow, splitCoefficient } from "./build.js";

// ---------------------------------------------------------------------------------------------
// Printer

/** Display name of a ref: gradient arrays print as `d<name>`. */
export function refName(r: Ref): string {
  return r.space === "grad" ? `d${r.name}` : r.name;
}

function fmtNum(v: number): string {
  return String(v); // shortest round-tripping form
}

/**
 * Deterministic printer in the spec language: `a*b^-1` prints as `a/b`, `x^0.5` as `sqrt(x)`,
 * sums as `sum(body, i)`. The output parses back to the same node (see parse/expression.ts).
 */
export function print(e: Expr, letters?: Readonly<Record<string, string>>): string {
  return printPrec(e, 0, namingContext([e], letters));
}

/**
 * Several expressions in one naming context: an index bound outside them (by a reduction of the
 * step they come from) prints as the same letter in each, and never as a letter of `context` (the
 * step's own indices). A local partial `d/dp[i,j] = v[j,f]` of `o[i,f] = sum(p[i,j]*v[j,f], j)`
 * printed in two contexts read `v[i,f]`.
 */
export function printTogether(es: readonly Expr[], letters: Readonly<Record<string, string>>, context: readonly string[] = []): string[] {
  const c = namingContext(es, letters, context);
  return es.map((e) => printPrec(e, 0, c));
}

/**
 * The names of indices where `es` are printed together (here and in explain/latex.ts): the letters
 * free in them or in `context` are taken, and free canonical indices (a reduction read inside
 * another) get letters of their size too.
 */
export function namingContext(es: readonly Expr[], letters: Readonly<Record<string, string>> | undefined, context: readonly string[] = []): PrintCtx {
  const free = [...new Set(es.flatMap((e) => e.free))];
  const base: PrintCtx = { letters, names: new Map(), taken: new Set([...context, ...free.filter((i) => !isCanonicalIndex(i))]) };
  return bindNames(free.filter(isCanonicalIndex), base);
}

export interface PrintCtx {
  /** Index letter -> size: when given, bound indices print as letters of their size. */
  readonly letters: Readonly<Record<string, string>> | undefined;
  readonly names: ReadonlyMap<string, string>;
  readonly taken: ReadonlySet<string>;
}

/** `c` with the bound `indices` named by letters of their size that are not taken yet. */
export function bindNames(indices: readonly string[], c: PrintCtx): PrintCtx {
  if (!c.letters) return c;
  const names = new Map(c.names);
  const taken = new Set(c.taken);
  for (const i of indices) {
    const size = canonicalSize(i);
    const candidates = Object.keys(c.letters).filter((l) => c.letters![l] === size);
    let pick = candidates.find((l) => !taken.has(l));
    if (!pick) {
      pick = (candidates[0] ?? (size ?? "i").toLowerCase()) + "'";
      while (taken.has(pick)) pick += "'";
    }
    names.set(i, pick);
    taken.add(pick);
  }
  return { ...c, names, taken };
}

// precedence: 0 add, 1 mul, 2 unary minus, 3 pow, 4 atom
function printPrec(e: Expr, ctx: number, c: PrintCtx): string {
  const wrap = (s: string, p: number) => (p < ctx ? `(${s})` : s);
  switch (e.kind) {
    case "num":
      return e.value < 0 ? wrap(fmtNum(e.value), 2) : fmtNum(e.value);
    case "sym":
      return e.name;
    case "ref":
      return `${refName(e)}[${e.indices.map((i) => c.names.get(i) ?? i).join(",")}]`;
    case "call":
      return `${e.fn}(${printPrec(e.arg, 0, c)})`;
    case "stored":
      return `stored(${printPrec(e.body, 0, c)})`;
    case "sum":
    case "max": {
      const read = e.kind === "sum" ? gatherRead(e) : undefined;
      if (read) return `${refName(read.ref)}[${read.ref.indices.map((i) => (read.forms.has(i) ? printForm(read.forms.get(i)!, c) : (c.names.get(i) ?? i))).join(",")}]`;
      const inner = bindNames(e.indices, c);
      return `${e.kind}(${printPrec(e.body, 0, inner)}, ${e.indices.map((i) => inner.names.get(i) ?? i).join(", ")})`;
    }
    case "pow": {
      if (e.exp.kind === "num" && e.exp.value === 0.5) return `sqrt(${printPrec(e.base, 0, c)})`;
      if (e.exp.kind === "num" && e.exp.value < 0) {
        const inv = pow(e.base, num(-e.exp.value));
        return wrap(`1/${printPrec(inv, 3, c)}`, 1);
      }
      return wrap(`${printPrec(e.base, 4, c)}^${printPrec(e.exp, 3, c)}`, 3);
    }
    case "mul": {
      const [k, rest] = splitCoefficient(e);
      const fs = rest.kind === "mul" ? rest.factors : [rest];
      const numer: string[] = [];
      const denom: string[] = [];
      for (const f of fs) {
        if (f.kind === "pow" && f.exp.kind === "num" && f.exp.value < 0) {
          denom.push(printPrec(pow(f.base, num(-f.exp.value)), 3, c));
        } else numer.push(printPrec(f, 1.5, c));
      }
      if (Math.abs(k) !== 1) numer.unshift(fmtNum(Math.abs(k)));
      let s = numer.length ? numer.join("*") : "1";
      if (denom.length) s += "/" + denom.join("/");
      return k < 0 ? wrap(`-${s}`, 2) : wrap(s, 1);
    }
    case "add": {
      // positive terms first, for reading; the node's own order is unchanged
      const terms = [...e.terms.filter((t) => splitCoefficient(t)[0] > 0), ...e.terms.filter((t) => splitCoefficient(t)[0] < 0)];
      let s = printPrec(terms[0]!, 0, c);
      for (const t of terms.slice(1)) {
        const [k, rest] = splitCoefficient(t);
        if (k < 0) s += ` - ${printPrec(k === -1 ? rest : mul(num(-k), rest), 1, c)}`;
        else s += ` + ${printPrec(t, 1, c)}`;
      }
      return wrap(s, 0);
    }
    case "where":
      return `where(${printPrec(e.left, 0, c)} ${e.op} ${printPrec(e.right, 0, c)}, ${printPrec(e.then, 0, c)}, ${printPrec(e.else, 0, c)})`;
    case "delta":
      return `delta(${c.names.get(e.index) ?? e.index}, ${printForm(e.form, c)})`;
    default:
      return assertNever(e, "expression");
  }
}

/**
 * A read with index forms, as the front end builds it: `sum(delta(c, label[n]) * z[n,c], c)` is
 * `z[n, label[n]]`. The sum's body is one value ref times one delta per bound index, each bound
 * index standing once in the ref and nowhere else. Returns the ref and the form of each bound index.
 */
export function gatherRead(e: Sum): { ref: Ref; forms: Map<string, IndexForm> } | undefined {
  if (e.body.kind !== "mul") return undefined;
  const refs = e.body.factors.filter((f): f is Ref => f.kind === "ref");
  const deltas = e.body.factors.filter((f): f is Delta => f.kind === "delta");
  if (refs.length !== 1 || deltas.length !== e.indices.length || refs.length + deltas.length !== e.body.factors.length) return undefined;
  const r = refs[0]!;
  if (r.space !== "value") return undefined;
  const forms = new Map<string, IndexForm>();
  for (const d of deltas) {
    if (!e.indices.includes(d.index) || forms.has(d.index) || formIndices(d.form).some((i) => e.indices.includes(i))) return undefined;
    forms.set(d.index, d.form);
  }
  if (!e.indices.every((i) => r.indices.filter((j) => j === i).length === 1)) return undefined;
  return { ref: r, forms };
}

/** An index form as written in an index position: `label[n]`. */
function printForm(f: IndexForm, c: PrintCtx): string {
  switch (f.kind) {
    case "gather":
      return printPrec(f.from, 4, c);
    case "affine":
      return affineText(f, (i) => c.names.get(i) ?? i);
    default:
      return assertNever(f, "index form");
  }
}
