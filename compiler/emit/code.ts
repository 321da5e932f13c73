/**
 * The TypeScript backend's statements: a printer of the loop IR (compiler/loop/ir.ts) that never
 * reads back what it wrote. Arrays are flattened row-major with the dimensions the kernel declares;
 * reads end in `!` (the index is in range by construction); a comment's text goes through
 * `commentText`. Also the words a spec name must never become (`RESERVED`), given to the `Namer`.
 */
import { assertNever, Namer as LoopNamer, type Index, type Stmt } from "../loop/ir.js";
import { printValueWith } from "../loop/print.js";
import { commentText, stringLiteral } from "../escape.js";

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
    "erf checkIds checkInts upstream checkSize checkConstant checkArray checkCache checkDisjoint overlaps own output typedArray getter kindOf lengthOf bufferOf offsetOf bytesOf Int8Array PropertyKey " +
    // the WebAssembly module's own (emit/wasm-module.ts)
    "WebAssembly Uint8Array Buffer WASM_BYTES WasmMemory WasmApi HEAP_START wasmState wasmInstance fromBase64 pad ensureMemory reserveMemory runKernel alloc allocInts freeAll wasmMemory"
  ).split(" "),
);

/** The one mangling scheme for locals of a generated function: the loop IR's `Namer` with JavaScript's reserved words. */
export class Namer extends LoopNamer {
  constructor(taken: Iterable<string> = []) {
    super(taken, RESERVED);
  }
}

/** Row-major offset of an access: `(i*D1 + j)*D2 + k`. */
export function offset(idx: readonly string[], dims: readonly string[]): string {
  if (idx.length === 0) return "0";
  let s = idx[0]!;
  for (let k = 1; k < idx.length; k++) s = idx[k] === "0" ? `(${s}) * ${dims[k]}` : `(${s}) * ${dims[k]} + ${idx[k]}`;
  return s;
}

function index(i: Index): string {
  if (i.var === undefined) return String(i.plus);
  return i.plus === 0 ? i.var : `${i.var} + ${i.plus}`;
}

function numLit(v: number): string {
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  return String(v);
}

const CALL: Readonly<Record<string, string>> = { exp: "Math.exp", log: "Math.log", tanh: "Math.tanh", abs: "Math.abs", sin: "Math.sin", cos: "Math.cos", sign: "Math.sign", cosh: "Math.cosh", sinh: "Math.sinh", sqrt: "Math.sqrt", pow: "Math.pow", max: "Math.max", log1p: "Math.log1p", expm1: "Math.expm1", erf: "erf", floor: "Math.floor" };

const TYPED: Readonly<Record<string, string>> = { f64: "Float64Array", f32: "Float32Array", i32: "Int32Array" };

/**
 * The loop IR as TypeScript statements. `dims` gives the dimensions of each array the kernel is
 * given; arrays allocated in `body` declare their own.
 */
export function tsStatements(body: readonly Stmt[], dims: ReadonlyMap<string, readonly string[]>): string[] {
  const shape = new Map(dims);
  const arrayDims = (a: string) => {
    const d = shape.get(a);
    if (d === undefined) throw new Error(`emit: no dimensions for '${a}'`);
    return d;
  };
  const access = (a: string, at: readonly Index[]) => `${a}[${offset(at.map(index), arrayDims(a))}]`;
  const value = (v: Parameters<typeof printValueWith>[0]) =>
    printValueWith(v, { num: numLit, local: (n) => n, load: (a, at) => `${access(a, at)}!`, call: (fn, args) => `${CALL[fn]}(${args.join(", ")})` });
  const lines: string[] = [];
  const go = (ss: readonly Stmt[]): void => {
    for (const s of ss) {
      switch (s.kind) {
        case "for":
          if (s.resume) lines.push(s.step === 1 ? `for (; ${s.index} < ${s.extent}; ${s.index}++) {` : `for (; ${s.index} + ${s.step} <= ${s.extent}; ${s.index} += ${s.step}) {`);
          else if (s.step === 1) lines.push(`for (let ${s.index} = 0; ${s.index} < ${s.extent}; ${s.index}++) {`);
          else throw new Error("emit: a loop with a step resumes from its counter");
          go(s.body);
          lines.push("}");
          break;
        case "counter":
          lines.push(`let ${s.index} = 0;`);
          break;
        case "block":
          lines.push("{");
          go(s.body);
          lines.push("}");
          break;
        case "let":
          lines.push(`${s.mutable ? "let" : "const"} ${s.name} = ${value(s.value)};`);
          break;
        case "store": {
          const target = s.place.kind === "cell" ? access(s.place.array, s.place.at) : s.place.name;
          const v = value(s.value);
          // a cell read back needs `!`, which an assignment target cannot carry: `c[i] = c[i]! + v`
          const old = s.place.kind === "cell" ? `${target}!` : target;
          if (s.op === "max=") lines.push(`${target} = Math.max(${old}, ${v});`);
          else if (s.op === "+=" && s.place.kind === "cell") lines.push(`${target} = ${old} + ${s.value.kind === "bin" && (s.value.op === "+" || s.value.op === "-") ? `(${v})` : v};`);
          else lines.push(`${target} ${s.op} ${v};`);
          break;
        }
        case "alloc": {
          shape.set(s.array, s.dims);
          const len = s.dims.length ? s.dims.join(" * ") : "1";
          lines.push(`const ${s.array} = new ${TYPED[s.type]}(${len});${s.note ? ` // ${commentText(s.note)}` : ""}`);
          break;
        }
        case "copy":
          lines.push(`${s.to}.set(${s.from});`);
          break;
        case "if-given": {
          const test = `if (own(into, ${stringLiteral(s.output)}) !== undefined)`;
          const at = lines.length;
          go(s.then);
          // one simple statement reads on the line of its test
          if (lines.length === at + 1 && s.then.length === 1 && s.then[0]!.kind !== "for" && s.then[0]!.kind !== "block") lines[at] = `${test} ${lines[at]}`;
          else lines.splice(at, 0, `${test} {`), lines.push("}");
          break;
        }
        case "fill":
          lines.push(`${s.array}.fill(${numLit(s.value)});`);
          break;
        case "comment":
          lines.push(`// ${commentText(s.text)}`);
          break;
        case "blank":
          lines.push("");
          break;
        default:
          assertNever(s, "statement");
      }
    }
  };
  go(body);
  return lines;
}
