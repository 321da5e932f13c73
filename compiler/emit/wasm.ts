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
 * load and rounded on store), loop counters and ids are i32; `vectorize.ts` turns innermost
 * contiguous loops into f64x2/f32x4 code before this printer sees them.
 *
 * Memory: a kernel's own arrays (`alloc`) sit at fixed offsets from the `$.base` it is given;
 * `scratchBytes` is the JavaScript expression of how many bytes that takes, so the caller makes
 * room before the call (the kernel never grows memory).
 */
import { assertNever, type Elem, type Index, type MathFn, type Stmt, type Value } from "../loop/ir.js";
import { isModuleFunction, mathFunctions } from "./wasm-math.js";

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
          arrayType.set(s.array, s.type);
          allocs.push({ name: s.array, type: s.type, dims: s.dims, stmt: s });
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
  const lengthCode = (ds: readonly string[]): string => (ds.length ? ds.map(dimCode).reduce((a, b) => `(i32.mul ${a} ${b})`) : "(i32.const 1)");

  let label = 0;
  const out: string[] = [];
  const emit = (ss: readonly Stmt[], depth: number): void => {
    const pad = "  ".repeat(depth);
    for (const s of ss) {
      switch (s.kind) {
        case "for": {
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
          const c = value(s.value);
          const t = declared.get(s.name)!;
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
          out.push(`${pad}(memory.fill ${get(s.array)} (i32.const 0) (i32.shl ${lengthCode(s.dims)} (i32.const ${SHIFT[s.type]})))`);
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
