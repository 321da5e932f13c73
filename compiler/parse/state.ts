/**
 * Training and inference (CONTRACT §4.5): a spec's state buffers with their initial values, the
 * updates applied to them after a training forward, and the steps inference replaces. Checked
 * after the steps, by the same checker: each update and the inference graph are built as programs
 * of their own (`checkSpec` on a spec made from this one), so a name, a shape or an index is
 * checked exactly as in a step, and every problem is reported under the field and entry it is in.
 *
 * - The update program reads the spec's inputs, every step (the cache holds them all) and the
 *   state buffers (their old values); its steps are the new values, one per updated buffer.
 * - The inference program is the spec with each replaced step's right side swapped, the state
 *   buffers added as `nograd` inputs, and the steps no output reads any more dropped. It is
 *   differentiated, simplified and scheduled like any spec.
 */
import { checkSpec, SpecError, type Problem } from "./check.js";
import { parseDecl, parseExpression, SyntaxProblem, type Ast } from "./expression.js";
import { collect, evalFn, FUNCTIONS, type Expr, type Fn } from "../ir/expr.js";
import type { Program, TensorDecl } from "../ir/program.js";
import { MAX_STEPS } from "../limits.js";

/** A state buffer: a float tensor the module keeps between calls, with its initial value. */
export interface StateBuffer extends TensorDecl {
  readonly init: number;
  /** The entry as the spec writes it. */
  readonly text: string;
}

/** The checked training fields of a spec. */
export interface Training {
  readonly buffers: readonly StateBuffer[];
  /**
   * The updates as a program: its inputs are the spec's inputs, the state buffers and every step
   * (from the cache), its steps the new values; `targets[k]` is the buffer step k writes.
   */
  readonly update: Program;
  readonly targets: readonly string[];
  /** The update entries as the spec writes them, in the order of `update.steps`. */
  readonly updateTexts: readonly string[];
  /** The inference graph: the spec with `replaced` steps swapped and the state buffers as nograd inputs. */
  readonly inference: Program;
  /** The names of the steps inference replaces, in the order the spec lists them. */
  readonly replaced: readonly string[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * The training fields of `raw` (already checked by `checkSpec` into `program`), or undefined when
 * it has none. Throws a `SpecError` naming the field and entry of every problem.
 */
export function checkTraining(raw: unknown, program: Program, file?: string): Training | undefined {
  if (!isRecord(raw) || (raw["state"] === undefined && raw["updates"] === undefined && raw["inference"] === undefined)) return undefined;
  const problems: Problem[] = [];
  const fail = (field: string, message: string) => problems.push({ where: { field }, message });
  const list = (field: string): string[] => {
    const v = raw[field];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
      fail(field, `must be a list of strings like ${EXAMPLE[field]}`);
      return [];
    }
    // each entry is checked against the others: a bounded list keeps that cheap
    if (v.length > MAX_STEPS) {
      fail(field, `${v.length} entries; the limit is ${MAX_STEPS}, as for steps`);
      return [];
    }
    return v as string[];
  };
  const stateTexts = list("state");
  const updateTexts = list("updates");
  const inferenceTexts = list("inference");
  if (problems.length) throw new SpecError(problems, file);

  const taken = new Set<string>([...program.inputs.map((t) => t.name), ...program.steps.map((s) => s.name), ...program.constants.map((c) => c.name), ...program.sizes, ...Object.keys(program.letters), ...FUNCTIONS, "sqrt", "sum", "mean", "max", "min", "where", "maximum", "minimum", "cache", "__proto__"]);
  const what = (n: string): string =>
    program.inputs.some((t) => t.name === n) ? "an input" : program.steps.some((s) => s.name === n) ? "a step" : program.constants.some((c) => c.name === n) ? "a constant" : program.sizes.includes(n) ? "a size symbol" : n in program.letters ? "an index letter" : "a reserved name";

  // state: "name[indices] = initial value"
  const buffers: StateBuffer[] = [];
  stateTexts.forEach((text, k) => {
    const field = `state[${k}]`;
    const eq = text.indexOf("=");
    if (eq < 0) return fail(field, `'${text}' must have the form 'name[indices] = initial value', like "running_mean[d] = 0"`);
    const decl = declaration(text.slice(0, eq), field, text);
    if (!decl) return;
    if (taken.has(decl.name)) return fail(field, `'${decl.name}' is already ${what(decl.name)}; a state buffer needs a name of its own`);
    if (buffers.some((b) => b.name === decl.name)) return fail(field, `'${decl.name}' is declared twice`);
    let init: number;
    try {
      init = constantValue(parseExpression(text.slice(eq + 1)));
    } catch (e) {
      if (!(e instanceof SyntaxProblem)) throw e;
      return fail(field, `'${text}': ${e.message}`);
    }
    if (!Number.isFinite(init)) return fail(field, `'${text}': the initial value is ${init}; it must be finite`);
    buffers.push({ ...decl, kind: "nograd", init, text });
  });
  if (problems.length) throw new SpecError(problems, file);
  const bufferDecl = (b: TensorDecl) => `${b.name}${b.indices.length ? `[${b.indices.join(",")}]` : ""}: nograd`;
  const rawInputs = raw["inputs"] as string[];

  // updates: "buffer[indices] = new value", resolved as the steps of a program of their own
  const targets: string[] = [];
  const updateSteps: string[] = [];
  const fresh = (base: string): string => {
    let n = `${base}_new`;
    while (taken.has(n) || buffers.some((b) => b.name === n) || updateSteps.some((s) => s.startsWith(`${n}[`) || s.startsWith(`${n} `))) n += "_";
    return n;
  };
  const entryOf: number[] = [];
  updateTexts.forEach((text, k) => {
    const field = `updates[${k}]`;
    const eq = text.indexOf("=");
    if (eq < 0) return fail(field, `'${text}' must have the form 'buffer[indices] = new value', like "running_mean[d] = 0.9*running_mean[d] + 0.1*mu[d]"`);
    const decl = declaration(text.slice(0, eq), field, text);
    if (!decl) return;
    const b = buffers.find((x) => x.name === decl.name);
    if (!b) return fail(field, `'${decl.name}' is not a state buffer (declared in state: ${buffers.map((x) => x.name).join(", ") || "none"}); an update's left side names one`);
    if (decl.indices.join(",") !== b.indices.join(",")) return fail(field, `'${text}': the left side must be ${b.name}${b.indices.length ? `[${b.indices.join(",")}]` : ""}, with the indices the state declares`);
    if (targets.includes(b.name)) return fail(field, `'${b.name}' is updated twice`);
    targets.push(b.name);
    entryOf.push(k);
    updateSteps.push(`${fresh(b.name)}${b.indices.length ? `[${b.indices.join(",")}]` : ""} = ${text.slice(eq + 1).trim()}`);
  });
  const stepDecl = (s: TensorDecl) => `${s.name}${s.indices.length ? `[${s.indices.join(",")}]` : ""}: nograd`;
  const update: Program | undefined =
    updateSteps.length === 0
      ? { ...program, steps: [], outputs: [], output: "" }
      : checkAs(
          { ...base(raw), inputs: [...rawInputs, ...buffers.map(bufferDecl), ...program.steps.map(stepDecl)], steps: updateSteps, output: updateSteps.map((s) => s.slice(0, s.search(/[[ =]/))) },
          (step) => `updates[${entryOf[step] ?? 0}]`,
          (step) => updateTexts[entryOf[step] ?? 0] ?? "",
          "updates",
        );

  // inference: "step[indices] = replacement"
  const stepTexts = [...(raw["steps"] as string[])];
  const replaced: string[] = [];
  const entryAt = new Map<number, number>();
  inferenceTexts.forEach((text, k) => {
    const field = `inference[${k}]`;
    const eq = text.indexOf("=");
    if (eq < 0) return fail(field, `'${text}' must have the form 'step[indices] = replacement', like "mu[d] = running_mean[d]"`);
    const decl = declaration(text.slice(0, eq), field, text);
    if (!decl) return;
    const s = program.steps.find((x) => x.name === decl.name);
    if (!s) return fail(field, `'${decl.name}' is not a step${buffers.some((b) => b.name === decl.name) ? " (it is a state buffer; updates change state buffers)" : ""}; an inference entry replaces a step of the spec`);
    if (decl.indices.join(",") !== s.indices.join(",")) return fail(field, `'${text}': the left side must be ${s.name}${s.indices.length ? `[${s.indices.join(",")}]` : ""}, with the indices of the step it replaces`);
    if (replaced.includes(s.name)) return fail(field, `step '${s.name}' is replaced twice`);
    replaced.push(s.name);
    entryAt.set(s.position, k);
    stepTexts[s.position] = text;
  });
  const inferenceSpec = { ...base(raw), name: `${program.name}_inference`, inputs: [...rawInputs, ...buffers.map(bufferDecl)], steps: stepTexts, output: raw["output"] };
  const at = (step: number) => (entryAt.has(step) ? `inference[${entryAt.get(step)}]` : "inference");
  const textAt = (step: number) => stepTexts[step] ?? "";
  let inference = problems.some((x) => x.where && "field" in x.where && x.where.field.startsWith("inference")) ? undefined : checkAs(inferenceSpec, at, textAt, "inference");
  // every problem of the three fields is reported at once
  if (problems.length || !update || !inference) throw new SpecError(problems, file);
  // the steps no output reads any more (batchnorm's squares, once var is replaced) are not computed
  const live = liveSteps(inference);
  if (inference.steps.some((s) => !live.has(s.name))) {
    const inf = inference;
    inference = checkAs({ ...inferenceSpec, steps: inf.steps.filter((s) => live.has(s.name)).map((s) => s.text) }, () => "inference", () => "", "inference");
    if (!inference) throw new SpecError(problems, file);
  }
  return { buffers, update, targets, updateTexts: entryOf.map((k) => updateTexts[k]!), inference, replaced };

  function declaration(lhs: string, field: string, text: string): TensorDecl | undefined {
    try {
      const d = parseDecl(lhs);
      if (!IDENT.test(d.name)) return void fail(field, `'${text}': '${d.name}' is not a valid name`);
      const seen = new Set<string>();
      for (const i of d.indices) {
        if (i.indices !== undefined || !(i.name in program.letters)) return void fail(field, `'${text}': unknown index '${i.name}' (declared: ${Object.keys(program.letters).join(", ")})`);
        if (seen.has(i.name)) return void fail(field, `'${text}': index '${i.name}' is repeated`);
        seen.add(i.name);
      }
      return { name: d.name, indices: d.indices.map((i) => i.name) };
    } catch (e) {
      if (!(e instanceof SyntaxProblem)) throw e;
      return void fail(field, `'${text}': ${e.message}`);
    }
  }

  /** `checkSpec` of a made-up spec, its problems moved to the field and entry of the spec they come from. */
  function checkAs(spec: Record<string, unknown>, fieldOf: (step: number) => string, textOf: (step: number) => string, whole: string): Program | undefined {
    try {
      return checkSpec(spec, file);
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      for (const q of e.problems) {
        if (q.where && "step" in q.where) problems.push({ where: { field: fieldOf(q.where.step) }, message: `'${textOf(q.where.step)}': ${q.message}` });
        else problems.push({ where: { field: whole }, message: q.message });
      }
      return undefined;
    }
  }
}

const EXAMPLE: Record<string, string> = {
  state: '["running_mean[d] = 0", "running_var[d] = 1"]',
  updates: '["running_mean[d] = (1 - momentum)*running_mean[d] + momentum*mu[d]"]',
  inference: '["mu[d] = running_mean[d]"]',
};

/** The spec's fields a made-up spec keeps. */
function base(raw: Record<string, unknown>): Record<string, unknown> {
  return { name: raw["name"], indices: raw["indices"], constants: raw["constants"] };
}

/** The value of an initial value: numbers, `+ - * / ^` and functions of numbers only. */
function constantValue(a: Ast): number {
  switch (a.type) {
    case "num":
      return a.value;
    case "neg":
      return -constantValue(a.arg);
    case "binary": {
      const l = constantValue(a.left);
      const r = constantValue(a.right);
      return a.op === "+" ? l + r : a.op === "-" ? l - r : a.op === "*" ? l * r : a.op === "/" ? l / r : l ** r;
    }
    case "call":
      if (a.args.length === 1 && a.fn === "sqrt") return Math.sqrt(constantValue(a.args[0]!));
      if (a.args.length === 1 && (FUNCTIONS as readonly string[]).includes(a.fn)) return evalFn(a.fn as Fn, constantValue(a.args[0]!));
      throw new SyntaxProblem(`an initial value must be a number or an expression of numbers; '${a.fn}(...)' is not one`, a.col);
    case "name":
      throw new SyntaxProblem(`an initial value must be a number or an expression of numbers, like 0 or 1/2; '${a.name}' is not one`, a.col);
    case "compare":
      throw new SyntaxProblem("an initial value must be a number or an expression of numbers, not a comparison", a.col);
  }
}

/** The steps some output reads, directly or through other steps (a where's comparison and a gather's ids included). */
function liveSteps(p: Program): Set<string> {
  const live = new Set<string>(p.outputs);
  for (let k = p.steps.length - 1; k >= 0; k--) {
    const s = p.steps[k]!;
    if (!live.has(s.name)) continue;
    for (const r of readsOf(s.rhs)) live.add(r);
  }
  return live;
}

function readsOf(e: Expr): string[] {
  const out: string[] = [];
  const roots: Expr[] = [e];
  for (let k = 0; k < roots.length; k++)
    for (const x of collect(roots[k]!, (y) => y.kind === "ref" || y.kind === "where" || y.kind === "delta")) {
      if (x.kind === "where") roots.push(x.left, x.right);
      else if (x.kind === "delta") out.push(x.form.from.name);
      else if (x.kind === "ref") out.push(x.name);
    }
  return out;
}
