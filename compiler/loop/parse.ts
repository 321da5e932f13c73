/**
 * The loop IR's text (print.ts) read back, so a pass is tested as text in ⇒ text out
 * (test/loop/<pass>.test.ts). It reads exactly what the printer writes, one statement per line, and
 * throws on anything else; `parse(print(x))` prints as `x` does.
 */
import type { CompareOp, Elem, Index, MathFn, Place, Stmt, StoreOp, Value } from "./ir.js";

const MATH: ReadonlySet<string> = new Set(["exp", "log", "tanh", "abs", "sin", "cos", "sign", "cosh", "sinh", "sqrt", "pow", "max", "erf", "log1p", "expm1", "floor"]);
const ELEM: ReadonlySet<string> = new Set(["f64", "f32", "i32"]);

/** Statements from their text; `array` lines are skipped (see parseKernel). */
export function parseStmts(text: string): Stmt[] {
  return parseKernel(text).body;
}

/** A kernel's arrays (`array x: f64[N, D]`) and statements. */
export function parseKernel(text: string): { arrays: { name: string; type: Elem; dims: string[] }[]; body: Stmt[] } {
  const lines = text.split("\n");
  const arrays: { name: string; type: Elem; dims: string[] }[] = [];
  let k = 0;
  const block = (closing: boolean): Stmt[] => {
    const out: Stmt[] = [];
    while (k < lines.length) {
      const raw = lines[k++]!;
      const line = raw.trim();
      if (line === "}") {
        if (!closing) throw new Error(`loop IR line ${k}: '}' without a block`);
        return out;
      }
      if (line === "") out.push({ kind: "blank" });
      else if (line.startsWith("// ")) out.push({ kind: "comment", text: line.slice(3) });
      else if (line === "{") out.push({ kind: "block", body: block(true) });
      else out.push(statement(line, k, () => block(true), arrays));
    }
    if (closing) throw new Error("loop IR: a block is not closed");
    return out;
  };
  const body = block(false);
  // a trailing newline is not a blank statement
  while (body.length && body[body.length - 1]!.kind === "blank" && text.endsWith("\n")) body.pop();
  return { arrays, body };
}

function statement(line: string, n: number, inner: () => Stmt[], arrays: { name: string; type: Elem; dims: string[] }[]): Stmt {
  const fail = (): never => {
    throw new Error(`loop IR line ${n}: cannot read '${line}'`);
  };
  let m = /^for (\w+) in (0|\w+)\.\.(\w+)(?: by (\d+))?(?: unroll (\d+))? \{$/.exec(line);
  if (m) return { kind: "for", index: m[1]!, extent: m[3]!, step: Number(m[4] ?? 1), resume: m[2] !== "0", unroll: Number(m[5] ?? 1), body: inner() };
  if ((m = /^counter (\w+)$/.exec(line))) return { kind: "counter", index: m[1]! };
  if ((m = /^(let|var) (\w+): (\w+) = (.+)$/.exec(line))) return { kind: "let", name: m[2]!, type: elem(m[3]!, fail), mutable: m[1] === "var", value: value(m[4]!, fail) };
  if ((m = /^alloc (\w+): (\w+)\[([\w, ]*)\](?: \{([\w, ]*)\})?(?: \/\/ (.*))?$/.exec(line)))
    return { kind: "alloc", array: m[1]!, type: elem(m[2]!, fail), dims: list(m[3]!), note: m[5] ?? "", ...(m[4] !== undefined ? { fields: list(m[4]) } : {}) };
  if ((m = /^array (\w+): (\w+)\[([\w, ]*)\]$/.exec(line))) {
    arrays.push({ name: m[1]!, type: elem(m[2]!, fail), dims: list(m[3]!) });
    return { kind: "blank" };
  }
  if ((m = /^copy (\w+) -> (\w+)$/.exec(line))) return { kind: "copy", from: m[1]!, to: m[2]! };
  if ((m = /^if given (\S+) \{$/.exec(line))) return { kind: "if-given", output: m[1]!, then: inner() };
  if ((m = /^fill (\w+) (\S+)$/.exec(line))) return { kind: "fill", array: m[1]!, value: Number(m[2]) };
  if ((m = /^(\w+(?:\[[^\]]*\])?) (=|\+=|max=) (.+)$/.exec(line))) return { kind: "store", place: placeOf(m[1]!, fail), op: m[2] as StoreOp, value: value(m[3]!, fail) };
  return fail();
}

function elem(s: string, fail: () => never): Elem {
  return ELEM.has(s) ? (s as Elem) : fail();
}

function list(s: string): string[] {
  return s.trim() === "" ? [] : s.split(",").map((x) => x.trim());
}

function placeOf(s: string, fail: () => never): Place {
  const v = value(s, fail);
  if (v.kind === "load") return { kind: "cell", array: v.array, at: v.at };
  if (v.kind === "local") return { kind: "local", name: v.name };
  return fail();
}

/** A value by precedence climbing over the printer's tokens. */
export function value(text: string, fail: () => never = () => { throw new Error(`loop IR: cannot read '${text}'`); }): Value {
  const tokens = text.match(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|Infinity|[A-Za-z_$][\w$]*|===|!==|<=|>=|[<>?:]|[-+*/(),[\]]/g) ?? [];
  if (tokens.join("") !== text.replace(/\s+/g, "")) fail();
  let k = 0;
  const peek = () => tokens[k];
  const take = (t?: string) => {
    const x = tokens[k++];
    if (x === undefined || (t !== undefined && x !== t)) fail();
    return x!;
  };
  const PREC: Record<string, number> = { "+": 1, "-": 1, "*": 2, "/": 2 };
  const CMP: Record<string, CompareOp> = { "<": "<", "<=": "<=", ">": ">", ">=": ">=", "===": "==", "!==": "!=" };
  const expr = (min: number): Value => {
    let left = unary();
    for (;;) {
      const op = peek();
      if (op === undefined || PREC[op] === undefined || PREC[op]! < min) return left;
      take();
      const right = expr(PREC[op]! + 1);
      left = { kind: "bin", op: op as "+" | "-" | "*" | "/", a: left, b: right };
    }
  };
  const unary = (): Value => {
    if (peek() === "-") {
      take();
      const t = peek();
      if (t !== undefined && /^(\d|Infinity)/.test(t)) return { kind: "num", value: -Number(take()) };
      return { kind: "neg", arg: unary() };
    }
    return atom();
  };
  const atom = (): Value => {
    const t = take();
    if (t === "(") {
      const v = expr(1);
      // a select, as the printer writes it: (left op right ? then : else)
      const op = peek();
      if (op !== undefined && CMP[op] !== undefined) {
        take();
        const right = expr(1);
        take("?");
        const then = expr(1);
        take(":");
        const otherwise = expr(1);
        take(")");
        return { kind: "select", op: CMP[op]!, left: v, right, then, else: otherwise };
      }
      take(")");
      return v;
    }
    if (/^(\d|Infinity)/.test(t)) return { kind: "num", value: Number(t) };
    if (!/^[A-Za-z_$]/.test(t)) return fail();
    if (peek() === "(" && MATH.has(t)) {
      take("(");
      const args: Value[] = [expr(1)];
      while (peek() === ",") {
        take(",");
        args.push(expr(1));
      }
      take(")");
      return { kind: "call", fn: t as MathFn, args };
    }
    if (peek() === "[") {
      take("[");
      const at: Index[] = [];
      while (peek() !== "]") {
        at.push(index());
        if (peek() === ",") take(",");
      }
      take("]");
      return { kind: "load", array: t, at };
    }
    return { kind: "local", name: t };
  };
  const index = (): Index => {
    const t = take();
    if (/^\d/.test(t)) return { var: undefined, plus: Number(t) };
    if (peek() === "+" || peek() === "-") {
      const sign = take() === "+" ? 1 : -1;
      return { var: t, plus: sign * Number(take()) };
    }
    return { var: t, plus: 0 };
  };
  const v = expr(1);
  if (k !== tokens.length) fail();
  return v;
}
