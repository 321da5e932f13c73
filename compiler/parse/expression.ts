/**
 * Expression syntax of the spec language: tokens and a precedence-climbing parser into a raw,
 * unresolved syntax tree. Names are resolved and indices checked in `check.ts`; the same parser
 * reads CAS answers back (see differentiate/cas.ts).
 *
 * Precedence, loosest first: a comparison (`< <= > >= == !=`, at most one, not chained), `+ -`,
 * `* /`, unary `-`, `^` (right-associative; `-x^2` is `-(x^2)`). A comparison parses anywhere an
 * expression does; the checker allows it only as the first argument of `where`, and says so.
 *
 * Pattern mode (`{ pattern: true }`, used only by the simplifier's rule table in
 * `simplify/pattern.ts`) also reads pattern variables `?name` wherever a name or an index letter
 * may stand. A spec is never parsed in pattern mode, so a spec cannot contain them.
 */

import { MAX_NESTING } from "../limits.js";

export type Ast =
  | { readonly type: "num"; readonly value: number; readonly col: number }
  | { readonly type: "name"; readonly name: string; readonly indices: readonly IndexTok[] | undefined; readonly col: number }
  | { readonly type: "call"; readonly fn: string; readonly args: readonly Ast[]; readonly col: number }
  | { readonly type: "binary"; readonly op: "+" | "-" | "*" | "/" | "^"; readonly left: Ast; readonly right: Ast; readonly col: number }
  | { readonly type: "neg"; readonly arg: Ast; readonly col: number }
  | { readonly type: "compare"; readonly op: CompareOp; readonly left: Ast; readonly right: Ast; readonly col: number };

export type CompareOp = "<" | "<=" | ">" | ">=" | "==" | "!=";
const COMPARE_OPS: readonly string[] = ["<", "<=", ">", ">=", "==", "!="];

/**
 * What stands in an index position: a letter (`n`), or a gather, the element of another tensor
 * whose value is the index (`label[n]` in `z[n, label[n]]`: `indices` is set).
 */
export interface IndexTok {
  readonly name: string;
  readonly col: number;
  readonly indices?: readonly IndexTok[];
  /**
   * An affine index (CONTRACT §4.3), `2*i + k - 1`: letters with integer coefficients plus an
   * integer offset. Set only when the position is more than one plain letter; `name` is its text.
   */
  readonly affine?: { readonly terms: readonly { readonly name: string; readonly coef: number; readonly col: number }[]; readonly offset: number };
}

/** A syntax error at a column (0-based) of the parsed text. */
export class SyntaxProblem extends Error {
  constructor(
    message: string,
    readonly col: number,
  ) {
    super(message);
  }
}

type Tok =
  | { kind: "num"; value: number; col: number; text: string }
  | { kind: "id"; text: string; col: number }
  | { kind: "op"; text: string; col: number }
  | { kind: "end"; col: number; text: "" };

export interface ParseOptions {
  /** Reads `?name` as a name: only the simplifier's rule patterns, never a spec. */
  readonly pattern?: boolean;
}

export function tokenize(src: string, opts: ParseOptions = {}): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const numMatch = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(src.slice(i));
    if (numMatch) {
      const text = numMatch[0];
      out.push({ kind: "num", value: Number(text), col: i, text });
      i += text.length;
      continue;
    }
    const idMatch = (opts.pattern ? /^\??[A-Za-z_][A-Za-z0-9_]*/ : /^[A-Za-z_][A-Za-z0-9_]*/).exec(src.slice(i));
    if (idMatch) {
      out.push({ kind: "id", text: idMatch[0], col: i });
      i += idMatch[0].length;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === "<=" || two === ">=" || two === "==" || two === "!=") {
      out.push({ kind: "op", text: two, col: i });
      i += 2;
      continue;
    }
    if ("+-*/^()[],<>".includes(c)) {
      out.push({ kind: "op", text: c, col: i });
      i++;
      continue;
    }
    throw new SyntaxProblem(`unexpected character '${c}'`, i);
  }
  out.push({ kind: "end", col: src.length, text: "" });
  return out;
}

export function parseExpression(src: string, opts: ParseOptions = {}): Ast {
  const toks = tokenize(src, opts);
  let k = 0;
  // nesting of parentheses, calls, signs and powers: bounded so that this parser and every stage
  // after it, all recursive, stay far below the stack limit
  let depth = 0;
  const enter = (col: number) => {
    if (++depth > MAX_NESTING)
      throw new SyntaxProblem(`the expression is nested more than ${MAX_NESTING} levels deep (parentheses, function calls, signs and powers); the limit is ${MAX_NESTING}`, col);
  };
  const peek = () => toks[k]!;
  const next = () => toks[k++]!;
  const describe = (t: Tok) => (t.kind === "end" ? "end of expression" : `'${t.text}'`);
  const expectOp = (text: string, what: string) => {
    const t = next();
    if (t.kind !== "op" || t.text !== text) throw new SyntaxProblem(`expected '${text}' ${what}, found ${describe(t)}`, t.col);
  };
  const isOp = (text: string) => {
    const t = peek();
    return t.kind === "op" && t.text === text;
  };

  const isCompare = () => {
    const t = peek();
    return t.kind === "op" && COMPARE_OPS.includes(t.text);
  };
  /** An expression with at most one comparison: `a < b`. */
  function comparison(): Ast {
    const left = sumExpr();
    if (!isCompare()) return left;
    const t = next();
    const right = sumExpr();
    if (isCompare()) throw new SyntaxProblem(`comparisons do not chain: write 'a < b' once (combine conditions with nested where)`, peek().col);
    return { type: "compare", op: t.text as CompareOp, left, right, col: t.col };
  }

  function sumExpr(): Ast {
    let left = product();
    while (isOp("+") || isOp("-")) {
      const t = next();
      left = { type: "binary", op: t.text as "+" | "-", left, right: product(), col: t.col };
    }
    return left;
  }
  function product(): Ast {
    let left = unary();
    while (isOp("*") || isOp("/")) {
      const t = next();
      left = { type: "binary", op: t.text as "*" | "/", left, right: unary(), col: t.col };
    }
    return left;
  }
  function unary(): Ast {
    if (isOp("-") || isOp("+")) {
      const t = next();
      enter(t.col);
      const arg = unary();
      depth--;
      return t.text === "-" ? { type: "neg", arg, col: t.col } : arg;
    }
    return power();
  }
  function power(): Ast {
    const base = atom();
    if (isOp("^")) {
      const t = next();
      enter(t.col);
      const right = unary();
      depth--;
      return { type: "binary", op: "^", left: base, right, col: t.col };
    }
    return base;
  }
  function atom(): Ast {
    const t = next();
    if (t.kind === "num") return { type: "num", value: t.value, col: t.col };
    if (t.kind === "op" && t.text === "(") {
      enter(t.col);
      const e = comparison();
      expectOp(")", "to close '('");
      depth--;
      return e;
    }
    if (t.kind === "id") {
      if (isOp("(")) {
        next();
        enter(t.col);
        const args: Ast[] = [];
        if (!isOp(")")) {
          args.push(comparison());
          while (isOp(",")) {
            next();
            args.push(comparison());
          }
        }
        expectOp(")", `to close the call of '${t.text}'`);
        depth--;
        return { type: "call", fn: t.text, args, col: t.col };
      }
      const indices = isOp("[") ? indexList(t.text) : undefined;
      return { type: "name", name: t.text, indices, col: t.col };
    }
    throw new SyntaxProblem(`expected a number, a name or '(', found ${describe(t)}`, t.col);
  }

  /** `[i, j, label[n]]` after a name: letters, or gathers (a name with its own index list). */
  function indexList(of: string): IndexTok[] {
    next(); // '['
    const indices: IndexTok[] = [];
    if (!isOp("]")) {
      for (;;) {
        const it = peek();
        if (it.kind === "id" && toks[k + 1]?.kind === "op" && toks[k + 1]!.text === "[") {
          next();
          enter(it.col);
          indices.push({ name: it.text, col: it.col, indices: indexList(it.text) });
          depth--;
        } else indices.push(affineIndex());
        if (isOp(",")) next();
        else break;
      }
    }
    expectOp("]", `to close the indices of '${of}'`);
    return indices;
  }

  /**
   * One index position without a gather: `i`, or an affine form `a*i + b*k + c` (integer literals,
   * `a*i` or `i*a`, terms joined by `+` and `-`, a leading sign allowed).
   */
  function affineIndex(): IndexTok {
    const start = peek();
    const terms: { name: string; coef: number; col: number }[] = [];
    let offset = 0;
    let first = true;
    const integer = (t: Tok): number => {
      if (t.kind !== "num" || !Number.isSafeInteger(t.value) || /[.eE]/.test(t.text))
        throw new SyntaxProblem(`an index expression takes integer literals and index letters, like 2*i + k - 1; found ${describe(t)}`, t.col);
      return t.value;
    };
    for (;;) {
      let sign = 1;
      if (isOp("+") || isOp("-")) sign = next().text === "-" ? -1 : 1;
      else if (!first) break;
      first = false;
      const t = next();
      if (t.kind === "id") {
        let coef = sign;
        if (isOp("*")) {
          next();
          coef *= integer(next());
        }
        terms.push({ name: t.text, coef, col: t.col });
      } else if (t.kind === "num") {
        const v = integer(t);
        if (isOp("*")) {
          next();
          const l = next();
          if (l.kind !== "id") throw new SyntaxProblem(`expected an index letter after '${t.text}*', found ${describe(l)}`, l.col);
          terms.push({ name: l.text, coef: sign * v, col: l.col });
        } else offset += sign * v;
      } else throw new SyntaxProblem(`expected an index letter, an affine index like 2*i + k - 1, or an integer input's element (like label[n]), found ${describe(t)}`, t.col);
      if (!isOp("+") && !isOp("-")) break;
    }
    const only = terms[0];
    if (terms.length === 1 && only!.coef === 1 && offset === 0 && only!.col === start.col) return { name: only!.name, col: only!.col };
    const text = src.slice(start.col, peek().col).trim();
    return { name: text, col: start.col, affine: { terms, offset } };
  }

  const e = comparison();
  const rest = peek();
  if (rest.kind !== "end") throw new SyntaxProblem(`unexpected ${describe(rest)} after a complete expression`, rest.col);
  return e;
}

/** `name[i,j]` or `name` on a left-hand side or in the inputs list. */
export function parseDecl(src: string): { name: string; indices: IndexTok[]; col: number } {
  const ast = parseExpression(src);
  if (ast.type !== "name") throw new SyntaxProblem(`expected a name with its indices, like x[n,d]`, 0);
  return { name: ast.name, indices: [...(ast.indices ?? [])], col: ast.col };
}

/**
 * The operands of a left-leaning chain of `+ -` (or `* /`) without recursion: `a - b + c` gives
 * `a` and `[-b, +c]`. The parser builds such chains left-deep, one level per operator, so a long
 * sum must not be walked recursively.
 */
export function chainOf(a: Ast, ops: "+-" | "*/"): { first: Ast; rest: { op: "+" | "-" | "*" | "/"; arg: Ast; col: number }[] } {
  const rest: { op: "+" | "-" | "*" | "/"; arg: Ast; col: number }[] = [];
  let cur = a;
  while (cur.type === "binary" && ops.includes(cur.op)) {
    rest.push({ op: cur.op as "+" | "-" | "*" | "/", arg: cur.right, col: cur.col });
    cur = cur.left;
  }
  return { first: cur, rest: rest.reverse() };
}
