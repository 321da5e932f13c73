/**
 * The function rule `merge-sums` (compiler/simplify/merge.ts), a documented exception to rules as
 * data: input ⇒ expected, and the cases it must leave alone.
 */
import { describe, it } from "vitest";
import { MERGE_RULE } from "../../compiler/simplify/merge.js";
import { expectNoRewrite, expectRewrite } from "./helpers.js";

describe("merge-sums", () => {
  it("merges reductions over the same index sizes and free indices into one", () => {
    expectRewrite([MERGE_RULE], "g[d]*sum(x[n,d], n) + s*sum(y[m,d]*x[m,d], m)", "sum(g[d]*x[n,d] + s*y[n,d]*x[n,d], n)");
  });

  it("leaves reductions over different sizes, or a factor using another index, alone", () => {
    expectNoRewrite([MERGE_RULE], "sum(x[n,d], n, d) + sum(g[d], d)", "");
    expectNoRewrite([MERGE_RULE], "x[n,d]*sum(y[m,d], m) + sum(x[m,d], m)", "[n,d]");
  });
});
