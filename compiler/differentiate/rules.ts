/**
 * The compiler's own derivative rules for flat scalar expressions (no reductions): one entry per
 * op, each giving the local derivative with its math in a comment. Used to cross-check the CAS and
 * as the fallback when the CAS fails or answers wrongly. Reductions never reach this table: the
 * chain-rule driver in reverse.ts owns them.
 */
import { ONE, ZERO, add, assertNever, call, contains, mul, neg, num, pow, sub, where, type Expr, type Fn } from "../ir/expr.js";

/** d f(u)/du for each elementwise function, as an expression in u. */
const FUNCTION_DERIVATIVES: Record<Fn, (u: Expr) => Expr> = {
  exp: (u) => call("exp", u), //               d/du e^u = e^u
  log: (u) => pow(u, num(-1)), //              d/du log u = 1/u
  tanh: (u) => sub(ONE, pow(call("tanh", u), num(2))), // d/du tanh u = 1 - tanh(u)^2
  abs: (u) => call("sign", u), //              d/du |u| = sign(u)
  sin: (u) => call("cos", u), //               d/du sin u = cos u
  cos: (u) => neg(call("sin", u)), //          d/du cos u = -sin u
  sigmoid: (u) => mul(call("sigmoid", u), sub(ONE, call("sigmoid", u))), // d/du s(u) = s(1-s)
  sign: () => ZERO, //                         d/du sign u = 0 (almost everywhere)
  cosh: (u) => call("sinh", u), //             d/du cosh u = sinh u
  sinh: (u) => call("cosh", u), //             d/du sinh u = cosh u
  sech: (u) => neg(mul(call("sech", u), call("tanh", u))), // d/du sech u = -sech(u) tanh(u)
  stop: () => ZERO, //                         stop(u) passes no gradient
  relu: (u) => where(">", u, ZERO, ONE, ZERO), // d/du max(u, 0) = [u > 0]: relu'(0) = 0, as PyTorch
  erf: (u) => mul(num(2 / Math.sqrt(Math.PI)), call("exp", neg(pow(u, num(2))))), // d/du erf u = 2/sqrt(pi) e^(-u^2)
  log1p: (u) => pow(add(ONE, u), num(-1)), //  d/du log(1 + u) = 1/(1 + u)
  expm1: (u) => call("exp", u), //             d/du (e^u - 1) = e^u
  softplus: (u) => call("sigmoid", u), //      d/du log(1 + e^u) = sigmoid(u), finite for every u
};

/**
 * Functions whose partials always come from this table, never from the CAS: kinks and choices,
 * whose derivative at the kink the CAS writes as a quotient that is NaN there (`abs'` as `x/|x|`),
 * and functions the CAS does not know or differentiates into forms that overflow (`softplus'` as
 * `e^x/(1 + e^x)`). The chain-rule driver (reverse.ts) hides their calls from the CAS and applies
 * the table entry itself.
 */
export const OWN_RULE_FUNCTIONS: ReadonlySet<Fn> = new Set<Fn>(["abs", "sign", "relu", "erf", "log1p", "expm1", "softplus", "sigmoid"]);

/** d f(u)/du for an elementwise function, from the table. */
export function functionDerivative(fn: Fn, u: Expr): Expr {
  return FUNCTION_DERIVATIVES[fn](u);
}

/** d e / d v, where v is a leaf (a ref or a symbol) and e holds no reduction. */
export function derivative(e: Expr, v: Expr): Expr {
  if (e === v) return ONE;
  if (!contains(e, (x) => x === v)) return ZERO;
  switch (e.kind) {
    case "num":
    case "sym":
    case "ref":
      return ZERO;
    case "add": //                                d(a+b) = da + db
      return add(...e.terms.map((t) => derivative(t, v)));
    case "mul": //                                d(a*b*c) = da*b*c + a*db*c + a*b*dc
      return add(
        ...e.factors.map((f, k) =>
          mul(
            derivative(f, v),
            ...e.factors.filter((_, j) => j !== k),
          ),
        ),
      );
    case "pow": {
      const { base: b, exp: x } = e;
      if (!contains(x, (y) => y === v)) return mul(x, pow(b, add(x, num(-1))), derivative(b, v)); // d b^k = k b^(k-1) db
      // d b^x = b^x (dx log b + x db / b)
      return mul(e, add(mul(derivative(x, v), call("log", b)), mul(x, derivative(b, v), pow(b, num(-1)))));
    }
    case "call": //                               d f(u) = f'(u) du
      return mul(FUNCTION_DERIVATIVES[e.fn](e.arg), derivative(e.arg, v));
    case "where": //                              d where(c, a, b) = where(c, da, db): the comparison passes none
      return where(e.op, e.left, e.right, derivative(e.then, v), derivative(e.else, v));
    case "delta": //                              an index comparison: constant in every value
      return ZERO;
    case "sum":
    case "max":
    case "stored":
      throw new Error("derivative(): reductions are handled by the chain-rule driver");
    default:
      return assertNever(e, "expression");
  }
}
