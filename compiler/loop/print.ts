/**
 * The loop IR as text, one statement per line, indented by nesting: what `--debug` shows after
 * each loop pass and what the pass tests compare. Deterministic; minimal parentheses (an operand
 * is parenthesized only where the tree would otherwise read differently).
 */
import { assertNever, type Index, type Kernel, type Place, type Stmt, type Value } from "./ir.js";

const PREC = { "+": 1, "-": 1, "*": 2, "/": 2 } as const;

/** Precedence of a value's top node: 1 for + -, 2 for * /, 3 for an atom or a call. */
export function precedence(v: Value): number {
  return v.kind === "bin" ? PREC[v.op] : v.kind === "neg" ? 2.5 : v.kind === "num" && v.value < 0 ? 2.5 : 3;
}

/** Text of a value with `atom` deciding how leaves read (shared by this printer and the TypeScript backend). */
export interface ValueSyntax {
  readonly num: (value: number) => string;
  readonly local: (name: string) => string;
  readonly load: (array: string, at: readonly Index[]) => string;
  readonly call: (fn: string, args: readonly string[]) => string;
}

export function printValueWith(v: Value, sx: ValueSyntax): string {
  const go = (x: Value): string => {
    switch (x.kind) {
      case "num":
        return sx.num(x.value);
      case "local":
        return sx.local(x.name);
      case "load":
        return sx.load(x.array, x.at);
      case "neg":
        return `-${wrap(x.arg, precedence(x.arg) < 3)}`;
      case "bin": {
        const p = PREC[x.op];
        return `${wrap(x.a, precedence(x.a) < p)} ${x.op} ${wrap(x.b, precedence(x.b) <= p)}`;
      }
      case "call":
        return sx.call(x.fn, x.args.map(go));
      case "select":
        return `(${go(x.left)} ${x.op === "==" ? "===" : x.op === "!=" ? "!==" : x.op} ${go(x.right)} ? ${go(x.then)} : ${go(x.else)})`;
      default:
        return assertNever(x);
    }
  };
  const wrap = (x: Value, paren: boolean) => (paren ? `(${go(x)})` : go(x));
  return go(v);
}

export function printIndex(i: Index): string {
  if (i.var === undefined) return String(i.plus);
  return i.plus === 0 ? i.var : i.plus > 0 ? `${i.var} + ${i.plus}` : `${i.var} - ${-i.plus}`;
}

const TEXT: ValueSyntax = {
  num: (value) => (Object.is(value, -0) ? "-0" : String(value)),
  local: (name) => name,
  load: (array, at) => `${array}[${at.map(printIndex).join(", ")}]`,
  call: (fn, args) => `${fn}(${args.join(", ")})`,
};

export function printValue(v: Value): string {
  return printValueWith(v, TEXT);
}

function printPlace(p: Place): string {
  return p.kind === "cell" ? TEXT.load(p.array, p.at) : p.name;
}

/** The statements as text, two spaces per level. */
export function printStmts(body: readonly Stmt[], depth = 0): string {
  const lines: string[] = [];
  const pad = (d: number) => "  ".repeat(d);
  const go = (ss: readonly Stmt[], d: number): void => {
    for (const s of ss) {
      switch (s.kind) {
        case "for": {
          const range = s.resume ? `${s.index}..${s.extent}` : `0..${s.extent}`;
          lines.push(`${pad(d)}for ${s.index} in ${range}${s.step === 1 ? "" : ` by ${s.step}`}${s.unroll === 1 ? "" : ` unroll ${s.unroll}`}${s.vector === undefined ? "" : ` vector ${s.vector}`} {`);
          go(s.body, d + 1);
          lines.push(`${pad(d)}}`);
          break;
        }
        case "counter":
          lines.push(`${pad(d)}counter ${s.index}`);
          break;
        case "block":
          lines.push(`${pad(d)}{`);
          go(s.body, d + 1);
          lines.push(`${pad(d)}}`);
          break;
        case "let":
          lines.push(`${pad(d)}${s.mutable ? "var" : "let"} ${s.name}: ${s.type} = ${printValue(s.value)}`);
          break;
        case "store":
          lines.push(`${pad(d)}${printPlace(s.place)} ${s.op} ${printValue(s.value)}`);
          break;
        case "alloc":
          lines.push(`${pad(d)}alloc ${s.array}: ${s.type}[${s.dims.join(", ")}]${s.fields ? ` {${s.fields.join(", ")}}` : ""}${s.note ? ` // ${s.note}` : ""}`);
          break;
        case "copy":
          lines.push(`${pad(d)}copy ${s.from} -> ${s.to}`);
          break;
        case "if-given":
          lines.push(`${pad(d)}if given ${s.output} {`);
          go(s.then, d + 1);
          lines.push(`${pad(d)}}`);
          break;
        case "fill":
          lines.push(`${pad(d)}fill ${s.array} ${s.value}`);
          break;
        case "comment":
          lines.push(`${pad(d)}// ${s.text}`);
          break;
        case "blank":
          lines.push("");
          break;
        default:
          assertNever(s, "statement");
      }
    }
  };
  go(body, depth);
  return lines.join("\n");
}

/** A kernel: its arrays (`array xhat: f64[N, D]`), then its body. */
export function printKernel(k: Kernel): string {
  const decls = k.arrays.map((a) => `array ${a.name}: ${a.type}[${a.dims.join(", ")}]`);
  return [...decls, printStmts(k.body)].join("\n");
}
