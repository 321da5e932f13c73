/**
 * The IR as LaTeX math, for the derivation documents: tensors with subscript indices (`x_{n,d}`),
 * gradients as `\bar{x}_{n,d}` (the adjoint of x), reductions as `\sum_{n'}`, quotients as `\frac`.
 * The output uses only commands that both KaTeX and GitHub's math renderer support.
 */
import { affineText, assertNever, type IndexForm, bindNames, gatherRead, namingContext, splitCoefficient, mul, num, pow, type Expr, type PrintCtx } from "../ir/expr.js";

/** A name as LaTeX: one letter stays italic, longer names are upright (`\mathrm{xmu}`). */
export function latexName(name: string): string {
  const clean = name.replace(/_/g, "\\_");
  if (/^[A-Za-z]$/.test(name)) return name;
  const greek = ["alpha", "beta", "gamma", "delta", "epsilon", "mu", "sigma", "lambda", "theta", "tau", "phi", "psi", "omega", "eta", "kappa", "rho", "nu", "xi", "zeta", "chi"];
  if (greek.includes(name)) return `\\${name}`;
  return `\\mathrm{${clean}}`;
}

type Ctx = PrintCtx;

const FN: Record<string, string> = {
  exp: "\\exp",
  log: "\\log",
  tanh: "\\tanh",
  sin: "\\sin",
  cos: "\\cos",
  cosh: "\\cosh",
  sinh: "\\sinh",
  sech: "\\operatorname{sech}",
  sigmoid: "\\sigma",
  sign: "\\operatorname{sign}",
  stop: "\\operatorname{stop}",
};

function numText(v: number): string {
  const s = String(v);
  const m = /^(-?[\d.]+)e([+-]?\d+)$/.exec(s);
  return m ? `${m[1]}\\cdot 10^{${Number(m[2])}}` : s;
}

/** LaTeX for `e`; `letters` maps index letters to sizes so bound indices read as primed letters. */
export function latex(e: Expr, letters: Readonly<Record<string, string>>): string {
  return go(e, 0, namingContext([e], letters));
}

/** Several expressions in one naming context (see `printTogether` in ir/print.ts). */
export function latexTogether(es: readonly Expr[], letters: Readonly<Record<string, string>>, context: readonly string[] = []): string[] {
  const c = namingContext(es, letters, context);
  return es.map((e) => go(e, 0, c));
}

/** An index form as LaTeX: a gather's ref, or an affine form over the displayed letters (`2i+k-1`). */
function latexForm(f: IndexForm, c: Ctx): string {
  switch (f.kind) {
    case "gather":
      return go(f.from, 0, c);
    case "affine": {
      const s = affineText({ ...f, divisor: 1 }, (i) => c.names.get(i) ?? i).replace(/\*/g, "").replace(/ /g, "");
      return f.divisor === 1 ? s : `(${s})/${f.divisor}`;
    }
    default:
      return assertNever(f, "index form");
  }
}

// precedence: 0 sum of terms, 1 product, 2 unary minus, 3 power base
function go(e: Expr, prec: number, c: Ctx): string {
  const wrap = (s: string, p: number) => (p < prec ? `\\left(${s}\\right)` : s);
  switch (e.kind) {
    case "num":
      return e.value < 0 ? wrap(numText(e.value), 2) : numText(e.value);
    case "sym":
      return latexName(e.name);
    case "ref": {
      const head = e.space === "grad" ? `\\bar{${latexName(e.name.replace(/#(\d+)$/, ""))}}${/#(\d+)$/.test(e.name) ? `^{(${/#(\d+)$/.exec(e.name)![1]})}` : ""}` : latexName(e.name);
      return e.indices.length ? `${head}_{${e.indices.map((i) => c.names.get(i) ?? i).join(",")}}` : head;
    }
    case "call":
      return `${FN[e.fn] ?? `\\operatorname{${e.fn}}`}\\left(${go(e.arg, 0, c)}\\right)`;
    case "stored":
      return go(e.body, prec, c);
    case "sum":
    case "max": {
      const read = e.kind === "sum" ? gatherRead(e) : undefined;
      if (read)
        return `${latexName(read.ref.name)}_{${read.ref.indices.map((i) => (read.forms.has(i) ? latexForm(read.forms.get(i)!, c) : (c.names.get(i) ?? i))).join(",")}}`;
      const inner = bindNames(e.indices, c);
      const under = e.indices.map((i) => inner.names.get(i) ?? i).join(",");
      return wrap(`${e.kind === "sum" ? "\\sum" : "\\max"}_{${under}} ${go(e.body, 1, inner)}`, 1);
    }
    case "pow": {
      if (e.exp.kind === "num" && e.exp.value === 0.5) return `\\sqrt{${go(e.base, 0, c)}}`;
      if (e.exp.kind === "num" && e.exp.value < 0) return wrap(`\\frac{1}{${go(pow(e.base, num(-e.exp.value)), 0, c)}}`, 1);
      return `{${go(e.base, 4, c)}}^{${go(e.exp, 0, c)}}`;
    }
    case "mul": {
      const [k, rest] = splitCoefficient(e);
      const fs = rest.kind === "mul" ? rest.factors : [rest];
      const numer: Expr[] = [];
      const denom: Expr[] = [];
      for (const f of fs) {
        if (f.kind === "pow" && f.exp.kind === "num" && f.exp.value < 0) denom.push(pow(f.base, num(-f.exp.value)));
        else numer.push(f);
      }
      const kk = Math.abs(k);
      const top = [...(kk !== 1 ? [numText(kk)] : []), ...numer.map((f) => go(f, 1.5, c))].join(" \\, ") || "1";
      const s = denom.length ? `\\frac{${top}}{${denom.map((f) => go(f, 1.5, c)).join(" \\, ")}}` : top;
      return k < 0 ? wrap(`-${s}`, 2) : wrap(s, 1);
    }
    case "add": {
      const terms = [...e.terms.filter((t) => splitCoefficient(t)[0] > 0), ...e.terms.filter((t) => splitCoefficient(t)[0] < 0)];
      let s = go(terms[0]!, 0, c);
      for (const t of terms.slice(1)) {
        const [k, rest] = splitCoefficient(t);
        s += k < 0 ? ` - ${go(k === -1 ? rest : mul(num(-k), rest), 1, c)}` : ` + ${go(t, 1, c)}`;
      }
      return wrap(s, 0);
    }
    case "where": {
      const op = { "<": "<", "<=": "\\le", ">": ">", ">=": "\\ge", "==": "=", "!=": "\\ne" }[e.op];
      return `\\begin{cases} ${go(e.then, 0, c)} & \\text{if } ${go(e.left, 0, c)} ${op} ${go(e.right, 0, c)} \\\\ ${go(e.else, 0, c)} & \\text{otherwise} \\end{cases}`;
    }
    case "delta":
      return `\\delta_{${c.names.get(e.index) ?? e.index},\\,${latexForm(e.form, c)}}`;
    default:
      return "";
  }
}
