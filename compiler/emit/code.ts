/**
 * Lowering IR expressions to JavaScript: array offsets, arithmetic, and reductions as loops with
 * accumulators. Shared by the forward, naive and fused kernels.
 */
import { assertNever, canonicalSize, children, isTranscendental, splitCoefficient, type Expr, type Fn, type Ref, type SizeOf } from "../ir/expr.js";

/**
 * Identifiers a spec name must never become in generated code: JavaScript's reserved words (strict
 * mode, modules and TypeScript's own), the globals a module reads, and the module's own
 * identifiers (its exported kernels, helpers and parameters). Spec names are identifiers already
 * (parse/check.ts); `Namer.fresh` is the one mangling scheme that turns them into locals, so a
 * step named `let`, `checkArray` or `cache` gets a distinct name and never shadows what the module
 * needs.
 */
export const RESERVED: ReadonlySet<string> = new Set(
  (
    // ECMAScript reserved words, strict-mode and module restrictions
    "break case catch class const continue debugger default delete do else enum export extends false finally for function if import in " +
    "instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package " +
    "private protected public await arguments eval async of get set " +
    // TypeScript keywords that cannot name a value everywhere
    "any as asserts bigint boolean declare infer is keyof module namespace never readonly require number object string symbol type unique unknown " +
    // globals that generated code reads
    "undefined NaN Infinity globalThis Math Number String Object Array Error RangeError TypeError Symbol ArrayBuffer Float64Array Float32Array Int32Array " +
    // the module's own identifiers: kernels, helpers, parameters
    "forward backwardNaive backwardFused inputs sizes constants into cache dout value length name what outputs others " +
    "checkSize checkConstant checkArray checkCache checkDisjoint overlaps own output typedArray getter kindOf lengthOf bufferOf offsetOf bytesOf Int8Array PropertyKey"
  ).split(" "),
);

/** Allocates distinct JavaScript identifiers within one function. */
export class Namer {
  private readonly used = new Set<string>();
  constructor(taken: Iterable<string> = []) {
    for (const t of taken) this.used.add(t);
  }
  fresh(want: string): string {
    let base = want.replace(/[^A-Za-z0-9_$]/g, "_");
    if (/^[0-9]/.test(base)) base = `_${base}`;
    let name = base;
    for (let k = 1; RESERVED.has(name) || this.used.has(name); k++) name = RESERVED.has(base) && k === 1 ? `${base}_` : `${base}${k}`;
    this.used.add(name);
    return name;
  }
}

/** Where values live while lowering one function. */
export interface Scope {
  readonly sizeOf: SizeOf;
  /** JS name of the array holding a ref's tensor, and that tensor's dimension size names. */
  readonly array: (r: Ref) => { readonly name: string; readonly dims: readonly string[] };
  /** JS name of a scalar symbol (constant or size). */
  readonly symbol: (name: string) => string;
  /** JS variables of the indices in scope. */
  readonly indices: ReadonlyMap<string, string>;
  /** Nodes already computed, with the code that reads them. */
  readonly known?: ReadonlyMap<Expr, string>;
  readonly namer: Namer;
  /** Preferred JS name for a loop over an index of a size (`N` -> `n`). */
  readonly letterFor: (size: string) => string;
}

export interface Lowered {
  /** Statements to run before `code` can be read (reduction loops). */
  readonly pre: readonly string[];
  readonly code: string;
}

/** Row-major offset of a ref: `(i*D1 + j)*D2 + k`. */
export function offset(idx: readonly string[], dims: readonly string[]): string {
  if (idx.length === 0) return "0";
  let s = idx[0]!;
  for (let k = 1; k < idx.length; k++) s = `(${s}) * ${dims[k]} + ${idx[k]}`;
  return s;
}

const FN_JS: Record<Fn, (x: string) => string> = {
  exp: (x) => `Math.exp(${x})`,
  log: (x) => `Math.log(${x})`,
  tanh: (x) => `Math.tanh(${x})`,
  abs: (x) => `Math.abs(${x})`,
  sin: (x) => `Math.sin(${x})`,
  cos: (x) => `Math.cos(${x})`,
  sigmoid: (x) => `1 / (1 + Math.exp(-(${x})))`,
  sign: (x) => `Math.sign(${x})`,
  cosh: (x) => `Math.cosh(${x})`,
  sinh: (x) => `Math.sinh(${x})`,
  sech: (x) => `1 / Math.cosh(${x})`,
  stop: (x) => x, // the value passes; only the gradient stops
  relu: (x) => `Math.max(${x}, 0)`,
  log1p: (x) => `Math.log1p(${x})`,
  expm1: (x) => `Math.expm1(${x})`,
  softplus: (x) => `((v) => (v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v))))(${x})`,
  // issue 13: the driver refuses specs that need these until the loop IR lowers them
  erf: () => {
    throw new Error("erf is not lowered yet");
  },
};

function numLit(v: number): string {
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "(-Infinity)";
  return v < 0 ? `(${String(v)})` : String(v);
}

/** Lowers `e` to a JS expression, with reductions turned into accumulator loops in `pre`. */
export function lower(e: Expr, scope: Scope): Lowered {
  const pre: string[] = [];
  // transcendental calls and roots that occur more than once (outside reductions) are computed once
  const uses = new Map<Expr, number>();
  const count = (x: Expr): void => {
    if (x.kind === "sum" || x.kind === "max" || scope.known?.has(x)) return;
    const costly = isTranscendental(x);
    if (costly) uses.set(x, (uses.get(x) ?? 0) + 1);
    if (costly && uses.get(x)! > 1) return;
    for (const c of children(x)) count(c);
  };
  count(e);
  const shared = new Map<Expr, string>();
  const go = (x: Expr, s: Scope): string => {
    const k = s.known?.get(x);
    if (k !== undefined) return k;
    if (s === scope && (uses.get(x) ?? 0) > 1) {
      let v = shared.get(x);
      if (v === undefined) {
        const code = goInner(x, s);
        v = s.namer.fresh("t");
        pre.push(`const ${v} = ${code};`);
        shared.set(x, v);
      }
      return v;
    }
    return goInner(x, s);
  };
  const goInner = (x: Expr, s: Scope): string => {
    switch (x.kind) {
      case "num":
        return numLit(x.value);
      case "sym":
        return s.symbol(x.name);
      case "ref": {
        const a = s.array(x);
        const idx = x.indices.map((i) => {
          const v = s.indices.get(i);
          if (v === undefined) throw new Error(`lowering: index '${i}' is not in scope`);
          return v;
        });
        return `${a.name}[${offset(idx, a.dims)}]!`;
      }
      case "add": {
        const [c0, rest0] = splitCoefficient(x.terms[0]!);
        let out = c0 === -1 ? `-(${go(rest0, s)})` : `(${go(x.terms[0]!, s)})`;
        for (const t of x.terms.slice(1)) {
          const [c, rest] = splitCoefficient(t);
          if (c < 0) out += ` - (${c === -1 ? go(rest, s) : `${numLit(-c)} * ${go(rest, s)}`})`;
          else out += ` + (${go(t, s)})`;
        }
        return `(${out})`;
      }
      case "mul": {
        const num: string[] = [];
        const den: string[] = [];
        // a factor -1 is a sign, not a multiplication: -(a / b), never -1 * a / b
        let negate = false;
        for (const f of x.factors) {
          if (f.kind === "num" && f.value === -1) {
            negate = !negate;
            continue;
          }
          if (f.kind === "pow" && f.exp.kind === "num" && f.exp.value < 0 && !s.known?.has(f)) {
            const k2 = -f.exp.value;
            den.push(`(${powJs(go(f.base, s), k2)})`);
          } else num.push(`(${go(f, s)})`);
        }
        let out = num.length ? num.join(" * ") : "1";
        if (den.length) out = `${out} / ${den.join(" / ")}`;
        return negate ? `(-(${out}))` : `(${out})`;
      }
      case "pow": {
        if (x.exp.kind === "num") {
          const k2 = x.exp.value;
          return k2 < 0 ? `(1 / ${powJs(go(x.base, s), -k2)})` : powJs(go(x.base, s), k2);
        }
        return `Math.pow(${go(x.base, s)}, ${go(x.exp, s)})`;
      }
      case "call":
        return `(${FN_JS[x.fn](go(x.arg, s))})`;
      case "sum":
      case "max": {
        const acc = s.namer.fresh(x.kind === "max" ? "top" : "acc");
        const inner = new Map(s.indices);
        const loops: string[] = [];
        for (const i of x.indices) {
          const size = canonicalSize(i) ?? s.sizeOf(i);
          const v = s.namer.fresh(s.letterFor(size));
          inner.set(i, v);
          loops.push(`for (let ${v} = 0; ${v} < ${s.symbol(size)}; ${v}++) {`);
        }
        const bodyScope: Scope = { ...s, indices: inner };
        const saved = pre.length;
        const body = go(x.body, bodyScope);
        const bodyPre = pre.splice(saved);
        const init = x.kind === "max" ? "-Infinity" : "0";
        const step = x.kind === "max" ? `${acc} = Math.max(${acc}, ${body});` : `${acc} += ${body};`;
        pre.push(`let ${acc} = ${init};`, ...loops, ...bodyPre, step, ...loops.map(() => "}"));
        return acc;
      }
      case "where":
      case "delta":
        // issue 13: the driver refuses specs that need these until the loop IR lowers them
        throw new Error(`${x.kind} is not lowered yet`);
      default:
        return assertNever(x, "expression");
    }
  };
  const code = go(e, scope);
  return { pre, code };
}

function powJs(base: string, k: number): string {
  if (k === 1) return base;
  // every product is parenthesized: it may be a divisor (x^-2 is 1 / (x * x), not 1 / x * x)
  if (k === 2) return `((${base}) * (${base}))`;
  if (k === 3) return `((${base}) * (${base}) * (${base}))`;
  if (k === 0.5) return `Math.sqrt(${base})`;
  if (k === 1.5) return `((${base}) * Math.sqrt(${base}))`;
  return `Math.pow(${base}, ${numLit(k)})`;
}

/** Wraps `body` lines in loops over `indices` (outermost first). */
export function loopNest(indices: readonly { v: string; extent: string }[], body: readonly string[]): string[] {
  const open = indices.map(({ v, extent }) => `for (let ${v} = 0; ${v} < ${extent}; ${v}++) {`);
  return [...open, ...body, ...indices.map(() => "}")];
}

/**
 * Statements of an innermost loop body, with what runs once before and after the loop: an
 * accumulator that does not move with the innermost index lives in a local across the loop.
 */
export interface InnerBody {
  readonly before: readonly string[];
  readonly inside: readonly string[];
  readonly after: readonly string[];
}

/**
 * A loop nest whose two innermost loops are unrolled and jammed: the next-to-innermost by
 * `outerFactor` and the innermost by `innerFactor`, each with a remainder loop. `body` receives one
 * map of index variable -> code per copy (`n` -> `n + 1`) and returns the statements for all of
 * them, so that copies can share work (one accumulation for four rows). `prologue[k]` runs at the
 * top of loop `k` (it must not depend on an unrolled index).
 */
export function unrolledNest(
  loops: readonly { index: string; v: string; extent: string }[],
  outerFactor: number,
  innerFactor: number,
  prologue: readonly (readonly string[])[],
  body: (copies: readonly ReadonlyMap<string, string>[]) => string[] | InnerBody,
): string[] {
  const parts = (copies: readonly ReadonlyMap<string, string>[]): InnerBody => {
    const b = body(copies);
    return Array.isArray(b) ? { before: [], inside: b, after: [] } : (b as InnerBody);
  };
  const k = loops.length;
  const plus = (v: string, j: number) => (j === 0 ? v : `${v} + ${j}`);
  const copies = (fo: number, fi: number): Map<string, string>[] => {
    const out: Map<string, string>[] = [];
    for (let a = 0; a < fo; a++)
      for (let b = 0; b < fi; b++) {
        const m = new Map(loops.map((l) => [l.index, l.v]));
        if (k >= 2 && fo > 1) m.set(loops[k - 2]!.index, plus(loops[k - 2]!.v, a));
        if (k >= 1 && fi > 1) m.set(loops[k - 1]!.index, plus(loops[k - 1]!.v, b));
        out.push(m);
      }
    return out;
  };
  const inner = (fo: number): string[] => {
    const l = loops[k - 1]!;
    const one = parts(copies(fo, 1));
    if (innerFactor === 1) return [...one.before, `for (let ${l.v} = 0; ${l.v} < ${l.extent}; ${l.v}++) {`, ...(prologue[k - 1] ?? []), ...one.inside, "}", ...one.after];
    const many = parts(copies(fo, innerFactor));
    return [
      ...many.before,
      `let ${l.v} = 0;`,
      `for (; ${l.v} + ${innerFactor} <= ${l.extent}; ${l.v} += ${innerFactor}) {`,
      ...many.inside,
      "}",
      ...many.after,
      ...one.before,
      `for (; ${l.v} < ${l.extent}; ${l.v}++) {`,
      ...one.inside,
      "}",
      ...one.after,
    ];
  };
  if (k === 0) {
    const b = parts(copies(1, 1));
    return [...b.before, ...b.inside, ...b.after];
  }
  let nest: string[];
  if (k >= 2 && outerFactor > 1) {
    const u = loops[k - 2]!;
    nest = [
      `let ${u.v} = 0;`,
      `for (; ${u.v} + ${outerFactor} <= ${u.extent}; ${u.v} += ${outerFactor}) {`,
      ...inner(outerFactor),
      "}",
      `for (; ${u.v} < ${u.extent}; ${u.v}++) {`,
      ...(prologue[k - 2] ?? []),
      ...inner(1),
      "}",
    ];
  } else if (k >= 2) nest = [`for (let ${loops[k - 2]!.v} = 0; ${loops[k - 2]!.v} < ${loops[k - 2]!.extent}; ${loops[k - 2]!.v}++) {`, ...(prologue[k - 2] ?? []), ...inner(1), "}"];
  else nest = inner(1);
  for (let j = k - 3; j >= 0; j--) nest = [`for (let ${loops[j]!.v} = 0; ${loops[j]!.v} < ${loops[j]!.extent}; ${loops[j]!.v}++) {`, ...(prologue[j] ?? []), ...nest, "}"];
  // each loop level gets its own block, so remainder loops can reuse the variable names
  return ["{", ...nest, "}"];
}


/**
 * Scalar replacement of array reads in an innermost loop body. V8 cannot prove that a store to one
 * typed array leaves another unchanged (they may share a buffer), so it reloads every read after
 * every store. Each distinct read of an array the loop does not write is loaded once into a local:
 * at the top of the body, or before the loop when it does not involve the loop's variable.
 */
export function scalarReplace(body: InnerBody, readOnly: (array: string) => boolean, loopVar: string, namer: Namer): InnerBody {
  // a body with loops of its own (a reduction computed in place) declares variables the reads use
  if (body.inside.some((line) => /^\s*(for|let|const) /.test(line))) return body;
  const read = /\b([A-Za-z_$][\w$]*)\[([^\[\]]+)\]!/g;
  const found = new Map<string, string>();
  const order: string[] = [];
  for (const line of body.inside)
    for (const m of line.matchAll(read)) {
      if (!readOnly(m[1]!) || found.has(m[0])) continue;
      found.set(m[0], "");
      order.push(m[0]);
    }
  if (order.length === 0) return body;
  const moves = new RegExp(`\\b${loopVar.replace(/\$/g, "\\$")}\\b`);
  const before: string[] = [];
  const top: string[] = [];
  for (const text of order) {
    const v = namer.fresh("v");
    found.set(text, v);
    (moves.test(text) ? top : before).push(`const ${v} = ${text};`);
  }
  const inside = body.inside.map((line) => line.replace(read, (all: string) => found.get(all) || all));
  return { before: [...body.before, ...before], inside: [...top, ...inside], after: body.after };
}
