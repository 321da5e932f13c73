/**
 * The WebAssembly module's TypeScript side (`--target wasm`): `module.ts` writes the same module
 * as for TypeScript kernels (guards, `into`, the cache) and hands each kernel body to this backend,
 * which turns it into a wasm function (`wasm.ts`) and a call of it through `runKernel`. After the
 * helpers come the embedded binary (base64), its synchronous instantiation and the memory API:
 *
 * - `alloc(length)` returns a float array (the module's float type) that lives in the module's
 *   memory, `allocInts(length)` an `Int32Array`; `freeAll()` gives all of it back (every view made
 *   before then must no longer be used); `wasmMemory()` is the memory.
 * - A kernel reads and writes an array that lives in the memory in place. Any other array is
 *   copied into scratch memory above the allocated arrays before the call (what it reads) or out
 *   of it after the call (what it writes).
 * - The memory grows when `alloc` or a call's scratch needs more. Growing detaches every view of
 *  the old memory, as for any `WebAssembly.Memory`: the views `alloc` returned then have length
 *   0 and must be made again (`new Float32Array(wasmMemory().buffer, byteOffset, length)`, with the
 *   offset read before). The data stays where it was.
 */
import type { Stmt } from "../loop/ir.js";
import { assemble, wasmFunction, wasmModuleText, type WasmFunction } from "./wasm.js";
import { vectorize } from "../loop/vectorize.js";
import { block } from "../loop/block.js";
import { Namer, namesIn } from "../loop/ir.js";

/**
 * Lanes of a vector: float64 kernels compute in f64x2; float32 kernels in f32x4, loading and
 * storing four floats at a time, with their reductions added up in f64x2 (emit/wasm.ts).
 */
const LANES: Readonly<Record<"f64" | "f32", number>> = { f64: 2, f32: 4 };

/** Iterations of a matmul-shaped pass's outer loop run together (`loop/block.ts`): 2 measured faster than 1 and 4 for linear and attention, float32 and float64. */
const BLOCK = 2;

/** How `module.ts` prints kernel bodies for a target other than TypeScript statements. */
export interface KernelBackend {
  /** The statements of one kernel body: here a call of the wasm function made of it. */
  readonly statements: (body: readonly Stmt[], dims: ReadonlyMap<string, readonly string[]>, ints: ReadonlySet<string>) => string[];
  /** Lines for the module's header comment. */
  readonly header: readonly string[];
  /** Module text after the helpers (the binary and the memory API), once every body is printed. */
  readonly tail: () => Promise<string>;
}

/** The wasm backend of one module (a new one per module: it collects that module's kernels). */
export function wasmBackend(dtype: "float64" | "float32" = "float64", log?: (line: string) => void): KernelBackend {
  const floats = dtype === "float32" ? "f32" : "f64";
  const A = dtype === "float32" ? "Float32Array" : "Float64Array";
  const functions: WasmFunction[] = [];
  return {
    header: [
      "The kernels run as WebAssembly (128-bit SIMD where a loop allows), embedded below; the module imports nothing.",
      "Arrays from `alloc` live in the module's memory and are used in place; other arrays are copied in and out.",
      ...(floats === "f32" ? ["Vector loops compute in float32, four lanes, and add a reduction's terms up sixteen per lane in float32, then in float64."] : []),
    ],
    statements: (body, dims, ints) => {
      const name = `k${functions.length}`;
      const f = wasmFunction(name, vectorize(block(body, new Namer(namesIn(body)), BLOCK), LANES[floats]), dims, floats, ints);
      functions.push(f);
      return [
        `runKernel(${JSON.stringify(name)}, [${f.arrays.map((a) => a.name).join(", ")}], [${f.arrays.map((a) => String(a.written)).join(", ")}], ${f.scratchBytes}, [${f.scalars.map((s) => s.name).join(", ")}]);`,
      ];
    },
    tail: async () => {
      const text = wasmModuleText(functions);
      log?.(`== emit/wasm: ${functions.length} functions`);
      log?.(text);
      const bytes = await assemble(text);
      return runtime(Buffer.from(bytes).toString("base64"), A);
    },
  };
}

/** The module text after the helpers: the binary, its instance, `runKernel` and the memory API. */
function runtime(base64: string, A: string): string {
  return `
/** The kernels as a WebAssembly binary, base64 (${Math.ceil((base64.length * 3) / 4)} bytes). */
const WASM_BYTES = ${JSON.stringify(base64)};

/** The parts of the WebAssembly API the module uses (typed here, so no DOM or Node types are needed). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
}

/** The first byte \`alloc\` hands out (0 stays unused). */
const HEAP_START = 16;
let wasmState: { readonly memory: WasmMemory; readonly kernels: Record<string, unknown>; top: number } | undefined;

/** The module's instance, made on first use, synchronously. */
function wasmInstance(): { readonly memory: WasmMemory; readonly kernels: Record<string, unknown>; top: number } {
  if (wasmState === undefined) {
    const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const instance = new api.Instance(new api.Module(fromBase64(WASM_BYTES)), {});
    wasmState = { memory: instance.exports.memory as WasmMemory, kernels: instance.exports, top: HEAP_START };
  }
  return wasmState;
}

function fromBase64(text: string): Uint8Array {
  const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const value = new Uint8Array(128);
  for (let k = 0; k < 64; k++) value[digits.charCodeAt(k)] = k;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const bytes = new Uint8Array((text.length / 4) * 3 - padding);
  let j = 0;
  for (let k = 0; k < text.length; k += 4) {
    const n = (value[text.charCodeAt(k)]! << 18) | (value[text.charCodeAt(k + 1)]! << 12) | (value[text.charCodeAt(k + 2)]! << 6) | value[text.charCodeAt(k + 3)]!;
    if (j < bytes.length) bytes[j++] = n >> 16;
    if (j < bytes.length) bytes[j++] = (n >> 8) & 255;
    if (j < bytes.length) bytes[j++] = n & 255;
  }
  return bytes;
}

/** \`bytes\` rounded up to a multiple of 16. */
function pad(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}

/** Grows the memory to at least \`end\` bytes (every view of it is then detached). */
function ensureMemory(memory: WasmMemory, end: number): void {
  const have = memory.buffer.byteLength;
  if (end > have) memory.grow(Math.ceil((end - have) / 65536));
}

/**
 * Runs the wasm function \`kernel\` on \`arrays\` (those \`written\` are its outputs) with \`scratch\`
 * bytes of its own and the sizes and constants \`scalars\`. An array in the module's memory is used
 * where it is; any other is copied into scratch memory first (or, when written, out of it after).
 */
function runKernel(kernel: string, arrays: readonly ArrayBufferView[], written: readonly boolean[], scratch: number, scalars: readonly number[]): void {
  const w = wasmInstance();
  const before = w.memory.buffer;
  const at: number[] = [];
  let end = w.top;
  for (const array of arrays) {
    const inside = bufferOf.call(array) === before;
    at.push(inside ? offsetOf.call(array) : -1);
    if (inside) end = Math.max(end, offsetOf.call(array) + bytesOf.call(array));
  }
  end = pad(end);
  for (let k = 0; k < arrays.length; k++) {
    if (at[k]! >= 0) continue;
    at[k] = end;
    end += pad(bytesOf.call(arrays[k]!));
  }
  const base = end;
  ensureMemory(w.memory, end + scratch);
  const heap = new Uint8Array(w.memory.buffer);
  for (let k = 0; k < arrays.length; k++) {
    const array = arrays[k]!;
    if (bufferOf.call(array) === before) continue;
    // what the kernel reads is copied in; what it writes starts as zeros, as a new typed array does
    if (!written[k]) heap.set(new Uint8Array(bufferOf.call(array), offsetOf.call(array), bytesOf.call(array)), at[k]);
    else heap.fill(0, at[k], at[k]! + bytesOf.call(array));
  }
  (w.kernels[kernel] as (...args: number[]) => void)(base, ...at, ...scalars);
  for (let k = 0; k < arrays.length; k++) {
    const array = arrays[k]!;
    if (bufferOf.call(array) !== before && bufferOf.call(array) !== w.memory.buffer && written[k]) {
      new Uint8Array(bufferOf.call(array), offsetOf.call(array), bytesOf.call(array)).set(new Uint8Array(w.memory.buffer, at[k], bytesOf.call(array)));
    }
  }
}

/**
 * A ${A} of \`length\` elements in the module's memory: kernels read and write it in place, with no
 * copy. It stays valid until the memory grows (a later \`alloc\`, or a call that needs more scratch
 * memory than there is), which detaches it (length 0); the data stays at its byte offset.
 */
export function alloc(length: number): ${A} {
  const w = wasmInstance();
  const n = checkSize(length, "alloc(length)");
  const at = w.top;
  ensureMemory(w.memory, at + pad(n * ${A}.BYTES_PER_ELEMENT));
  w.top = at + pad(n * ${A}.BYTES_PER_ELEMENT);
  return new ${A}(w.memory.buffer, at, n);
}

/** An Int32Array of \`length\` elements in the module's memory (integer ids), as \`alloc\`. */
export function allocInts(length: number): Int32Array {
  const w = wasmInstance();
  const n = checkSize(length, "allocInts(length)");
  const at = w.top;
  ensureMemory(w.memory, at + pad(n * 4));
  w.top = at + pad(n * 4);
  return new Int32Array(w.memory.buffer, at, n);
}

/**
 * Grows the memory now, so that \`bytes\` more bytes can be allocated, or used as a call's scratch
 * memory, without growing it later: call it before \`alloc\` so that the views stay valid.
 */
export function reserveMemory(bytes: number): void {
  const w = wasmInstance();
  ensureMemory(w.memory, pad(w.top) + checkSize(bytes, "reserveMemory(bytes)"));
}

/** Gives back every array \`alloc\` and \`allocInts\` made; their memory is reused, so none of them may be used again. */
export function freeAll(): void {
  wasmInstance().top = HEAP_START;
}

/** The module's WebAssembly memory (its \`buffer\` changes when it grows). */
export function wasmMemory(): WasmMemory {
  return wasmInstance().memory;
}
`;
}
