/**
 * Every rule has its own input ⇒ expected test: each rule name of the rule tables, of the rules the
 * steps make and of the passes, and each name a derivation in docs/ records, must be named in a test
 * of test/rules/ beside an expectation.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { expandRules } from "../../compiler/simplify/rules.js";
import { FACTOR_RULE } from "../../compiler/simplify/factor.js";
import { MERGE_RULE } from "../../compiler/simplify/merge.js";
import { foldReductionRule } from "../../compiler/simplify/regroup.js";
import { foldDefinitionRules, foldRule, unfoldRules, definitionsOf } from "../../compiler/simplify/definitions.js";
import { SECH_TANH } from "../../compiler/simplify/outputs.js";
import { ctx, programWith, sizeOf } from "./helpers.js";

const dir = new URL(".", import.meta.url);
const tests = readdirSync(dir)
  .filter((f) => f.endsWith(".test.ts") && f !== "coverage.test.ts")
  .map((f) => readFileSync(new URL(f, dir), "utf8"));

const defs = definitionsOf(programWith("x[n,d]", "[n,d]", ["a[n,d] = x[n,d]*g[d]", "b[n,d] = exp(x[n,d])"]), ctx);
const tables = [
  ...expandRules(),
  ...expandRules({ everywhere: true }),
  ...unfoldRules(defs),
  ...foldDefinitionRules(defs.filter((d) => !d.monomial)),
  foldRule(defs, sizeOf, "mul"),
  FACTOR_RULE,
  MERGE_RULE,
  foldReductionRule([]),
  SECH_TANH,
].map((r) => r.name);
const passes = ["expand-definitions", "share-reduction", "invert-definition"];
const documented = readdirSync("docs")
  .filter((f) => f.endsWith(".md"))
  .flatMap((f) => [...readFileSync(`docs/${f}`, "utf8").matchAll(/^\d+\. \*\*([a-z-]+)\*\* \(/gm)].map((m) => m[1]!));

describe("rule tests", () => {
  it("the derivations in docs/ name rules (the scan below reads them)", () => {
    expect(new Set(documented).size).toBeGreaterThan(5);
  });

  for (const name of [...new Set([...tables, ...passes, ...documented])].sort()) {
    it(`${name} has an input ⇒ expected test in test/rules/`, () => {
      const named = tests.filter((t) => t.includes(`${name}:`) || t.includes(`"${name}"`) || t.includes(`(${name}`) || t.includes(`${name})`) || t.includes(`${name},`));
      expect(named.length, `no test in test/rules/ names ${name}`).toBeGreaterThan(0);
      expect(named.some((t) => /expectRewrite|toEqual|toBe\(/.test(t))).toBe(true);
    });
  }
});
