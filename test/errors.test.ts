/**
 * The golden list of spec errors: every kind of mistake the front end reports, each with its exact
 * message (file, step, text, caret). A change to any message shows up here, on purpose.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../compiler/driver.js";
import { SpecError } from "../compiler/parse/check.js";

const base = {
  name: "ln",
  indices: { n: "N", d: "D" },
  inputs: ["x[n,d]", "g[d]"],
  constants: { eps: 1e-5 },
  steps: [
    "mu[n] = mean(x[n,d], d)",
    "xc[n,d] = x[n,d] - mu[n]",
    "y[n,d] = g[d] * xc[n,d]",
  ],
  output: "y",
};
const steps = (...s: string[]) => ({ ...base, steps: s });
const CASES: [string, unknown][] = [
  [
    "syntax: unbalanced parenthesis",
    steps("mu[n] = mean(x[n,d], d", "y[n,d] = x[n,d] - mu[n]"),
  ],
  ["syntax: dangling operator", steps("y[n,d] = x[n,d] * ")],
  ["syntax: unexpected character", steps("y[n,d] = x[n,d] $ 2")],
  ["no '=' in a step", steps("y[n,d] x[n,d]")],
  ["unknown name", steps("y[n,d] = gamma[d] * x[n,d]")],
  ["unknown function", steps("y[n,d] = gelu(x[n,d])")],
  ["unknown index", steps("y[n,d] = x[n,k]")],
  ["unknown index on the left", steps("y[n,k] = x[n,d]")],
  ["wrong number of indices", steps("y[n,d] = x[n] * g[d]")],
  ["index of the wrong size", steps("y[n,d] = x[d,n]")],
  ["free on the right, absent on the left", steps("y[n] = x[n,d]")],
  ["repeated index on the left", steps("y[n,n] = x[n,n]")],
  ["repeated index in a reference", steps("y[n] = sum(x[n,n], n)")],
  ["reduction over an undeclared index", steps("y[n] = sum(x[n,d], k)")],
  ["reduction without an index", steps("y[n] = sum(x[n,d])")],
  [
    "use before definition",
    steps("y[n,d] = x[n,d] - mu[n]", "mu[n] = mean(x[n,d], d)"),
  ],
  ["a step that reads itself", steps("y[n,d] = y[n,d] + x[n,d]")],
  ["duplicate step", steps("y[n,d] = x[n,d]", "y[n,d] = 2 * x[n,d]")],
  ["step named like an input", steps("x[n,d] = 2 * x[n,d]", "y[n,d] = x[n,d]")],
  [
    "duplicate input",
    { ...base, inputs: ["x[n,d]", "x[n,d]"], steps: ["y[n,d] = x[n,d]"] },
  ],
  [
    "step named like a function",
    steps("exp[n,d] = x[n,d]", "y[n,d] = exp[n,d]"),
  ],
  [
    "step named like a size symbol",
    steps("N[n] = sum(x[n,d], d)", "y[n,d] = x[n,d]"),
  ],
  [
    "input named like a reduction",
    { ...base, inputs: ["sum[n,d]"], steps: ["y[n,d] = 2"] },
  ],
  ["constant named like an index", { ...base, constants: { n: 1 } }],
  ["output that is not a step", { ...base, output: "z" }],
  ["output that is an input", { ...base, output: "x" }],
  ["missing field", { ...base, steps: undefined }],
  ["malformed indices", { ...base, indices: ["n", "d"] }],
  ["malformed inputs", { ...base, inputs: "x[n,d]" }],
  ["malformed step", { ...base, steps: ["y[n,d] = x[n,d]", 42] }],
  ["unknown field", { ...base, outputs: "y" }],
  ["bad name", { ...base, name: "layer norm" }],
  ["non-finite constant", { ...base, constants: { eps: null } }],
  ["not an object", 42],
  [
    "several problems at once",
    steps("mu[n] = mean(x[n,d], k)", "y[n,d] = gama[d] * (x[n,d] - mu[n])"),
  ],
  [
    "comparison outside where",
    steps("y[n,d] = x[n,d] > 0"),
  ],
  ["where without a comparison", steps("y[n,d] = where(x[n,d], 1, 0)")],
  ["division by zero", steps("y[n,d] = x[n,d] / (2 - 2)")],
];

/** The message for each case, in the order above. */
const MESSAGES: [string, string][] = [
  [
    "syntax: unbalanced parenthesis",
    "ln.json: step 1 \"mu[n] = mean(x[n,d], d\": expected ')' to close the call of 'mean', found end of expression\n    mu[n] = mean(x[n,d], d\n                          ^",
  ],
  [
    "syntax: dangling operator",
    "ln.json: step 1 \"y[n,d] = x[n,d] * \": expected a number, a name or '(', found end of expression\n    y[n,d] = x[n,d] * \n                      ^",
  ],
  [
    "syntax: unexpected character",
    "ln.json: step 1 \"y[n,d] = x[n,d] $ 2\": unexpected character '$'\n    y[n,d] = x[n,d] $ 2\n                    ^",
  ],
  [
    "no '=' in a step",
    "ln.json: step 1 \"y[n,d] x[n,d]\": a step must have the form 'name[indices] = expression'",
  ],
  [
    "unknown name",
    "ln.json: step 1 \"y[n,d] = gamma[d] * x[n,d]\": unknown name 'gamma' (not an input, step, constant or size symbol)\n    y[n,d] = gamma[d] * x[n,d]\n             ^",
  ],
  [
    "unknown function",
    "ln.json: step 1 \"y[n,d] = gelu(x[n,d])\": unknown function 'gelu' (known: sqrt, exp, log, tanh, abs, sin, cos, sigmoid, sign, cosh, sinh, sech, stop, relu, erf, log1p, expm1, softplus, where, maximum, minimum, sum, mean, max, min)\n    y[n,d] = gelu(x[n,d])\n             ^",
  ],
  [
    "unknown index",
    "ln.json: step 1 \"y[n,d] = x[n,k]\": unknown index 'k' (declared: n, d)\n    y[n,d] = x[n,k]\n                 ^",
  ],
  [
    "unknown index on the left",
    "ln.json: step 1 \"y[n,k] = x[n,d]\": unknown index 'k' in 'y[n,k]' (declared: n, d)\n    y[n,k] = x[n,d]\n        ^",
  ],
  [
    "wrong number of indices",
    "ln.json: step 1 \"y[n,d] = x[n] * g[d]\": 'x' has 2 indices, written here with 1; write it as x[n,d]\n    y[n,d] = x[n] * g[d]\n             ^",
  ],
  [
    "index of the wrong size",
    "ln.json: step 1 \"y[n,d] = x[d,n]\": index 'd' has size D, but dimension 1 of 'x' has size N\n    y[n,d] = x[d,n]\n               ^",
  ],
  [
    "free on the right, absent on the left",
    "ln.json: step 1 \"y[n] = x[n,d]\": index 'd' is free on the right but not on the left; sum over it or add it to the left\n    y[n] = x[n,d]\n               ^",
  ],
  [
    "repeated index on the left",
    "ln.json: step 1 \"y[n,n] = x[n,n]\": index 'n' is repeated in 'y[n,n]'; a left-hand side names distinct indices\n    y[n,n] = x[n,n]\n        ^",
  ],
  [
    "repeated index in a reference",
    "ln.json: step 1 \"y[n] = sum(x[n,n], n)\": index 'n' is repeated in a reference to 'x'\n    y[n] = sum(x[n,n], n)\n                   ^",
  ],
  [
    "reduction over an undeclared index",
    "ln.json: step 1 \"y[n] = sum(x[n,d], k)\": sum over 'k', which is not a declared index (declared: n, d)\n    y[n] = sum(x[n,d], k)\n                       ^",
  ],
  [
    "reduction without an index",
    'ln.json: step 1 "y[n] = sum(x[n,d])": sum(body, index, ...) needs a body and at least one index\n    y[n] = sum(x[n,d])\n           ^',
  ],
  [
    "use before definition",
    "ln.json: step 1 \"y[n,d] = x[n,d] - mu[n]\": 'mu' is used before its definition in step 2\n    y[n,d] = x[n,d] - mu[n]\n                      ^",
  ],
  [
    "a step that reads itself",
    "ln.json: step 1 \"y[n,d] = y[n,d] + x[n,d]\": 'y' refers to itself; a step can only use inputs and earlier steps\n    y[n,d] = y[n,d] + x[n,d]\n             ^",
  ],
  [
    "duplicate step",
    "ln.json: step 2 \"y[n,d] = 2 * x[n,d]\": 'y' is already defined by step 1\n    y[n,d] = 2 * x[n,d]\n    ^",
  ],
  [
    "step named like an input",
    "ln.json: step 1 \"x[n,d] = 2 * x[n,d]\": 'x' is already an input\n    x[n,d] = 2 * x[n,d]\n    ^",
  ],
  ["duplicate input", "ln.json: inputs: 'x' is declared twice"],
  [
    "step named like a function",
    "ln.json: step 1 \"exp[n,d] = x[n,d]\": 'exp' is already a function of the spec language\n    exp[n,d] = x[n,d]\n    ^\nln.json: step 2 \"y[n,d] = exp[n,d]\": unknown name 'exp' (not an input, step, constant or size symbol)\n    y[n,d] = exp[n,d]\n             ^",
  ],
  [
    "step named like a size symbol",
    "ln.json: step 1 \"N[n] = sum(x[n,d], d)\": 'N' is already a size symbol\n    N[n] = sum(x[n,d], d)\n    ^",
  ],
  [
    "input named like a reduction",
    "ln.json: inputs: 'sum' is already a function of the spec language",
  ],
  [
    "constant named like an index",
    "ln.json: constants: 'n' is already an index letter",
  ],
  ["output that is not a step", "ln.json: output: 'z' is not a step"],
  ["output that is an input", "ln.json: output: 'x' is an input, not a step"],
  [
    "missing field",
    "ln.json: steps: missing; a spec needs name, indices, inputs, steps, output",
  ],
  [
    "malformed indices",
    'ln.json: indices: must be an object mapping index letters to size symbols, like { n: "N", d: "D" }',
  ],
  [
    "malformed inputs",
    'ln.json: inputs: must be a non-empty list like ["x[n,d]", "gamma[d]"]',
  ],
  ["malformed step", "ln.json: steps: entry 2 must be a string"],
  [
    "unknown field",
    "ln.json: outputs: unknown field (expected one of name, description, indices, inputs, constants, steps, output, state, updates, inference)",
  ],
  [
    "bad name",
    'ln.json: name: must be an identifier (letters, digits, _), like "batchnorm"',
  ],
  [
    "non-finite constant",
    "ln.json: constants: 'eps' must be a finite number, got null",
  ],
  [
    "not an object",
    "ln.json: a spec must be an object (the default export, or the JSON document)",
  ],
  [
    "several problems at once",
    "ln.json: step 1 \"mu[n] = mean(x[n,d], k)\": mean over 'k', which is not a declared index (declared: n, d)\n    mu[n] = mean(x[n,d], k)\n                         ^\nln.json: step 2 \"y[n,d] = gama[d] * (x[n,d] - mu[n])\": unknown name 'gama' (not an input, step, constant or size symbol)\n    y[n,d] = gama[d] * (x[n,d] - mu[n])\n             ^",
  ],
  [
    "comparison outside where",
    "ln.json: step 1 \"y[n,d] = x[n,d] > 0\": a comparison ('>') is allowed only as the first argument of where(condition, a, b)\n    y[n,d] = x[n,d] > 0\n                    ^",
  ],
  [
    "where without a comparison",
    "ln.json: step 1 \"y[n,d] = where(x[n,d], 1, 0)\": the first argument of where must be a comparison, like where(x[n] > 0, a, b)\n    y[n,d] = where(x[n,d], 1, 0)\n                   ^",
  ],
  ["division by zero", 'ln.json: step 1 "y[n,d] = x[n,d] / (2 - 2)": division by zero\n    y[n,d] = x[n,d] / (2 - 2)\n                    ^'],
];

describe("spec errors (golden)", () => {
  it("lists every case", () => {
    expect(MESSAGES.map(([what]) => what)).toEqual(CASES.map(([what]) => what));
  });

  it.each(
    CASES.map(([what, spec], k) => [what, spec, MESSAGES[k]![1]] as const),
  )("%s", async (_what, spec, message) => {
    const error = await compile(spec, { source: "ln.json" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SpecError);
    expect((error as SpecError).message).toBe(message);
  });
});
