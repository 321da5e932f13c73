/**
 * Every rule has its own input ⇒ expected test file, named for it: each rule name of the rule
 * tables, of the rules the steps make, of the function rules, of the rewrites the phases record, and
 * each name a derivation in docs/ records, has `test/rules/<name>.test.ts`, which names it beside an
 * expectation. A name recorded only by a pass (vanish, share, outputs, inline) is tested in the
 * pass's file, `test/rules/<pass>.test.ts`, and every pass has one. The names are read from the
 * code: the rule objects, and the `rule: "..."` records and `kind: "pass"` phases of
 * compiler/simplify/.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { expandRules } from "../../compiler/simplify/rules.js";
import { FACTOR_RULE } from "../../compiler/simplify/factor.js";
import { MERGE_RULE } from "../../compiler/simplify/merge.js";
import { foldReductionRule } from "../../compiler/simplify/regroup.js";
import { foldDefinitionRules, foldInverseRules, foldRule, unfoldRules, definitionsOf } from "../../compiler/simplify/definitions.js";
import { EXP_FORMS, SECH_TANH } from "../../compiler/simplify/outputs.js";
import { SPLIT_BY_PARTNER_RULE } from "../../compiler/simplify/partners.js";
import { sechThroughTanh } from "../../compiler/simplify/tanh.js";
import { derive } from "../../compiler/driver.js";
import { ctx, programWith, sizeOf } from "./helpers.js";

const dir = new URL(".", import.meta.url);
const testFile = (name: string) => new URL(`${name}.test.ts`, dir);
const read = (name: string) => readFileSync(testFile(name), "utf8");
const tests = readdirSync(dir)
  .filter((f) => f.endsWith(".test.ts") && f !== "coverage.test.ts")
  .map((f) => readFileSync(new URL(f, dir), "utf8"));

const defs = definitionsOf(programWith("x[n,d]", "[n,d]", ["a[n,d] = x[n,d]*g[d]", "b[n,d] = exp(x[n,d])"]), ctx);
const tables = [
  ...expandRules(),
  ...expandRules({ everywhere: true }),
  ...unfoldRules(defs),
  ...foldDefinitionRules(defs.filter((d) => !d.monomial)),
  ...foldInverseRules(programWith("x[n,d]", "[n,d]", ["l[n] = log(sum(exp(x[n,d]), d))"])),
  foldRule(defs, sizeOf, "mul"),
  foldRule(defs, sizeOf, "pow"),
  FACTOR_RULE,
  MERGE_RULE,
  foldReductionRule([]),
  SPLIT_BY_PARTNER_RULE,
  SECH_TANH,
  sechThroughTanh(new Set()),
  ...EXP_FORMS,
].map((r) => r.name);

// the rewrites the phases record by name (`rule: "share-reduction"`), each with the module that records it
const simplify = "compiler/simplify";
const recorded = readdirSync(simplify)
  .filter((f) => f.endsWith(".ts"))
  .flatMap((f) => [...readFileSync(`${simplify}/${f}`, "utf8").matchAll(/\brule: "([a-z-]+)"/g)].map((m) => ({ name: m[1]!, module: f.replace(/\.ts$/, "") })));
// the phases that are passes, not rule sets: the table's `kind: "pass"` entries, and the first phase (inline), which records nothing
const passPhases = [...readFileSync(`${simplify}/fused.ts`, "utf8").matchAll(/kind: "pass", name: "([a-z-]+)"/g)].map((m) => m[1]!);
const firstPhase = derive({ name: "t", indices: { n: "N" }, inputs: ["x[n]"], steps: ["y[n] = exp(x[n])"], output: "y" }).then((d) => d.fused.phases[0]!.name);

const documented = readdirSync("docs")
  .filter((f) => f.endsWith(".md"))
  .flatMap((f) => [...readFileSync(`docs/${f}`, "utf8").matchAll(/^\d+\. \*\*([a-z-]+)\*\* \(/gm)].map((m) => m[1]!));

/** The file that tests rule `name`: its own, or, for a name only a pass records, the pass's. */
function fileOf(name: string): string {
  if (tables.includes(name)) return name;
  const by = recorded.filter((r) => r.name === name).map((r) => r.module);
  return by.length > 0 && by.every((m) => passPhases.includes(m)) ? by[0]! : name;
}

const names = [...new Set([...tables, ...recorded.map((r) => r.name), ...documented])].sort();

describe("rule tests", () => {
  it("the scans below find the rules, the records, the passes and the derivations in docs/", async () => {
    expect(new Set(tables).size).toBeGreaterThan(10);
    expect(new Set(recorded.map((r) => r.name)).size).toBeGreaterThanOrEqual(4);
    expect(passPhases.length).toBeGreaterThanOrEqual(3);
    expect(await firstPhase).toBe("inline");
    expect(new Set(documented).size).toBeGreaterThan(5);
  });

  it("every rule a derivation in docs/ records is one the code names", () => {
    expect(documented.filter((n) => !tables.includes(n) && !recorded.some((r) => r.name === n))).toEqual([]);
  });

  for (const name of names) {
    it(`${name} has an input ⇒ expected test in test/rules/${fileOf(name)}.test.ts`, () => {
      const file = fileOf(name);
      expect(existsSync(testFile(file)), `no test/rules/${file}.test.ts for ${name}`).toBe(true);
      const text = read(file);
      expect(text.includes(name), `test/rules/${file}.test.ts does not name ${name}`).toBe(true);
      expect(/expectRewrite|toEqual|toBe\(/.test(text)).toBe(true);
      const named = tests.filter((t) => t.includes(`${name}:`) || t.includes(`"${name}"`) || t.includes(`(${name}`) || t.includes(`${name})`) || t.includes(`${name},`));
      expect(named.length, `no test in test/rules/ names ${name}`).toBeGreaterThan(0);
    });
  }

  it("every pass has its own test file", async () => {
    for (const pass of [...passPhases, await firstPhase]) {
      expect(existsSync(testFile(pass)), `no test/rules/${pass}.test.ts`).toBe(true);
      expect(/toEqual|toBe\(/.test(read(pass))).toBe(true);
    }
  });

  it("every test file in test/rules/ is a rule's or a pass's, or one of the shared ones", async () => {
    const own = new Set([...names.map(fileOf), ...passPhases, await firstPhase, "pattern", "cost", "coverage"]);
    const files = readdirSync(dir).filter((f) => f.endsWith(".test.ts")).map((f) => f.replace(/\.test\.ts$/, ""));
    expect(files.filter((f) => !own.has(f))).toEqual([]);
  });
});
