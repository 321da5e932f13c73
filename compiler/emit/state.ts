/**
 * The exports of a spec with state, updates or inference (CONTRACT §4.5), as statements that
 * `emitModule` puts into the module beside the training kernels:
 *
 * - `initState(sizes)`: every state buffer at its initial value;
 * - `updateState(state, cache, constants?)`: the updates, from the cache of a training `forward`.
 *   Every new value is computed first; one that is not finite is a `RangeError` naming the buffer,
 *   the element and why (a division by a size expression that is 0, like `N - 1` at `N = 1`), and
 *   the state is left as it was. Only then are the buffers overwritten, in place;
 * - `forwardInference(inputs, state, sizes, constants?, into?)` and `backwardInferenceNaive` /
 *   `backwardInferenceFused(dout, cache, into?)`: the kernels of the inference graph, written by the
 *   same functions as the training kernels from its own derivation (parse/state.ts builds the graph,
 *   the driver derives and schedules it like any spec).
 */
import { StructureKind, type StatementStructures } from "ts-morph";
import { collect, print, type Expr } from "../ir/expr.js";
import { shapeOf, type Program } from "../ir/program.js";
import type { Backward, Fused } from "../ir/backward.js";
import type { Schedule } from "../schedule/passes.js";
import type { StagedChoice } from "../schedule/staged.js";
import type { Training } from "../parse/state.js";
import { lowerForward } from "../schedule/lower.js";
import { Namer, tsStatements } from "./code.js";
import { cacheCheck, cacheInterfaces, constantsIn, extentLines, declText, forwardBody, fusedBody, lengthCode, namesFor, naiveBody, pascal, readsOf, usesErf } from "./module.js";
import { commentText, stringLiteral } from "../escape.js";
import type { KernelBackend } from "./wasm-module.js";

export interface TrainingInput {
  /** The spec's own (training) program. */
  readonly program: Program;
  readonly training: Training;
  /** The inference graph's derivation and schedule. */
  readonly derived: { readonly program: Program; readonly backward: Backward; readonly fused: Fused };
  readonly schedule: Schedule;
  readonly staged?: StagedChoice;
  readonly dtype?: "float64" | "float32";
  readonly log?: (line: string) => void;
  /** Prints the inference kernels' bodies (`--target wasm`: the module's own backend, wasm-module.ts); updateState stays TypeScript. */
  readonly backend?: KernelBackend;
}

export function trainingStatements(inp: TrainingInput): { statements: (string | StatementStructures)[]; erf: boolean } {
  const { program: p, training: t, derived: d } = inp;
  const T = pascal(p.name);
  const TI = `${T}Inference`;
  const A = inp.dtype === "float32" ? "Float32Array" : "Float64Array";
  const q = d.program;
  const statements: (string | StatementStructures)[] = [];
  const stateKeys = new Set(t.buffers.map((b) => b.name));

  statements.push({
    kind: StructureKind.Interface,
    name: `${T}State`,
    isExported: true,
    docs: ["The state buffers (CONTRACT §4.5): `initState` makes them, `updateState` changes them in place after a training `forward`, `forwardInference` reads them."],
    properties: t.buffers.map((b) => ({ name: b.name, type: A, docs: [`${declText(b)}, initially ${b.init}`] })),
  });
  statements.push(
    ...cacheInterfaces(TI, T, q, A, {
      cache: "Everything the inference backward kernels read: sizes, constants, and in `values` the inputs, the state buffers and every step of the inference graph.",
      values: "The arrays an inference cache holds, keyed by the spec's names: the inputs and state buffers (by reference) and every step of the inference graph.",
    }),
  );
  statements.push({
    kind: StructureKind.Interface,
    name: `${TI}Buffers`,
    isExported: true,
    docs: ["Preallocated arrays for `forwardInference` to write each step into, instead of allocating them."],
    properties: q.steps.map((x) => ({ name: x.name, type: A, hasQuestionToken: true, docs: [declText(x)] })),
  });

  statements.push({
    kind: StructureKind.Function,
    name: "initState",
    isExported: true,
    docs: [`The state buffers at their initial values: ${t.buffers.map((b) => `\`${commentText(b.text)}\``).join(", ") || "none"}.`],
    parameters: [{ name: "sizes", type: `${T}Sizes` }],
    returnType: `${T}State`,
    statements: initBody(p, t, A),
  });
  statements.push({
    kind: StructureKind.Function,
    name: "updateState",
    isExported: true,
    docs: [
      [
        "Applies the updates to `state` in place, from the cache of a training `forward`, and returns `state`:",
        "",
        ...t.updateTexts.map((u) => `  ${commentText(u)}`),
        "",
        "A constant not given is the one the cache was made with. Every new value is computed before any",
        "buffer is written; if one is not finite, a RangeError says which and why, and the state is unchanged.",
      ].join("\n"),
    ],
    parameters: [
      { name: "state", type: `${T}State` },
      { name: "cache", type: `${T}Cache` },
      { name: "constants", type: `${T}Constants`, hasQuestionToken: true },
    ],
    returnType: `${T}State`,
    statements: updateBody(p, t, A),
  });
  statements.push({
    kind: StructureKind.Function,
    name: "forwardInference",
    isExported: true,
    docs: [
      [
        `Runs the inference graph and returns ${q.outputs.map((o) => `\`${o}\``).join(", ")} with the cache its backward kernels need. Replaced steps:`,
        "",
        ...q.steps.filter((s) => t.replaced.includes(s.name)).map((s) => `  ${commentText(s.text)}`),
      ].join("\n"),
    ],
    parameters: [
      { name: "inputs", type: `${T}Inputs` },
      { name: "state", type: `${T}State` },
      { name: "sizes", type: `${T}Sizes` },
      { name: "constants", type: `${T}Constants`, hasQuestionToken: true },
      { name: "into", type: `${TI}Buffers`, hasQuestionToken: true },
    ],
    returnType: `{ ${q.outputs.map((o) => `${o}: ${A}; `).join("")}cache: ${TI}Cache }`,
    statements: forwardBody(q, TI, A, (x) => (stateKeys.has(x.name) ? "state" : "inputs"), ["state"], inp.backend?.statements),
  });
  const several = q.outputs.length > 1;
  const params = [
    { name: "dout", type: several ? `${T}Dout` : A },
    { name: "cache", type: `${TI}Cache` },
    { name: "into", type: `Partial<${T}Gradients>`, hasQuestionToken: true },
  ];
  const ownCheck = (lines: string[]) => lines.map((l) => (l === "checkCache(cache);" ? "checkInferenceCache(cache);" : l));
  statements.push({
    kind: StructureKind.Function,
    name: "backwardInferenceNaive",
    isExported: true,
    docs: ["The staged backward pass of the inference graph: one block per step, in reverse order."],
    parameters: params,
    returnType: `${T}Gradients`,
    statements: ownCheck(naiveBody(q, d.backward, TI, A, inp.backend?.statements)),
  });
  statements.push({
    kind: StructureKind.Function,
    name: "backwardInferenceFused",
    isExported: true,
    docs: [
      [
        "The fused backward pass of the inference graph, derived by backpass:",
        "",
        ...q.inputs.flatMap((x, k) => (x.kind !== undefined ? [] : inp.staged?.staged[k] ? [`  d${declText(x)}: staged, as in the naive kernel`] : [`  d${declText(x)} = ${commentText(print(d.fused.gradients[k]!, q.letters))}`])),
        "",
        `${inp.schedule.passes.length} pass${inp.schedule.passes.length === 1 ? "" : "es"}.`,
      ].join("\n"),
    ],
    parameters: params,
    returnType: `${T}Gradients`,
    statements: ownCheck(fusedBody({ program: q, backward: d.backward, fused: d.fused, schedule: inp.schedule, staged: inp.staged, source: q.name, dtype: inp.dtype, log: inp.log, backend: inp.backend }, TI, A)),
  });
  statements.push(cacheCheck(q, TI, p.name, "checkInferenceCache", "forwardInference()"));
  statements.push(UPDATE_CHECK.replaceAll("@AT@", () => stringLiteral(`${p.name}: updateState: `)).replaceAll("@FLOATS@", () => A));
  const erf = usesErf({ program: q, backward: d.backward, schedule: inp.schedule }) || usesErf({ program: t.update, backward: { ...d.backward, blocks: [] }, schedule: { ...inp.schedule, gradients: [] } });
  return { statements, erf };
}

function initBody(p: Program, t: Training, A: string): string[] {
  const namer = new Namer(["sizes"]);
  const syms = new Map<string, string>();
  const lines: string[] = [];
  for (const s of p.sizes)
    if (t.buffers.some((b) => shapeOf(p, b).includes(s))) {
      syms.set(s, namer.fresh(s));
      lines.push(`const ${syms.get(s)} = checkSize(own(sizes, ${stringLiteral(s)}), ${stringLiteral(`sizes.${s}`)});`);
    }
  const arrays = t.buffers.map((b) => {
    const v = namer.fresh(b.name);
    const len = lengthCode(p, b, (s) => syms.get(s)!);
    lines.push(`const ${v} = new ${A}(${len})${b.init === 0 ? "" : `.fill(${b.init})`};`);
    return `${b.name}: ${v}`;
  });
  lines.push(`return { ${arrays.join(", ")} };`);
  return lines;
}

function updateBody(p: Program, t: Training, A: string): string[] {
  const u = t.update;
  const namer = new Namer(["state", "cache", "constants"]);
  const lines = ["checkCache(cache);"];
  const syms = new Map<string, string>();
  for (const s of p.sizes) syms.set(s, namer.fresh(s));
  for (const c of p.constants) syms.set(c.name, namer.fresh(c.name));
  if (p.sizes.length) lines.push(`const { ${p.sizes.map((s) => (syms.get(s) === s ? s : `${s}: ${syms.get(s)}`)).join(", ")} } = cache.sizes;`);
  lines.push(...extentLines(p, syms, namer));
  const rhs = u.steps.map((s) => s.rhs);
  for (const c of new Set(constantsIn(rhs)))
    lines.push(`const ${syms.get(c)} = checkConstant(own(constants, ${stringLiteral(c)}) ?? cache.constants.${c}, ${stringLiteral(`constants.${c}`)});`);
  const arrays = new Map<string, string>();
  // every state buffer is checked; the cache's arrays are read only where an update reads them
  const state = new Map<string, string>();
  for (const b of t.buffers) {
    const v = namer.fresh(b.name);
    state.set(b.name, v);
    arrays.set(b.name, v);
    lines.push(`const ${v} = checkArray(own(state, ${stringLiteral(b.name)}), ${lengthCode(p, b, (s) => syms.get(s)!)}, ${stringLiteral(`state.${b.name}`)});`);
  }
  const read = new Set(readsOf(rhs).flatMap((r) => (r.kind === "ref" ? [r.name] : [])));
  const cached: { code: string; name: string }[] = [];
  for (const x of [...p.inputs, ...p.steps]) {
    if (!read.has(x.name)) continue;
    const v = namer.fresh(x.name);
    arrays.set(x.name, v);
    lines.push(`const ${v} = cache.values.${x.name};`);
    if (x.kind !== "int") cached.push({ code: v, name: `cache.values.${x.name}` });
  }
  const targets = t.targets.map((name) => ({ code: state.get(name)!, name: `state.${name}` }));
  const list = (xs: readonly { code: string; name: string }[]) => `[${xs.map((x) => x.code).join(", ")}], [${xs.map((x) => stringLiteral(x.name)).join(", ")}]`;
  if (targets.length) lines.push(`checkDisjoint(${list(targets)}, ${list(cached)});`);
  const dims = new Map<string, readonly string[]>();
  // the new values, each in an array of its own, before any buffer is written
  const fresh = new Map<string, string>();
  u.steps.forEach((s, k) => {
    const v = namer.fresh(`${t.targets[k]!}_new`);
    fresh.set(s.name, v);
    arrays.set(s.name, v);
    dims.set(v, shapeOf(u, s).map((x) => syms.get(x)!));
    lines.push(`const ${v} = new ${A}(${lengthCode(u, s, (x) => syms.get(x)!)});`);
  });
  const names = namesFor(u, namer, arrays, syms, () => {
    throw new Error("no gradients in updateState");
  }, dims);
  lines.push(...tsStatements(lowerForward(u, names, (name) => fresh.get(name)!), dims).map((l) => l.replace(/^\/\/ step (\d+): /, (_, k: string) => `// update ${k}: `)));
  const sizesText = p.sizes.map((s) => `${stringLiteral(`${s} = `)} + ${syms.get(s)}`).join(` + ", " + `) || `""`;
  u.steps.forEach((s, k) => {
    const target = t.buffers.find((b) => b.name === t.targets[k])!;
    const divisors = sizeDivisors(s.rhs).flatMap((e) => {
      const code = sizeCode(e, syms);
      return code === undefined ? [] : [`[${code}, ${stringLiteral(print(e, p.letters))}]`];
    });
    lines.push(`checkUpdate(${fresh.get(s.name)}, ${stringLiteral(target.name)}, [${shapeOf(p, target).map((x) => syms.get(x)!).join(", ")}], [${divisors.join(", ")}], ${sizesText});`);
  });
  u.steps.forEach((s, k) => lines.push(`${state.get(t.targets[k]!)}.set(${fresh.get(s.name)});`));
  lines.push("return state;");
  return lines;
}

/**
 * The divisors of `e` that are expressions of sizes alone (`N - 1` in `N/(N - 1)`): where one is 0,
 * the update divides by zero. A size by itself is never 0 (the kernels take positive sizes only).
 */
function sizeDivisors(e: Expr): Expr[] {
  const sizeOnly = (x: Expr): boolean => collect(x, (y) => y.kind !== "num" && y.kind !== "add" && y.kind !== "mul" && !(y.kind === "sym" && y.role === "size")).length === 0;
  const out: Expr[] = [];
  for (const x of collect(e, (y) => y.kind === "pow")) {
    if (x.kind !== "pow" || x.exp.kind !== "num" || x.exp.value >= 0) continue;
    if (x.base.kind !== "num" && x.base.kind !== "sym" && sizeOnly(x.base) && !out.includes(x.base)) out.push(x.base);
  }
  return out;
}

/** TypeScript for an expression of sizes (numbers, size symbols, `+` and `*`). */
function sizeCode(e: Expr, syms: ReadonlyMap<string, string>): string | undefined {
  switch (e.kind) {
    case "num":
      return e.value < 0 ? `(${e.value})` : String(e.value);
    case "sym":
      return syms.get(e.name);
    case "add":
    case "mul": {
      const parts = (e.kind === "add" ? e.terms : e.factors).map((x) => sizeCode(x, syms));
      return parts.some((x) => x === undefined) ? undefined : `(${parts.join(e.kind === "add" ? " + " : " * ")})`;
    }
    default:
      return undefined;
  }
}

const UPDATE_CHECK = `
/**
 * Every element of a new state value is finite; the first that is not is a RangeError naming the
 * buffer, the element and why: a divisor of sizes alone that is 0 at these sizes, or else a value
 * the update reads that is not finite, or an overflow.
 */
function checkUpdate(value: @FLOATS@, name: string, dims: readonly number[], divisors: readonly (readonly [number, string])[], sizes: string): void {
  const length = lengthOf.call(value);
  for (let k = 0; k < length; k++) {
    const v = value[k]!;
    if (Number.isFinite(v)) continue;
    const at: number[] = [];
    let r = k;
    for (let j = dims.length - 1; j >= 0; j--) {
      at.unshift(r % dims[j]!);
      r = Math.floor(r / dims[j]!);
    }
    const zero = divisors.find(([d]) => d === 0);
    const why = zero ? "the update divides by " + zero[1] + ", which is 0 at " + sizes : "a value the update reads is not finite, or the result overflows (" + sizes + ")";
    throw new RangeError(@AT@ + "the new " + name + "[" + at.join(",") + "] would be " + v + ": " + why + "; the state is left unchanged");
  }
}
`;


