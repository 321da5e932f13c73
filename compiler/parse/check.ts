/**
 * The front end's second half: validates a spec object (from a `.spec.ts` default export or a
 * `.json` file) and resolves its steps into a `Program`. Every problem found is collected, each
 * with the step and column it concerns, so a user sees all of them at once.
 */
import {
  FUNCTIONS,
  add,
  affine,
  type IndexForm,
  call,
  delta,
  div,
  maxOver,
  mul,
  neg,
  num,
  pow,
  ref,
  sizeResolver,
  sqrt,
  sum,
  sym,
  where,
  type Expr,
  type Fn,
  type SizeOf,
} from "../ir/expr.js";
import type { Program, Step, TensorDecl } from "../ir/program.js";
import { chainOf, parseDecl, parseExpression, SyntaxProblem, type Ast, type IndexTok } from "./expression.js";
import { terminalText } from "../escape.js";
import type { DerivedSize, SizeExpr } from "../ir/sizes.js";

export interface Problem {
  readonly message: string;
  /** Where in the spec: a field name, or a step with its position (from 0) and text. */
  readonly where?: { readonly field: string } | { readonly step: number; readonly text: string; readonly col?: number };
}

export class SpecError extends Error {
  constructor(
    readonly problems: readonly Problem[],
    readonly file?: string,
  ) {
    super(formatProblems(problems, file));
    this.name = "SpecError";
  }

  /** The messages with `file:line:column` for steps found in the file's text. */
  formatIn(sourceText: string | undefined): string {
    return formatProblems(this.problems, this.file, sourceText);
  }
}

/** Line and column (from 1) of a step's text in the spec file, if it is there once or more. */
function locate(sourceText: string, stepText: string, col: number): { line: number; col: number } | undefined {
  const at = sourceText.indexOf(stepText);
  if (at < 0) return undefined;
  const before = sourceText.slice(0, at + col);
  const line = before.split("\n").length;
  return { line, col: before.length - before.lastIndexOf("\n") };
}

/**
 * One problem as the user reads it. Spec text (names, step texts, the file path) may hold control
 * characters: they are shown as `\u{hex}`, never sent to the terminal (see escape.ts).
 */
export function formatProblem(p: Problem, file?: string, sourceText?: string): string {
  const t = terminalText;
  const head = file ? `${t(file)}: ` : "";
  if (!p.where) return `${head}${t(p.message)}`;
  if ("field" in p.where) return `${head}${t(p.where.field)}: ${t(p.message)}`;
  const w = p.where;
  const pos = file && sourceText !== undefined ? locate(sourceText, w.text, w.col ?? 0) : undefined;
  const where = pos ? `${t(file!)}:${pos.line}:${pos.col}: ` : head;
  const short = w.text.length > EXCERPT ? `${w.text.slice(0, EXCERPT - 1)}…` : w.text;
  let s = `${where}step ${w.step + 1} "${t(short)}": ${t(p.message)}`;
  if (w.col !== undefined) {
    // a long step is shown as a window around the column, so a 100 kB step gives a short message
    const from = Math.max(0, Math.min(w.col - EXCERPT / 2, w.text.length - EXCERPT));
    const to = Math.min(w.text.length, from + EXCERPT);
    const pre = from > 0 ? "…" : "";
    const window = `${pre}${t(w.text.slice(from, to))}${to < w.text.length ? "…" : ""}`;
    s += `\n    ${window}\n    ${" ".repeat(pre.length + t(w.text.slice(from, w.col)).length)}^`;
  }
  return s;
}

/** The problems with a step's repeats dropped: a name misused 2000 times in one step is one message. */
function firstOfEach(problems: readonly Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((q) => {
    const key = `${q.where && "step" in q.where ? q.where.step : ""}\u0000${q.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Longest stretch of a step's text that an error message shows. */
const EXCERPT = 100;

export function formatProblems(ps: readonly Problem[], file?: string, sourceText?: string): string {
  return ps.map((p) => formatProblem(p, file, sourceText)).join("\n");
}

/** Functions a spec may call: the IR's elementwise functions plus `sqrt` (which is `x^0.5`). */
const SPEC_FUNCTIONS: readonly string[] = ["sqrt", ...FUNCTIONS];
/** Functions of several arguments, resolved here into `where` (CONTRACT §4.1). */
const CHOICE_FUNCTIONS: readonly string[] = ["where", "maximum", "minimum"];
const REDUCTIONS = ["sum", "mean", "max", "min"] as const;
/** Input kinds (CONTRACT §4.2): `"label[n]: int"`, `"t[n,c]: nograd"`. */
const INPUT_KINDS: readonly string[] = ["int", "nograd"];
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The one identifier that cannot key a plain JavaScript object (`{ __proto__: x }` sets the prototype). */
const PROTO = "__proto__";
const PROTO_MESSAGE = "'__proto__' cannot be a name: it is the prototype slot of every JavaScript object, so it cannot key the sizes or constants a kernel takes";
/** The fields of CONTRACT §4.5, checked by parse/state.ts once the steps are. */
export const TRAINING_FIELDS: readonly string[] = ["state", "updates", "inference"];
/** `forward` returns `{ <output>, cache }`. */
const CACHE_KEY = "cache";
/**
 * The double backward returns `{ d<input>, ..., ddout }` (CONTRACT §4.6): an input with a gradient
 * named `dout` would have the key of the gradient with respect to dout itself.
 */
export const DOUT = "dout";

/** The spec as a user writes it (CONTRACT §1). */
export interface SpecObject {
  readonly name: string;
  readonly description?: string;
  readonly indices: Readonly<Record<string, string>>;
  readonly inputs: readonly string[];
  readonly constants?: Readonly<Record<string, number>>;
  readonly steps: readonly string[];
  readonly output: string | readonly string[];
  /** State buffers and their initial values, `"running_mean[d] = 0"` (CONTRACT §4.5; checked by parse/state.ts). */
  readonly state?: readonly string[];
  /** New values of state buffers after a training forward, `"running_mean[d] = ..."`. */
  readonly updates?: readonly string[];
  /** Steps replaced in inference, `"mu[d] = running_mean[d]"`. */
  readonly inference?: readonly string[];
}

/** Identity helper that gives a spec literal its type. */
export function defineSpec<const S extends SpecObject>(spec: S): S {
  return spec;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Checks `raw` and builds its program, or throws a `SpecError` listing every problem. */
export function checkSpec(raw: unknown, file?: string): Program {
  const problems: Problem[] = [];
  const fail = (field: string, message: string) => problems.push({ where: { field }, message });
  if (!isRecord(raw)) throw new SpecError([{ message: "a spec must be an object (the default export, or the JSON document)" }], file);

  const known = new Set(["name", "description", "indices", "inputs", "constants", "steps", "output", ...TRAINING_FIELDS]);
  for (const k of Object.keys(raw)) if (!known.has(k)) fail(k, `unknown field (expected one of ${[...known].join(", ")})`);
  const required = ["name", "indices", "inputs", "steps", "output"];
  const missing = required.filter((k) => raw[k] === undefined);
  if (missing.length) {
    // without them nothing else can be checked meaningfully
    for (const k of missing) fail(k, `missing; a spec needs ${required.join(", ")}`);
    throw new SpecError(problems, file);
  }

  const name = raw["name"];
  if (typeof name !== "string" || !IDENT.test(name)) fail("name", "must be an identifier (letters, digits, _), like \"batchnorm\"");
  const description = raw["description"];
  if (description !== undefined && typeof description !== "string") fail("description", "must be a string");

  // indices: letter -> size symbol
  // name tables never inherit: 'toString' or 'constructor' is not already a letter
  const letters: Record<string, string> = Object.create(null) as Record<string, string>;
  const sizes: string[] = [];
  const derived: DerivedSize[] = [];
  /** An extent written as an expression over size symbols (`"L - K + 1"`), or undefined after reporting it. */
  function sizeExpression(letter: string, text: string): SizeExpr | undefined {
    const bad = (why: string) => void fail("indices", `the size of '${letter}', "${text}", ${why}; write a symbol like "N" or an expression over size symbols with integer literals, + - * and / (floor division), like "L - K + 1"`);
    let ast: Ast;
    try {
      ast = parseExpression(text);
    } catch (e) {
      if (!(e instanceof SyntaxProblem)) throw e;
      return bad(`does not parse (${e.message})`);
    }
    const go = (a: Ast): SizeExpr | undefined => {
      switch (a.type) {
        case "num":
          return Number.isSafeInteger(a.value) ? { kind: "num", value: a.value } : bad(`has '${a.value}', which is not an integer`);
        case "name":
          if (a.indices !== undefined) return bad(`indexes '${a.name}'`);
          if (a.name === PROTO) return bad("names '__proto__'");
          if (!sizes.includes(a.name)) sizes.push(a.name);
          return { kind: "sym", name: a.name };
        case "neg": {
          const x = go(a.arg);
          return x && { kind: "bin", op: "-", a: { kind: "num", value: 0 }, b: x };
        }
        case "binary": {
          if (a.op === "^") return bad("has '^'");
          const l = go(a.left);
          const r = go(a.right);
          if (a.op === "/" && r?.kind === "num" && r.value === 0) return bad("divides by zero");
          return l && r && { kind: "bin", op: a.op, a: l, b: r };
        }
        case "call":
          return bad(`calls '${a.fn}'`);
        case "compare":
          return bad(`compares with '${a.op}'`);
      }
    };
    return go(ast);
  }
  const rawIndices = raw["indices"];
  // extents computed from sizes (CONTRACT §4.3): read after every plain symbol is known
  const computed: { letter: string; text: string; expr: SizeExpr }[] = [];
  if (!isRecord(rawIndices)) fail("indices", "must be an object mapping index letters to size symbols, like { n: \"N\", d: \"D\" }");
  else {
    for (const [letter, size] of Object.entries(rawIndices)) {
      if (!IDENT.test(letter)) fail("indices", `'${letter}' is not a valid index name`);
      else if (letter === PROTO) fail("indices", PROTO_MESSAGE);
      else if (typeof size === "string" && !IDENT.test(size) && size.trim() !== "") {
        const e = sizeExpression(letter, size);
        if (e) computed.push({ letter, text: size.trim().replace(/\s+/g, " "), expr: e });
      } else if (typeof size !== "string" || !IDENT.test(size)) fail("indices", `the size of '${letter}' must be a symbol like "N", or an expression over size symbols like "L - K + 1"`);
      else if (size === PROTO) fail("indices", PROTO_MESSAGE);
      else {
        letters[letter] = size;
        if (!sizes.includes(size)) sizes.push(size);
      }
    }
    // each distinct expression is one size symbol, named after its first letter (`i` -> `I`)
    const rawConstantNames = isRecord(raw["constants"]) ? Object.keys(raw["constants"]) : [];
    const byText = new Map<string, DerivedSize>();
    for (const c of computed) {
      const known = byText.get(c.text);
      if (known) {
        letters[c.letter] = known.name;
        byText.set(c.text, { ...known, letters: [...known.letters, c.letter] });
        continue;
      }
      const taken = (n: string) => sizes.includes(n) || n in rawIndices || rawConstantNames.includes(n) || [...byText.values()].some((d) => d.name === n);
      let sym = c.letter.toUpperCase() === c.letter ? `${c.letter}_` : c.letter.toUpperCase();
      for (let k = 2; taken(sym); k++) sym = `${c.letter.toUpperCase()}${k}`;
      letters[c.letter] = sym;
      byText.set(c.text, { name: sym, letters: [c.letter], text: c.text, expr: c.expr });
    }
    derived.push(...byText.values());
  }
  for (const l of Object.keys(letters)) if (sizes.includes(l)) fail("indices", `'${l}' is both an index letter and a size symbol`);
  if (problems.some((q) => q.where && "field" in q.where && q.where.field === "indices")) throw new SpecError(problems, file);

  // constants
  const constants: { name: string; value: number }[] = [];
  const rawConstants = raw["constants"] ?? {};
  if (!isRecord(rawConstants)) fail("constants", "must be an object mapping names to numbers, like { eps: 1e-5 }");
  else
    for (const [cname, value] of Object.entries(rawConstants)) {
      if (!IDENT.test(cname)) fail("constants", `'${cname}' is not a valid name`);
      else if (cname === PROTO) fail("constants", PROTO_MESSAGE);
      else if (typeof value !== "number" || !Number.isFinite(value)) fail("constants", `'${cname}' must be a finite number, got ${JSON.stringify(value) ?? String(value)}`);
      else constants.push({ name: cname, value });
    }

  const reserved = (n: string): string | undefined => {
    if (n === PROTO) return "the prototype slot of every JavaScript object, so it cannot name an input, a step or a gradient";
    if (SPEC_FUNCTIONS.includes(n) || CHOICE_FUNCTIONS.includes(n) || (REDUCTIONS as readonly string[]).includes(n)) return "a function of the spec language";
    if (sizes.includes(n)) return "a size symbol";
    if (n in letters) return "an index letter";
    if (constants.some((c) => c.name === n)) return "a constant";
    return undefined;
  };
  for (const c of constants) {
    const r = SPEC_FUNCTIONS.includes(c.name) || sizes.includes(c.name) || c.name in letters ? reserved(c.name) : undefined;
    if (r) fail("constants", `'${c.name}' is already ${r}`);
  }

  const sizeOf: SizeOf = sizeResolver(letters);
  const tensors = new Map<string, TensorDecl>();
  const inputs: TensorDecl[] = [];

  const rawInputs = raw["inputs"];
  if (!Array.isArray(rawInputs) || rawInputs.length === 0) fail("inputs", "must be a non-empty list like [\"x[n,d]\", \"gamma[d]\"]");
  else
    rawInputs.forEach((text, k) => {
      if (typeof text !== "string") return fail("inputs", `entry ${k + 1} must be a string`);
      // an optional kind after the last ':' (names and index lists hold none)
      const colon = text.lastIndexOf(":");
      const kind = colon < 0 ? undefined : text.slice(colon + 1).trim();
      if (kind !== undefined && !INPUT_KINDS.includes(kind))
        return fail("inputs", `'${text}': unknown input kind '${kind}' (an input may end in ': int' for integer indices or ': nograd' for a float input that gets no gradient)`);
      const plain = declaration(colon < 0 ? text : text.slice(0, colon), `inputs[${k}]`);
      if (!plain) return;
      const decl: TensorDecl = kind === undefined ? plain : { ...plain, kind: kind as "int" | "nograd" };
      if (decl.name === DOUT && kind === undefined)
        return fail("inputs", `'${DOUT}' cannot be the name of an input with a gradient: the double backward returns the gradient with respect to dout as 'd${DOUT}', which would be this input's key too; rename the input (or mark it ': nograd')`);
      const r = reserved(decl.name);
      if (r) return fail("inputs", `'${decl.name}' is already ${r}`);
      if (tensors.has(decl.name)) return fail("inputs", `'${decl.name}' is declared twice`);
      tensors.set(decl.name, decl);
      inputs.push(decl);
    });

  // a broken index or input list would make every step look wrong: report it alone
  if (problems.some((q) => q.where && "field" in q.where && /^(indices|inputs)/.test(q.where.field))) throw new SpecError(problems, file);

  function declaration(text: string, field: string, step?: number): TensorDecl | undefined {
    try {
      const d = parseDecl(text);
      text = text.trim();
      const seen = new Set<string>();
      for (const i of d.indices) {
        const at = step !== undefined ? { step, text: stepTexts[step] ?? text, col: i.col } : undefined;
        const report = (message: string) => (at ? problems.push({ where: at, message }) : fail(field, message));
        if (i.indices !== undefined) return void report(`'${text}' declares a tensor: its index positions hold letters only, not '${i.name}[...]'`);
        if (i.affine !== undefined) return void report(`'${text}' declares a tensor: its index positions hold letters only, not '${i.name}'`);
        if (!(i.name in letters)) return void report(`unknown index '${i.name}' in '${text}' (declared: ${Object.keys(letters).join(", ") || "none"})`);
        if (seen.has(i.name)) return void report(`index '${i.name}' is repeated in '${text}'; a left-hand side names distinct indices`);
        seen.add(i.name);
      }
      return { name: d.name, indices: d.indices.map((i) => i.name) };
    } catch (e) {
      if (!(e instanceof SyntaxProblem)) throw e;
      if (step !== undefined) problems.push({ where: { step, text: stepTexts[step] ?? text, col: e.col }, message: e.message });
      else fail(field, `'${text}': ${e.message}`);
      return undefined;
    }
  }

  // steps: first pass collects left-hand sides so that forward references get a precise message
  const rawSteps = raw["steps"];
  const stepTexts: string[] = [];
  if (!Array.isArray(rawSteps) || rawSteps.length === 0) fail("steps", "must be a non-empty list of strings like \"y[n] = 2 * x[n]\"");
  else rawSteps.forEach((s, k) => (typeof s === "string" ? stepTexts.push(s) : (fail("steps", `entry ${k + 1} must be a string`), stepTexts.push(""))));

  const lhsOf: (TensorDecl | undefined)[] = stepTexts.map((text, k) => {
    const eq = text.indexOf("=");
    if (eq < 0) {
      if (text) problems.push({ where: { step: k, text }, message: "a step must have the form 'name[indices] = expression'" });
      return undefined;
    }
    return declaration(text.slice(0, eq), "steps", k);
  });
  const definedAt = new Map<string, number>();
  lhsOf.forEach((d, k) => {
    if (!d) return;
    const at = { step: k, text: stepTexts[k]!, col: text0(stepTexts[k]!) };
    const r = reserved(d.name);
    if (r) problems.push({ where: at, message: `'${d.name}' is already ${r}` });
    else if (tensors.has(d.name) && !definedAt.has(d.name)) problems.push({ where: at, message: `'${d.name}' is already an input` });
    else if (definedAt.has(d.name)) problems.push({ where: at, message: `'${d.name}' is already defined by step ${definedAt.get(d.name)! + 1}` });
    else definedAt.set(d.name, k);
  });

  const steps: Step[] = [];
  stepTexts.forEach((text, k) => {
    const lhs = lhsOf[k];
    if (!lhs || definedAt.get(lhs.name) !== k) return;
    const eq = text.indexOf("=");
    const rhsText = text.slice(eq + 1);
    const at = (col: number) => ({ step: k, text, col: eq + 1 + col });
    const before = problems.length;
    let rhs: Expr | undefined;
    try {
      const ast = parseExpression(rhsText);
      rhs = resolve(ast, new Map(lhs.indices.map((i) => [i, i])), { at, step: k, lhs: lhs.name });
    } catch (e) {
      if (!(e instanceof SyntaxProblem)) throw e;
      problems.push({ where: at(e.col), message: e.message });
    }
    if (rhs && problems.length === before) {
      const extra = rhs.free.filter((i) => !lhs.indices.includes(i));
      if (extra.length) problems.push({ where: { step: k, text }, message: `index ${extra.map((i) => `'${i}'`).join(", ")} is free on the right but not on the left; sum over it or add it to the left` });
      else steps.push({ ...lhs, position: k, text, rhs });
    }
    tensors.set(lhs.name, lhs);
  });

  interface Ctx {
    at: (col: number) => { step: number; text: string; col: number };
    step: number;
    lhs: string;
  }

  function resolve(ast: Ast, scope: Map<string, string>, ctx: Ctx): Expr {
    const report = (col: number, message: string): Expr => {
      problems.push({ where: ctx.at(col), message });
      return num(1); // keep going to find further problems
    };
    switch (ast.type) {
      case "num":
        return num(ast.value);
      case "neg":
        return neg(resolve(ast.arg, scope, ctx));
      case "binary": {
        if (ast.op !== "^") {
          // a chain a + b - c ... (or a * b / c ...) resolved operand by operand and built at once:
          // a long sum must neither recurse nor rebuild its sum once per term
          const { first, rest } = chainOf(ast, ast.op === "+" || ast.op === "-" ? "+-" : "*/");
          let operands = [resolve(first, scope, ctx)];
          for (const { op, arg, col } of rest) {
            const r = resolve(arg, scope, ctx);
            if (op === "/" && r.kind === "num" && r.value === 0) operands = [report(col, "division by zero")];
            else operands.push(op === "-" ? neg(r) : op === "/" ? pow(r, num(-1)) : r);
          }
          return ast.op === "+" || ast.op === "-" ? add(...operands) : mul(...operands);
        }
        return pow(resolve(ast.left, scope, ctx), resolve(ast.right, scope, ctx));
      }
      case "name": {
        const n = ast.name;
        const t = tensors.get(n);
        if (!t) {
          if (n === ctx.lhs) return report(ast.col, `'${n}' refers to itself; a step can only use inputs and earlier steps`);
          const later = definedAt.get(n);
          if (later !== undefined) return report(ast.col, `'${n}' is used before its definition in step ${later + 1}`);
          if (ast.indices === undefined || ast.indices.length === 0) {
            if (constants.some((c) => c.name === n)) return sym(n, "const");
            if (sizes.includes(n)) return sym(n, "size");
          }
          if (n in letters) return report(ast.col, `index '${n}' cannot be used as a value`);
          return report(ast.col, `unknown name '${n}' (not an input, step, constant or size symbol)`);
        }
        if (t.kind === "int") return report(ast.col, `'${n}' is an integer input: it can only stand in an index position, like z[n, ${n}[...]] (a gather), not in arithmetic`);
        const idx = ast.indices ?? [];
        if (idx.length !== t.indices.length) {
          const want = t.indices.length === 0 ? `${n} or ${n}[]` : `${n}[${t.indices.join(",")}]`;
          return report(ast.col, `'${n}' has ${t.indices.length} ${t.indices.length === 1 ? "index" : "indices"}, written here with ${idx.length}; write it as ${want}`);
        }
        const seen = new Set<string>();
        const actual: string[] = [];
        // gathers: the position gets a fresh letter of its size, bound by a sum over a delta
        const gathered: { letter: string; form: IndexForm }[] = [];
        for (let p = 0; p < idx.length; p++) {
          const i = idx[p]!;
          if (i.affine !== undefined) {
            // x[.., 2*i + k - 1, ..] = sum(delta(l, 2*i + k - 1) * x[.., l, ..], l): a value outside
            // [0, L) matches no l, so the read is 0 there (zero padding) and its gradient is dropped
            const terms: { index: string; coef: number }[] = [];
            for (const t of i.affine.terms) {
              if (!(t.name in letters)) return report(t.col, `unknown index '${t.name}' (declared: ${Object.keys(letters).join(", ")})`);
              const a = scope.get(t.name);
              if (a === undefined) return report(t.col, `index '${t.name}' is free on the right but not on the left; sum over it or add it to the left`);
              terms.push({ index: a, coef: t.coef });
            }
            let fresh = t.indices[p]!;
            while ([...scope.values()].includes(fresh) || gathered.some((x) => x.letter === fresh) || idx.some((j) => j.name === fresh)) fresh += "'";
            gathered.push({ letter: fresh, form: affine(terms, i.affine.offset) });
            actual.push(fresh);
            continue;
          }
          if (i.indices !== undefined) {
            const g = gatherForm(i, t, p, scope, ctx);
            if (g === undefined) return num(1);
            let fresh = t.indices[p]!;
            while ([...scope.values()].includes(fresh) || gathered.some((x) => x.letter === fresh) || idx.some((j) => j.name === fresh)) fresh += "'";
            gathered.push({ letter: fresh, form: { kind: "gather", from: g } });
            actual.push(fresh);
            continue;
          }
          if (!(i.name in letters)) return report(i.col, `unknown index '${i.name}' (declared: ${Object.keys(letters).join(", ")})`);
          if (seen.has(i.name)) return report(i.col, `index '${i.name}' is repeated in a reference to '${n}'`);
          seen.add(i.name);
          const want = letters[t.indices[p]!]!;
          if (letters[i.name] !== want) return report(i.col, `index '${i.name}' has size ${letters[i.name]}, but dimension ${p + 1} of '${n}' has size ${want}`);
          const a = scope.get(i.name);
          if (a === undefined) return report(i.col, `index '${i.name}' is free on the right but not on the left; sum over it or add it to the left`);
          actual.push(a);
        }
        if (gathered.length === 0) return ref(n, actual);
        // z[n, label[n]] = sum(delta(c, label[n]) * z[n,c], c): exact, and the chain rule through
        // the sum gives the scatter-add for free (see Delta in ir/node.ts)
        return sum(
          mul(...gathered.map((g) => delta(g.letter, g.form)), ref(n, actual)),
          gathered.map((g) => g.letter),
          sizeOf,
        );
      }
      case "compare":
        return report(ast.col, `a comparison ('${ast.op}') is allowed only as the first argument of where(condition, a, b)`);
      case "call": {
        const fn = ast.fn;
        if ((REDUCTIONS as readonly string[]).includes(fn)) {
          if (ast.args.length < 2) return report(ast.col, `${fn}(body, index, ...) needs a body and at least one index`);
          const bound: string[] = [];
          const inner = new Map(scope);
          let size: Expr = num(1);
          for (const a of ast.args.slice(1)) {
            if (a.type !== "name" || a.indices !== undefined) return report(a.col, `the arguments after the body of ${fn} must be index letters`);
            if (!(a.name in letters)) return report(a.col, `${fn} over '${a.name}', which is not a declared index (declared: ${Object.keys(letters).join(", ")})`);
            if (bound.includes(a.name)) return report(a.col, `${fn} names index '${a.name}' twice`);
            // a reduction index shadows an index of the same letter outside it: rename it apart
            let fresh = a.name;
            while ([...scope.values()].includes(fresh) || bound.includes(fresh)) fresh += "'";
            inner.set(a.name, fresh);
            bound.push(fresh);
            size = mul(size, sym(letters[a.name]!, "size"));
          }
          const body = resolve(ast.args[0]!, inner, ctx);
          if (fn === "max") return maxOver(body, bound, sizeOf);
          if (fn === "min") return neg(maxOver(neg(body), bound, sizeOf)); // min = -max(-body): exact
          const s = sum(body, bound, sizeOf);
          return fn === "mean" ? div(s, size) : s;
        }
        if (CHOICE_FUNCTIONS.includes(fn)) return choice(ast, scope, ctx);
        if (!SPEC_FUNCTIONS.includes(fn)) return report(ast.col, `unknown function '${fn}' (known: ${[...SPEC_FUNCTIONS, ...CHOICE_FUNCTIONS, ...REDUCTIONS].join(", ")})`);
        if (ast.args.length !== 1) return report(ast.col, `${fn} takes one argument, got ${ast.args.length}`);
        const arg = resolve(ast.args[0]!, scope, ctx);
        return fn === "sqrt" ? sqrt(arg) : call(fn as Fn, arg);
      }
    }
  }

  /**
   * `where(l op r, a, b)`, `maximum(a, b)`, `minimum(a, b)`. maximum is `where(a > b, a, where(a < b,
   * b, a/2 + b/2))`: the same value (at a tie `a/2 + b/2` is the tied value, and unlike `(a + b)/2`
   * it cannot overflow), and at a tie the chain rule gives half the gradient to each side, as
   * PyTorch does. A NaN operand fails both comparisons and gives NaN.
   */
  function choice(ast: Ast & { type: "call" }, scope: Map<string, string>, ctx: Ctx): Expr {
    const report = (col: number, message: string): Expr => {
      problems.push({ where: ctx.at(col), message });
      return num(1);
    };
    const fn = ast.fn;
    const want = fn === "where" ? 3 : 2;
    if (ast.args.length !== want) return report(ast.col, fn === "where" ? `where(condition, a, b) takes 3 arguments, got ${ast.args.length}` : `${fn}(a, b) takes 2 arguments, got ${ast.args.length}`);
    if (fn === "where") {
      const cond = ast.args[0]!;
      if (cond.type !== "compare") return report(cond.col, "the first argument of where must be a comparison, like where(x[n] > 0, a, b)");
      const l = resolve(cond.left, scope, ctx);
      const r = resolve(cond.right, scope, ctx);
      return where(cond.op, l, r, resolve(ast.args[1]!, scope, ctx), resolve(ast.args[2]!, scope, ctx));
    }
    const a = resolve(ast.args[0]!, scope, ctx);
    const b = resolve(ast.args[1]!, scope, ctx);
    const tie = add(mul(num(0.5), a), mul(num(0.5), b));
    return fn === "maximum" ? where(">", a, b, a, where("<", a, b, b, tie)) : where("<", a, b, a, where(">", a, b, b, tie));
  }

  /** The integer input's element in a gather position `p` of `t`: checked, resolved in `scope`. */
  function gatherForm(i: IndexTok, t: TensorDecl, p: number, scope: Map<string, string>, ctx: Ctx): (Expr & { kind: "ref" }) | undefined {
    const fail = (col: number, message: string) => void problems.push({ where: ctx.at(col), message });
    const g = tensors.get(i.name);
    if (!g || !p0(g)) {
      const what = !g ? (i.name in letters ? "an index letter" : "not a declared input") : "a float tensor";
      return fail(i.col, `'${i.name}[...]' in an index position of '${t.name}' must be an integer input (declared like "${i.name}[n]: int"); '${i.name}' is ${what}`);
    }
    const idx = i.indices!;
    if (idx.length !== g.indices.length) return fail(i.col, `'${i.name}' has ${g.indices.length} ${g.indices.length === 1 ? "index" : "indices"}, written here with ${idx.length}`);
    const out: string[] = [];
    for (let q = 0; q < idx.length; q++) {
      const j = idx[q]!;
      if (j.indices !== undefined) return fail(j.col, `a gather's own indices must be letters: '${i.name}[...]' cannot be indexed by '${j.name}[...]'`);
      if (!(j.name in letters)) return fail(j.col, `unknown index '${j.name}' (declared: ${Object.keys(letters).join(", ")})`);
      const want = letters[g.indices[q]!]!;
      if (letters[j.name] !== want) return fail(j.col, `index '${j.name}' has size ${letters[j.name]}, but dimension ${q + 1} of '${i.name}' has size ${want}`);
      const a = scope.get(j.name);
      if (a === undefined) return fail(j.col, `index '${j.name}' is free on the right but not on the left; sum over it or add it to the left`);
      out.push(a);
    }
    return ref(g.name, out) as Expr & { kind: "ref" };
    function p0(x: TensorDecl): boolean {
      return x.kind === "int";
    }
  }

  const output = raw["output"];
  // a step whose left-hand side is broken already has its message; its name is not reported again
  const attempted = new Set(stepTexts.map((t) => /^\s*([A-Za-z_][A-Za-z0-9_]*)/.exec(t)?.[1]));
  const outputs: string[] = [];
  if (typeof output === "string") outputs.push(output);
  else if (Array.isArray(output) && output.length > 0 && output.every((o) => typeof o === "string")) outputs.push(...(output as string[]));
  else fail("output", "must be the name of a step, or a non-empty list of step names like [\"h\", \"c\"]");
  for (const o of outputs) {
    if (o === CACHE_KEY) fail("output", `'${CACHE_KEY}' cannot be the output: forward() returns the output beside the cache, as { <output>, cache }; rename the step`);
    else if (!definedAt.has(o) && !attempted.has(o)) fail("output", tensors.has(o) ? `'${o}' is an input, not a step` : `'${o}' is not a step`);
  }
  if (new Set(outputs).size !== outputs.length) fail("output", "names a step twice");

  if (problems.length) throw new SpecError(firstOfEach(problems), file);
  return {
    name: name as string,
    description: description as string | undefined,
    letters,
    sizes,
    ...(derived.length ? { derived } : {}),
    inputs,
    constants,
    steps,
    output: outputs[0]!,
    outputs,
    sizeOf,
  };
}

function text0(text: string): number {
  return text.length - text.trimStart().length;
}
