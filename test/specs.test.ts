/**
 * One property suite for every spec in specs/: the committed generated module's forward against the
 * reference interpreter's evaluation of the spec, and both backward kernels against each other and
 * against finite differences, over random sizes (1 included) and awkward data. A new spec gets all
 * of this by being added to specs/.
 */
import { describe, it } from "vitest";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { checkSpecModule, type Kernels, generatedModule } from "./harness.js";

/** Specs whose every output is a tie of several elements at constant data (a window's max). */
const TIES_EVERYWHERE_AT_CONSTANT = new Set(["maxpool2d"]);

const specDir = join(import.meta.dirname, "../specs");
const files = readdirSync(specDir).filter((f) => f.endsWith(".spec.ts")).sort();

describe.each(files)("specs/%s", (file) => {
  it("forward matches the spec's evaluation; naive, fused and finite differences agree", async () => {
    const p = checkSpec((await import(join(specDir, file))).default, file);
    const mod = (await generatedModule(p.name)) as unknown as Kernels;
    // max pooling of constant data ties every window: there finite differences give (max + min)/2 of
    // the directions, not the even split of CONTRACT §4.1, so ties are judged in test/conv.test.ts
    checkSpecModule(p, mod, 40, TIES_EVERYWHERE_AT_CONSTANT.has(p.name) ? ["normal", "large-mean", "tiny"] : undefined);
  });
});
