/**
 * The WebAssembly backend (`--target wasm`, CONTRACT §5): the same loop IR that `code.ts` prints as
 * TypeScript, printed as WebAssembly text, one function per kernel body, and assembled by wabt
 * into one binary that the module embeds (base64) and instantiates synchronously, importing
 * nothing. The TypeScript around it (guards, `into`, the cache) is the TypeScript module's own;
 * each kernel body becomes a call that hands the wasm function the addresses of its arrays
 * (`wasm-runtime.ts` copies an array that does not live in the module's memory in or out).
 *
 * Why wabt and not binaryen: both parse the text and write the binary. wabt's JavaScript build is
 * 5.5 MB installed and loads in 0.1 s; binaryen's is 104 MB and loads in 1.2-1.6 s, and its
 * optimizer has little left to do on loops the loop passes already hoisted, unrolled and
 * vectorized (V8 compiles the result with its optimizing tier anyway).
 *
 * Values: every scalar is an f64, as in the TypeScript kernels (a float32 array is widened on
 * load and rounded on store), loop counters and ids are i32; `vectorize.ts` marks innermost
 * independent loops, which this printer writes as f64x2 code (float64 modules) or f32x4 code
 * (float32 modules: four lanes computed in float32, loaded and stored four at a time, their
 * reductions widened into f64x2 accumulators so they add up in float64 as the scalar code does).
 *
 * Memory: a kernel's own arrays (`alloc`) sit at fixed offsets from the `$.base` it is given;
 * `scratchBytes` is the JavaScript expression of how many bytes that takes, so the caller makes
 * room before the call (the kernel never grows memory).
 */
import { assertNever, bin, local, mapStmts, num, stmtNodes, valueNodes, type Elem, type Index, type MathFn, type Stmt, type Value } from "../loop/ir.js";
import { isModuleFunction, mathFunctions } from "./wasm-math.js";
import { positions, varies } from "../loop/vectorize.js";

/** One kernel body as a wasm function: its text, what it takes, in parameter order, and how much scratch memory it needs. */
export interface WasmFunction {
  readonly text: string;
  /** The arrays it reads or writes that it does not allocate, with their element types and whether it writes them. */
  readonly arrays: readonly { readonly name: string; readonly type: Elem; readonly written: boolean }[];
  /** The scalar locals it reads from outside (sizes as i32, constants as f64), after the arrays. */
  readonly scalars: readonly { readonly name: string; readonly type: "i32" | "f64" }[];
  /** A JavaScript expression over the size locals: the bytes of the arrays it allocates. */
  readonly scratchBytes: string;
  /** The math functions it calls. */
  readonly calls: ReadonlySet<string>;
}

/**
 * Terms a float32 vector loop adds up in each lane of a reduction in float32 before it adds them
 * into float64 accumulators: a block of PARTIAL trips.
 */
const PARTIAL = 16;

const BYTES: Readonly<Record<Elem, number>> = { f64: 8, f32: 4, i32: 4 };
const SHIFT: Readonly<Record<Elem, number>> = { f64: 3, f32: 2, i32: 2 };

type T = "i32" | "f64";
interface Code {
  readonly code: string;
  readonly type: T;
}

/** A WebAssembly literal of an f64 (`inf`, `nan`, hexadecimal for -0 and exactness). */
export function f64Literal(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  if (Object.is(v, -0)) return "-0x0p+0";
  return String(v);
}

/**
 * A kernel body as a wasm function exported as `exportName`. `dims` gives the dimensions of each
 * array the body is given (size locals, or numbers of slots); `floats` is the element type of the
 * module's float arrays; `ints` names the Int32Array ones (integer inputs; an array read into an
 * i32 local is one too).
 */
export function wasmFunction(exportName: string, body: readonly Stmt[], dims: ReadonlyMap<string, readonly string[]>, floats: "f64" | "f32", ints: ReadonlySet<string> = new Set()): WasmFunction {
  // --- what the body declares and what it takes from outside
  const declared = new Map<string, T>(); // locals: lets, counters, loop indices, allocated arrays (addresses)
  const allocs: { name: string; type: Elem; dims: readonly string[]; stmt: Stmt }[] = [];
  const arrayType = new Map<string, Elem>();
  const idArrays = new Set<string>(ints);
  const usedArrays: string[] = [];
  const writtenArrays = new Set<string>();
  const intNames = new Set<string>(); // free names used as extents, dimensions or indices
  const readNames: string[] = [];
  const calls = new Set<string>();
  const useArray = (a: string) => {
    if (!usedArrays.includes(a)) usedArrays.push(a);
  };
  const useValue = (v: Value): void => {
    switch (v.kind) {
      case "num":
        return;
      case "local":
        if (!readNames.includes(v.name)) readNames.push(v.name);
        return;
      case "load":
        useArray(v.array);
        for (const i of v.at) if (i.var !== undefined) intNames.add(i.var);
        return;
      case "neg":
        return useValue(v.arg);
      case "bin":
        useValue(v.a);
        return useValue(v.b);
      case "call":
        if (isModuleFunction(v.fn)) calls.add(v.fn);
        return v.args.forEach(useValue);
      case "select":
        [v.left, v.right, v.then, v.else].forEach(useValue);
        return;
      default:
        return assertNever(v);
    }
  };
  const scan = (ss: readonly Stmt[]): void => {
    for (const s of ss) {
      switch (s.kind) {
        case "for":
          declared.set(s.index, "i32");
          intNames.add(s.extent);
          if (!readNames.includes(s.extent)) readNames.push(s.extent);
          scan(s.body);
          break;
        case "counter":
          declared.set(s.index, "i32");
          break;
        case "block":
          scan(s.body);
          break;
        case "let":
          declared.set(s.name, s.type === "i32" ? "i32" : "f64");
          if (s.type === "i32" && s.value.kind === "load") idArrays.add(s.value.array);
          useValue(s.value);
          break;
        case "store":
          if (s.place.kind === "cell") {
            useArray(s.place.array);
            writtenArrays.add(s.place.array);
            for (const i of s.place.at) if (i.var !== undefined) intNames.add(i.var);
          } else if (!readNames.includes(s.place.name)) readNames.push(s.place.name);
          useValue(s.value);
          break;
        case "alloc":
          declared.set(s.array, "i32");
          arrayType.set(s.array, narrowed.has(s.array) ? "f32" : s.type);
          allocs.push({ name: s.array, type: arrayType.get(s.array)!, dims: s.dims, stmt: s });
          for (const d of s.dims) if (!/^[0-9]+$/.test(d)) intNames.add(d), readNames.includes(d) || readNames.push(d);
          break;
        case "copy":
          useArray(s.from);
          useArray(s.to);
          writtenArrays.add(s.to);
          break;
        case "if-given":
          scan(s.then);
          break;
        case "fill":
          useArray(s.array);
          writtenArrays.add(s.array);
          break;
        case "comment":
        case "blank":
          break;
        default:
          assertNever(s, "statement");
      }
    }
  };
  // a float32 module's float64 scratch arrays that are only assigned (coefficients computed once,
  // like `D * gamma[d]`), not added into, hold float32 values: a vector loop computes in float32
  // and would round each element it reads anyway, and reads four at a time instead of two
  const narrowed = new Set<string>();
  if (floats === "f32") {
    const nodes = stmtNodes(body);
    for (const a of nodes) {
      if (a.kind !== "alloc" || a.type !== "f64") continue;
      const stores = nodes.filter((x): x is Stmt & { kind: "store" } => x.kind === "store" && x.place.kind === "cell" && x.place.array === a.array);
      // an accumulator read from a cell and stored back (`accumulate.ts`) adds into it too
      const readBack = nodes.some((x) => x.kind === "let" && x.mutable && valueNodes(x.value).some((v) => v.kind === "load" && v.array === a.array));
      if (!readBack && stores.every((x) => x.op === "=" && !valueNodes(x.value).some((v) => v.kind === "load" && v.array === a.array)) && !nodes.some((x) => x.kind === "copy" && x.to === a.array)) narrowed.add(a.array);
    }
  }
  scan(body);
  const given = usedArrays.filter((a) => !declared.has(a));
  for (const a of given) {
    arrayType.set(a, idArrays.has(a) ? "i32" : floats);
    for (const d of dims.get(a) ?? []) if (!/^[0-9]+$/.test(d)) intNames.add(d), readNames.includes(d) || readNames.push(d);
  }
  // each array's dimensions: those given, and an allocation's from where it stands on (as code.ts does)
  const shape = new Map(dims);
  const dimsOf = (a: string): readonly string[] => {
    const d = shape.get(a);
    if (d === undefined) throw new Error(`wasm: no dimensions for '${a}'`);
    return d;
  };
  const scalars = readNames.filter((n) => !declared.has(n) && !given.includes(n)).map((name) => ({ name, type: (intNames.has(name) ? "i32" : "f64") as T }));
  const localType = (name: string): T => {
    const t = declared.get(name) ?? scalars.find((s) => s.name === name)?.type;
    if (t === undefined) throw new Error(`wasm: unknown local '${name}'`);
    return t;
  };

  // --- printing
  const id = (name: string) => `$${name}`;
  const get = (name: string) => `(local.get ${id(name)})`;
  const toF64 = (c: Code): string => (c.type === "f64" ? c.code : `(f64.convert_i32_s ${c.code})`);
  const dimCode = (d: string): string => (/^[0-9]+$/.test(d) ? `(i32.const ${d})` : get(d));
  const indexCode = (i: Index): string => {
    if (i.var === undefined) return `(i32.const ${i.plus})`;
    return i.plus === 0 ? get(i.var) : `(i32.add ${get(i.var)} (i32.const ${i.plus}))`;
  };
  /** The byte address of `array[at]`, row-major. */
  const address = (array: string, at: readonly Index[]): string => {
    const ds = dimsOf(array);
    if (at.length === 0) return get(array);
    let off = indexCode(at[0]!);
    for (let k = 1; k < at.length; k++) off = `(i32.add (i32.mul ${off} ${dimCode(ds[k]!)}) ${indexCode(at[k]!)})`;
    return `(i32.add ${get(array)} (i32.shl ${off} (i32.const ${SHIFT[arrayType.get(array)!]})))`;
  };
  const loadCode = (array: string, at: readonly Index[]): Code => {
    const t = arrayType.get(array)!;
    const a = address(array, at);
    if (t === "f64") return { code: `(f64.load ${a})`, type: "f64" };
    if (t === "f32") return { code: `(f64.promote_f32 (f32.load ${a}))`, type: "f64" };
    return { code: `(i32.load ${a})`, type: "i32" };
  };
  const storeCode = (array: string, at: readonly Index[], v: string): string => {
    const t = arrayType.get(array)!;
    const a = address(array, at);
    if (t === "f64") return `(f64.store ${a} ${v})`;
    if (t === "f32") return `(f32.store ${a} (f32.demote_f64 ${v}))`;
    return `(i32.store ${a} (i32.trunc_sat_f64_s ${v}))`;
  };
  const CMP: Readonly<Record<string, [string, string]>> = { "<": ["i32.lt_s", "f64.lt"], "<=": ["i32.le_s", "f64.le"], ">": ["i32.gt_s", "f64.gt"], ">=": ["i32.ge_s", "f64.ge"], "==": ["i32.eq", "f64.eq"], "!=": ["i32.ne", "f64.ne"] };
  const OP = { "+": "f64.add", "-": "f64.sub", "*": "f64.mul", "/": "f64.div" } as const;
  const callCode = (fn: MathFn, args: readonly string[]): string => {
    switch (fn) {
      case "abs":
        return `(f64.abs ${args[0]})`;
      case "sqrt":
        return `(f64.sqrt ${args[0]})`;
      case "max":
        return args.slice(1).reduce((a, b) => `(f64.max ${a} ${b})`, args[0]!);
      default:
        return `(call $m.${fn} ${args.join(" ")})`;
    }
  };
  const value = (v: Value): Code => {
    switch (v.kind) {
      case "num":
        return { code: `(f64.const ${f64Literal(v.value)})`, type: "f64" };
      case "local":
        return { code: get(v.name), type: localType(v.name) };
      case "load":
        return loadCode(v.array, v.at);
      case "neg":
        return { code: `(f64.neg ${toF64(value(v.arg))})`, type: "f64" };
      case "bin":
        return { code: `(${OP[v.op]} ${toF64(value(v.a))} ${toF64(value(v.b))})`, type: "f64" };
      case "call":
        return { code: callCode(v.fn, v.args.map((a) => toF64(value(a)))), type: "f64" };
      case "select": {
        const l = value(v.left);
        const r = value(v.right);
        const [i, f] = CMP[v.op]!;
        const test = l.type === "i32" && r.type === "i32" ? `(${i} ${l.code} ${r.code})` : `(${f} ${toF64(l)} ${toF64(r)})`;
        return { code: `(if (result f64) ${test} (then ${toF64(value(v.then))}) (else ${toF64(value(v.else))}))`, type: "f64" };
      }
      default:
        return assertNever(v);
    }
  };
  /**
   * An integer value in i32 arithmetic, or undefined: integer constants, i32 locals, `+ - *` and
   * choices between such values by a test of such values (an id, a loop's bounds). `value` would
   * compute it in f64 and convert, which an inner loop's positions cannot afford.
   */
  const intValue = (v: Value): string | undefined => {
    switch (v.kind) {
      case "num":
        return Number.isInteger(v.value) && Math.abs(v.value) < 2 ** 31 ? `(i32.const ${v.value})` : undefined;
      case "local":
        return localType(v.name) === "i32" ? get(v.name) : undefined;
      case "bin": {
        if (v.op === "/") return undefined;
        const a = intValue(v.a);
        const b = a === undefined ? undefined : intValue(v.b);
        return b === undefined ? undefined : `(i32.${v.op === "+" ? "add" : v.op === "-" ? "sub" : "mul"} ${a} ${b})`;
      }
      case "select": {
        const parts = [v.left, v.right, v.then, v.else].map(intValue);
        if (parts.some((x) => x === undefined)) return undefined;
        const [l, r, t, e] = parts as string[];
        return `(select ${t} ${e} (${CMP[v.op]![0]} ${l} ${r}))`;
      }
      case "neg":
      case "load":
      case "call":
        return undefined;
      default:
        return assertNever(v);
    }
  };
  const lengthCode = (ds: readonly string[]): string => (ds.length ? ds.map(dimCode).reduce((a, b) => `(i32.mul ${a} ${b})`) : "(i32.const 1)");

  let label = 0;
  const out: string[] = [];
  const emit = (ss: readonly Stmt[], depth: number): void => {
    const pad = "  ".repeat(depth);
    for (const s of ss) {
      switch (s.kind) {
        case "for": {
          if (s.vector !== undefined) {
            emitVector(s, depth);
            break;
          }
          const k = label++;
          const i = get(s.index);
          if (!s.resume) out.push(`${pad}(local.set ${id(s.index)} (i32.const 0))`);
          // leave when the next trip would pass the extent: i + step > extent
          const stop = s.step === 1 ? `(i32.ge_s ${i} ${get(s.extent)})` : `(i32.gt_s (i32.add ${i} (i32.const ${s.step})) ${get(s.extent)})`;
          out.push(`${pad}(block $b${k} (loop $l${k}`);
          out.push(`${pad}  (br_if $b${k} ${stop})`);
          emit(s.body, depth + 1);
          out.push(`${pad}  (local.set ${id(s.index)} (i32.add ${i} (i32.const ${s.step})))`);
          out.push(`${pad}  (br $l${k})))`);
          break;
        }
        case "counter":
          out.push(`${pad}(local.set ${id(s.index)} (i32.const 0))`);
          break;
        case "block":
          emit(s.body, depth);
          break;
        case "let": {
          const t = declared.get(s.name)!;
          const int = t === "i32" ? intValue(s.value) : undefined;
          if (int !== undefined) {
            out.push(`${pad}(local.set ${id(s.name)} ${int})`);
            break;
          }
          const c = value(s.value);
          out.push(`${pad}(local.set ${id(s.name)} ${t === "f64" ? toF64(c) : c.type === "i32" ? c.code : `(i32.trunc_sat_f64_s ${c.code})`})`);
          break;
        }
        case "store": {
          const v = toF64(value(s.value));
          if (s.place.kind === "local") {
            const old = get(s.place.name);
            const nv = s.op === "=" ? v : s.op === "+=" ? `(f64.add ${old} ${v})` : `(f64.max ${old} ${v})`;
            out.push(`${pad}(local.set ${id(s.place.name)} ${nv})`);
          } else {
            const old = toF64(loadCode(s.place.array, s.place.at));
            const nv = s.op === "=" ? v : s.op === "+=" ? `(f64.add ${old} ${v})` : `(f64.max ${old} ${v})`;
            out.push(`${pad}${storeCode(s.place.array, s.place.at, nv)}`);
          }
          break;
        }
        case "alloc": {
          // its place was fixed at entry ($.a<k>); zeroed here, as a new typed array is
          const k = allocs.findIndex((a) => a.stmt === s);
          shape.set(s.array, s.dims);
          out.push(`${pad}(local.set ${id(s.array)} (local.get $.a${k}))`);
          out.push(`${pad}(memory.fill ${get(s.array)} (i32.const 0) (i32.shl ${lengthCode(s.dims)} (i32.const ${SHIFT[arrayType.get(s.array)!]})))`);
          break;
        }
        case "copy": {
          const from = arrayType.get(s.from)!;
          const to = arrayType.get(s.to)!;
          const n = lengthCode(dimsOf(s.to));
          if (from === to) out.push(`${pad}(memory.copy ${get(s.to)} ${get(s.from)} (i32.shl ${n} (i32.const ${SHIFT[to]})))`);
          else {
            const k = label++;
            const rd = from === "f64" ? `(f64.load (i32.add ${get(s.from)} (i32.shl (local.get $.i) (i32.const 3))))` : `(f64.promote_f32 (f32.load (i32.add ${get(s.from)} (i32.shl (local.get $.i) (i32.const 2)))))`;
            const wr = (x: string) => (to === "f64" ? `(f64.store (i32.add ${get(s.to)} (i32.shl (local.get $.i) (i32.const 3))) ${x})` : `(f32.store (i32.add ${get(s.to)} (i32.shl (local.get $.i) (i32.const 2))) (f32.demote_f64 ${x}))`);
            out.push(`${pad}(local.set $.i (i32.const 0))`);
            out.push(`${pad}(block $b${k} (loop $l${k} (br_if $b${k} (i32.ge_s (local.get $.i) ${n}))`);
            out.push(`${pad}  ${wr(rd)}`);
            out.push(`${pad}  (local.set $.i (i32.add (local.get $.i) (i32.const 1))) (br $l${k})))`);
          }
          break;
        }
        case "if-given":
          // run always: an output the caller did not give lives in scratch memory that is not
          // zeroed, so its `fill` is needed either way (and harmless on a fresh array)
          emit(s.then, depth);
          break;
        case "fill": {
          const t = arrayType.get(s.array)!;
          const n = lengthCode(dimsOf(s.array));
          if (s.value === 0 && !Object.is(s.value, -0)) out.push(`${pad}(memory.fill ${get(s.array)} (i32.const 0) (i32.shl ${n} (i32.const ${SHIFT[t]})))`);
          else {
            const k = label++;
            const v = `(f64.const ${f64Literal(s.value)})`;
            const wr = t === "f64" ? `(f64.store (i32.add ${get(s.array)} (i32.shl (local.get $.i) (i32.const 3))) ${v})` : `(f32.store (i32.add ${get(s.array)} (i32.shl (local.get $.i) (i32.const 2))) (f32.demote_f64 ${v}))`;
            out.push(`${pad}(local.set $.i (i32.const 0))`);
            out.push(`${pad}(block $b${k} (loop $l${k} (br_if $b${k} (i32.ge_s (local.get $.i) ${n}))`);
            out.push(`${pad}  ${wr}`);
            out.push(`${pad}  (local.set $.i (i32.add (local.get $.i) (i32.const 1))) (br $l${k})))`);
          }
          break;
        }
        case "comment":
        case "blank":
          break;
        default:
          assertNever(s, "statement");
      }
    }
  };

  // ---- vector loops (loop/vectorize.ts): f64x2 lanes of the counter's iterations i, i + 1, or f32x4 lanes of i .. i + 3
  const vectors = new Set<string>(); // v128 locals
  const v128 = (name: string): string => {
    vectors.add(name);
    return `$${name}`;
  };
  let temps = 0;
  let reductions = 0;
  let rowCount = 0;
  let invariantCount = 0;
  const emitVector = (loop: Stmt & { kind: "for" }, depth: number): void => {
    // f64x2 (two lanes) computes in float64 as the scalar code does; f32x4 (four lanes, float32
    // modules) computes in float32 and adds its reductions up in float64 (each vector widened
    // into two f64x2 accumulators), as the README promises for float32 modules
    const L = loop.vector;
    if ((L !== 2 && L !== 4) || loop.step % L !== 0) throw new Error("wasm: vector loops have two f64 or four f32 lanes");
    const F = L === 2 ? "f64x2" : "f32x4";
    const pad = "  ".repeat(depth);
    const i = loop.index;
    const varying = new Set<string>();
    const moves = (v: Value) => varies(v, i, varying);
    // positions (vectorize.ts): integer lets one element apart per iteration, as the counter is;
    // each is computed as a scalar, its first lane's value, and indexes like the counter
    const pos = positions(loop.body, i);
    const along = (v: string | undefined) => v !== undefined && (v === i || pos.has(v));
    const isLane = (at: readonly Index[]) => at.some((x) => along(x.var));
    const lane = (at: readonly Index[], j: number): Index[] => at.map((x) => (along(x.var) ? { var: x.var, plus: x.plus + j } : x));
    const laneList = Array.from({ length: L }, (_, j) => j);
    /** Contiguous along i: the counter only in the last index. */
    const contiguous = (array: string, at: readonly Index[]) => arrayType.get(array) !== "i32" && at.length > 0 && along(at[at.length - 1]!.var) && at.slice(0, -1).every((x) => !along(x.var));
    /** A vector of one f64 value in every lane. */
    const splat = (c: string) => (L === 2 ? `(f64x2.splat ${c})` : `(f32x4.splat (f32.demote_f64 ${c}))`);
    /** A vector of f64 values, one per lane. */
    const lanes = (cs: readonly string[]) => cs.slice(1).reduce((acc, c, j) => (L === 2 ? `(f64x2.replace_lane ${j + 1} ${acc} ${c})` : `(f32x4.replace_lane ${j + 1} ${acc} (f32.demote_f64 ${c}))`), splat(cs[0]!));
    /** Lane j of a vector as an f64. */
    const extract = (t: string, j: number) => (L === 2 ? `(f64x2.extract_lane ${j} ${t})` : `(f64.promote_f32 (f32x4.extract_lane ${j} ${t}))`);
    /** The upper two f32 lanes moved down, to be widened by `f64x2.promote_low_f32x4`. */
    const high = (t: string) => `(i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 ${t} ${t})`;
    /** Two f64x2 rounded into one f32x4. */
    const narrow = (lo: string, hi: string) => `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (f32x4.demote_f64x2_zero ${lo}) (f32x4.demote_f64x2_zero ${hi}))`;
    // the start of each row read or written contiguously, computed once before the loop: an
    // access is then that pointer plus the counter, its constant in the instruction's offset
    const inLoop = new Set(loop.body.flatMap((st) => (st.kind === "let" ? [st.name] : [])));
    const rows = new Map<string, string>();
    const rowStarts: string[] = [];
    const contiguousAt = (array: string, at: readonly Index[]): { addr: string; offset: number } => {
      const last = at[at.length - 1]!;
      if (at.slice(0, -1).some((x) => x.var !== undefined && inLoop.has(x.var))) return { addr: address(array, at), offset: 0 };
      const head = at.slice(0, -1);
      const key = `${array}[${head.map((x) => `${x.var ?? ""}+${x.plus}`).join(",")}]`;
      let row = rows.get(key);
      if (row === undefined) {
        row = `$.p${rowCount++}`;
        declared.set(row.slice(1), "i32");
        rows.set(key, row);
        const ds = dimsOf(array);
        let off = head.length ? indexCode(head[0]!) : "";
        for (let k = 1; k < head.length; k++) off = `(i32.add (i32.mul ${off} ${dimCode(ds[k]!)}) ${indexCode(head[k]!)})`;
        const start = head.length ? `(i32.add ${get(array)} (i32.shl (i32.mul ${off} ${dimCode(ds[ds.length - 1]!)}) (i32.const ${SHIFT[arrayType.get(array)!]})))` : get(array);
        rowStarts.push(`(local.set ${row} ${start})`);
      }
      const shift = SHIFT[arrayType.get(array)!];
      const byPlus = last.plus * BYTES[arrayType.get(array)!];
      const at0 = get(last.var!);
      const addr = `(i32.add (local.get ${row}) (i32.shl ${byPlus >= 0 ? at0 : `(i32.add ${at0} (i32.const ${last.plus}))`} (i32.const ${shift})))`;
      return { addr, offset: Math.max(0, byPlus) };
    };
    const off = (n: number) => (n > 0 ? ` offset=${n}` : "");
    // a local set before the loop, or a number, in every lane: the vector made once, before the loop
    const invariants = new Map<string, string>();
    const invariant = (v: Value & { kind: "local" | "num" }): string => {
      const key = v.kind === "local" ? v.name : `#${f64Literal(v.value)}`;
      let name = invariants.get(key);
      if (name === undefined) {
        name = v128(`.k${invariantCount++}`);
        invariants.set(key, name);
        rowStarts.push(`(local.set ${name} ${splat(toF64(value(v)))})`);
      }
      return `(local.get ${name})`;
    };
    const loadVec = (array: string, at: readonly Index[]): string => {
      const t = arrayType.get(array)!;
      if (!contiguous(array, at)) {
        // strided (an interleaved array's slot, a column): each lane loaded straight into its place
        if (t === "f64" && L === 2) return `(v128.load64_lane 1 ${address(array, lane(at, 1))} (v128.load64_zero ${address(array, lane(at, 0))}))`;
        if (t === "f32") {
          const four = laneList.slice(1).reduce((acc, j) => `(v128.load32_lane ${j} ${address(array, lane(at, j))} ${acc})`, `(v128.load32_zero ${address(array, lane(at, 0))})`);
          return L === 2 ? `(f64x2.promote_low_f32x4 ${four})` : four;
        }
        return lanes(laneList.map((j) => toF64(loadCode(array, lane(at, j)))));
      }
      const c = contiguousAt(array, at);
      if (t === "f64") return L === 2 ? `(v128.load${off(c.offset)} ${c.addr})` : narrow(`(v128.load${off(c.offset)} ${c.addr})`, `(v128.load${off(c.offset + 16)} ${c.addr})`);
      return L === 2 ? `(f64x2.promote_low_f32x4 (v128.load64_zero${off(c.offset)} ${c.addr}))` : `(v128.load${off(c.offset)} ${c.addr})`;
    };
    /** Stores the vector `v` at the lanes of `array[at]`; with `op`, combined with what the cells hold (a float64 array in float64). */
    const storeVec = (array: string, at: readonly Index[], v: string, op: "=" | "+=" | "max=" = "="): string => {
      const t = arrayType.get(array)!;
      const fop = op === "+=" ? "add" : "max";
      if (!contiguous(array, at)) {
        const s = v128(".s");
        const one = (j: number) => {
          const x = extract(`(local.get ${s})`, j);
          return storeCode(array, lane(at, j), op === "=" ? x : `(f64.${fop} ${toF64(loadCode(array, lane(at, j)))} ${x})`);
        };
        return `(local.set ${s} ${v}) ${laneList.map(one).join(" ")}`;
      }
      const c = contiguousAt(array, at);
      const here = (o: number) => `(v128.load${off(o)} ${c.addr})`;
      if (t === "f64" && L === 4) {
        // float32 lanes into a float64 array: each half widened, combined and stored in float64
        const s = v128(".s");
        const half = (x: string, o: number) => `(v128.store${off(o)} ${c.addr} ${op === "=" ? x : `(f64x2.${fop} ${here(o)} ${x})`})`;
        return `(local.set ${s} ${v}) ${half(`(f64x2.promote_low_f32x4 (local.get ${s}))`, c.offset)} ${half(`(f64x2.promote_low_f32x4 ${high(`(local.get ${s})`)})`, c.offset + 16)}`;
      }
      const nv = op === "=" ? v : `(${F}.${fop} ${loadVec(array, at)} ${v})`;
      if (t === "f64" || L === 4) return `(v128.store${off(c.offset)} ${c.addr} ${nv})`;
      return `(v128.store64_lane${off(c.offset)} 0 ${c.addr} (f32x4.demote_f64x2_zero ${nv}))`;
    };
    const isInt = (v: Value) => (v.kind === "local" && localType(v.name) === "i32") || (v.kind === "load" && arrayType.get(v.array) === "i32");
    const intVec = (v: Value): string => {
      if (!moves(v)) return `(i32x4.splat ${value(v).code})`;
      if (v.kind === "local" && v.name === i) return `(i32x4.add (i32x4.splat ${get(i)}) (v128.const i32x4 0 1 2 3))`;
      if (v.kind === "load") return laneList.slice(1).reduce((acc, j) => `(i32x4.replace_lane ${j} ${acc} ${loadCode(v.array, lane(v.at, j)).code})`, `(i32x4.splat ${loadCode(v.array, lane(v.at, 0)).code})`);
      throw new Error("wasm: an integer that moves with a vector loop");
    };
    const VOP = { "+": "add", "-": "sub", "*": "mul", "/": "div" } as const;
    const FCMP: Readonly<Record<string, string>> = { "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne" };
    const ICMP: Readonly<Record<string, string>> = { "<": "i32x4.lt_s", "<=": "i32x4.le_s", ">": "i32x4.gt_s", ">=": "i32x4.ge_s", "==": "i32x4.eq", "!=": "i32x4.ne" };
    const vec = (v: Value): string => {
      if (!moves(v)) return (v.kind === "local" && !inLoop.has(v.name)) || v.kind === "num" ? invariant(v) : splat(toF64(value(v)));
      switch (v.kind) {
        case "num":
          return splat(toF64(value(v)));
        case "local":
          if (v.name === i) return L === 2 ? `(f64x2.convert_low_i32x4_s (i32x4.add (i32x4.splat ${get(i)}) (v128.const i32x4 0 1 0 0)))` : `(f32x4.convert_i32x4_s (i32x4.add (i32x4.splat ${get(i)}) (v128.const i32x4 0 1 2 3)))`;
          return `(local.get ${v128(`${v.name}.v`)})`;
        case "load":
          return loadVec(v.array, v.at);
        case "neg":
          return `(${F}.neg ${vec(v.arg)})`;
        case "bin":
          return `(${F}.${VOP[v.op]} ${vec(v.a)} ${vec(v.b)})`;
        case "call": {
          if (v.fn === "abs") return `(${F}.abs ${vec(v.args[0]!)})`;
          if (v.fn === "sqrt") return `(${F}.sqrt ${vec(v.args[0]!)})`;
          if (v.fn === "max") return v.args.map(vec).reduce((a, b) => `(${F}.max ${a} ${b})`);
          // a math function of the module, lane by lane (in float64)
          const ts = v.args.map(() => v128(`.t${temps++}`));
          const sets = v.args.map((a, k) => `(local.set ${ts[k]} ${vec(a)})`).join(" ");
          const at = (j: number) => callCode(v.fn, ts.map((t) => extract(`(local.get ${t})`, j)));
          return `(block (result v128) ${sets} ${lanes(laneList.map(at))})`;
        }
        case "select": {
          const ints = isInt(v.left) && isInt(v.right);
          const mask = ints ? (L === 2 ? `(i64x2.extend_low_i32x4_s (${ICMP[v.op]} ${intVec(v.left)} ${intVec(v.right)}))` : `(${ICMP[v.op]} ${intVec(v.left)} ${intVec(v.right)})`) : `(${F}.${FCMP[v.op]} ${vec(v.left)} ${vec(v.right)})`;
          return `(v128.bitselect ${vec(v.then)} ${vec(v.else)} ${mask})`;
        }
        default:
          return assertNever(v);
      }
    };
    // reductions: a place added into (or maxed) across iterations gets a vector accumulator
    const keyOf = (p: Stmt & { kind: "store" }) => (p.place.kind === "local" ? p.place.name : `${p.place.array}[${p.place.at.map((x) => `${x.var ?? ""}+${x.plus}`).join(",")}]`);
    // a trip of `step` iterations runs the body once per vector: copy c at i + L*c, its lets
    // renamed (`t.1`: a dot no kernel name has), its own accumulators (independent add chains)
    const copies = Array.from({ length: loop.step / L }, (_, c) => {
      if (c === 0) return loop.body;
      const renames = new Map(loop.body.flatMap((st) => (st.kind === "let" ? [[st.name, `${st.name}.${c}`] as const] : [])));
      for (const [from, to] of renames) {
        declared.set(to, declared.get(from)!);
        inLoop.add(to);
        if (pos.has(from)) pos.add(to);
      }
      return mapStmts(loop.body, {
        index: (x) => (x.var === i ? { var: x.var, plus: x.plus + L * c } : x.var !== undefined && renames.has(x.var) ? { var: renames.get(x.var)!, plus: x.plus } : x),
        value: (v) => (v.kind === "local" && v.name === i ? bin("+", v, num(L * c)) : v.kind === "local" && renames.has(v.name) ? local(renames.get(v.name)!) : v),
      }).map((st) => (st.kind === "let" ? { ...st, name: renames.get(st.name)! } : st));
    });
    // float64 accumulators: one f64x2 per copy, two (low and high lanes) per copy of f32x4. With
    // f32x4 lanes, each copy adds into a float32 vector first, for PARTIAL trips at most (a
    // block), and the block's sums are then widened and added into the float64 ones: a sum's
    // error stays within PARTIAL float32 roundings of its terms, however long the loop
    const perCopy = L / 2;
    const partial = L === 4;
    const reduce = new Map<string, { acc: string[]; part: string[]; op: "+=" | "max="; stmt: Stmt & { kind: "store" } }>();
    for (const st of loop.body)
      if (st.kind === "store" && st.op !== "=" && (st.place.kind === "local" || !isLane(st.place.at)) && !reduce.has(keyOf(st)))
        reduce.set(keyOf(st), { acc: Array.from({ length: copies.length * perCopy }, () => v128(`.r${reductions++}`)), part: partial ? copies.map(() => v128(`.r${reductions++}`)) : [], op: st.op, stmt: st });
    const start = (r: { op: "+=" | "max=" }, shape: "f64x2" | "f32x4") => `(${shape}.splat (${shape === "f64x2" ? "f64" : "f32"}.const ${r.op === "+=" ? "0" : "-inf"}))`;
    for (const r of reduce.values()) for (const acc of r.acc) out.push(`${pad}(local.set ${acc} ${start(r, "f64x2")})`);
    for (const r of reduce.values()) for (const acc of r.part) out.push(`${pad}(local.set ${acc} ${start(r, "f32x4")})`);
    const blocked = partial && reduce.size > 0;
    const k = label++;
    const head = out.length;
    const end = `.e${k}`;
    if (blocked) declared.set(end, "i32");
    out.push(`${pad}(block $b${k} (loop $l${k}`);
    out.push(`${pad}  (br_if $b${k} (i32.gt_s (i32.add ${get(i)} (i32.const ${loop.step})) ${get(loop.extent)}))`);
    if (blocked) {
      // a block: trips while the next one ends within PARTIAL trips of the block's start and within the extent
      const far = `(i32.add ${get(i)} (i32.const ${PARTIAL * loop.step}))`;
      out.push(`${pad}  (local.set ${id(end)} (select ${far} ${get(loop.extent)} (i32.lt_s ${far} ${get(loop.extent)})))`);
      out.push(`${pad}  (loop $t${k}`);
    }
    for (const [c, body] of copies.entries()) for (const st of body) {
      const inner = `${pad}  `;
      if (st.kind === "let") {
        if (st.type === "i32" && moves(st.value)) {
          // a position: its first lane's value, as a scalar
          emit([st], depth + 1);
          varying.add(st.name);
        } else if (moves(st.value)) {
          out.push(`${inner}(local.set ${v128(`${st.name}.v`)} ${vec(st.value)})`);
          varying.add(st.name);
        } else emit([st], depth + 1);
      } else if (st.kind === "store") {
        const r = reduce.get(keyOf(st));
        const fop = r?.op === "+=" ? "add" : "max";
        if (r && L === 2) out.push(`${inner}(local.set ${r.acc[c]} (f64x2.${fop} (local.get ${r.acc[c]}) ${vec(st.value)}))`);
        else if (r) out.push(`${inner}(local.set ${r.part[c]} (f32x4.${fop} (local.get ${r.part[c]}) ${vec(st.value)}))`);
        else if (st.place.kind === "cell" && isLane(st.place.at)) out.push(`${inner}${storeVec(st.place.array, st.place.at, vec(st.value), st.op)}`);
        else emit([st], depth + 1);
      } else emit([st], depth + 1);
    }
    out.push(`${pad}  (local.set ${id(i)} (i32.add ${get(i)} (i32.const ${loop.step})))`);
    if (blocked) {
      out.push(`${pad}  (br_if $t${k} (i32.le_s (i32.add ${get(i)} (i32.const ${loop.step})) ${get(end)})))`);
      // the block's float32 sums widened into the float64 accumulators, and started again
      for (const r of reduce.values()) {
        const fop = r.op === "+=" ? "f64x2.add" : "f64x2.max";
        r.part.forEach((q, c) => {
          const [lo, hi] = [r.acc[2 * c]!, r.acc[2 * c + 1]!];
          out.push(`${pad}  (local.set ${lo} (${fop} (local.get ${lo}) (f64x2.promote_low_f32x4 (local.get ${q}))))`);
          out.push(`${pad}  (local.set ${hi} (${fop} (local.get ${hi}) (f64x2.promote_low_f32x4 ${high(`(local.get ${q})`)})))`);
          out.push(`${pad}  (local.set ${q} ${start(r, "f32x4")})`);
        });
      }
    }
    out.push(`${pad}  (br $l${k})))`);
    out.splice(head, 0, ...rowStarts.map((r) => `${pad}${r}`));
    // the lanes of each accumulator added up into its place
    for (const r of reduce.values()) {
      const op = r.op === "+=" ? "f64.add" : "f64.max";
      const all = r.acc.map((a) => `(local.get ${a})`).reduce((a, b) => `(${r.op === "+=" ? "f64x2.add" : "f64x2.max"} ${a} ${b})`);
      const t = v128(".s");
      out.push(`${pad}(local.set ${t} ${all})`);
      const across = `(${op} (f64x2.extract_lane 0 (local.get ${t})) (f64x2.extract_lane 1 (local.get ${t})))`;
      const p = r.stmt.place;
      if (p.kind === "local") out.push(`${pad}(local.set ${id(p.name)} (${op} ${get(p.name)} ${across}))`);
      else out.push(`${pad}${storeCode(p.array, p.at, `(${op} ${toF64(loadCode(p.array, p.at))} ${across})`)}`);
    }
  };

  // the allocations' places: 16-byte aligned, one after another from $.base
  const entry: string[] = [];
  entry.push(`  (local.set $.top (local.get $.base))`);
  allocs.forEach((a, k) => {
    entry.push(`  (local.set $.a${k} (local.get $.top))`);
    entry.push(`  (local.set $.top (i32.and (i32.add (i32.add (local.get $.top) (i32.shl ${lengthCode(a.dims)} (i32.const ${SHIFT[a.type]}))) (i32.const 15)) (i32.const -16)))`);
  });
  emit(body, 1);

  const params = [`(param $.base i32)`, ...given.map((a) => `(param ${id(a)} i32)`), ...scalars.map((s) => `(param ${id(s.name)} ${s.type})`)];
  const locals = [
    `(local $.top i32) (local $.i i32)`,
    ...allocs.map((_, k) => `(local $.a${k} i32)`),
    ...[...declared].filter(([n]) => !given.includes(n)).map(([n, t]) => `(local ${id(n)} ${t})`),
    ...[...vectors].map((n) => `(local $${n} v128)`),
  ];
  const text = [`(func (export "${exportName}") ${params.join(" ")}`, `  ${locals.join(" ")}`, ...entry, ...out, ")"].join("\n");
  const pad16 = (e: string) => `pad(${e})`;
  const scratchBytes = allocs.length ? allocs.map((a) => pad16(`${a.dims.length ? a.dims.join(" * ") : "1"} * ${BYTES[a.type]}`)).join(" + ") : "0";
  return { text, arrays: given.map((name) => ({ name, type: arrayType.get(name)!, written: writtenArrays.has(name) })), scalars, scratchBytes, calls };
}

/** The module's WebAssembly text: its memory, the kernel functions, and the math functions they call. */
export function wasmModuleText(functions: readonly WasmFunction[]): string {
  const calls = new Set(functions.flatMap((f) => [...f.calls]));
  return ["(module", `(memory (export "memory") 1)`, ...mathFunctions([...calls].sort()), ...functions.map((f) => f.text), ")"].join("\n");
}

let wabt: Promise<{ parseWat(name: string, text: string, features?: Record<string, boolean>): { validate(): void; toBinary(o: object): { buffer: Uint8Array }; destroy(): void } }> | undefined;

/** The binary of a module's WebAssembly text, through wabt (loaded on first use). */
export async function assemble(text: string): Promise<Uint8Array> {
  wabt ??= import("wabt").then((m) => (m.default as unknown as () => Promise<never>)());
  const w = await wabt;
  const mod = w.parseWat("kernels.wat", text, { simd: true, bulk_memory: true, sat_float_to_int: true });
  try {
    mod.validate();
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}
