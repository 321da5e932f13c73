/**
 * The derivation documents are checked proofs, not prose. For every library spec:
 * - every LaTeX formula in docs/<name>.md renders with KaTeX;
 * - docs/<name>.svg is well-formed XML with one node per input and step (and one for the upstream
 *   gradient of each output);
 * - replaying the listed rewrites, in order, on the inlined gradients gives exactly the fused form;
 * - `backpass explain` writes the same two files for a spec given on the command line.
 * (test/derivation.test.ts checks that each rewrite keeps the value at random points.)
 */
import { describe, expect, it } from "vitest";
import katex from "katex";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { deriveLibrary } from "./harness.js";
import { run } from "../compiler/cli.js";
import { replaceNode } from "../compiler/ir/expr.js";
import { rewriteList } from "../compiler/explain/document.js";

const root = join(import.meta.dirname, "..");
const specDir = join(root, "specs");
const files = readdirSync(specDir).filter((f) => f.endsWith(".spec.ts")).sort();

/** Display blocks ($$ ... $$) and inline formulas ($ ... $) of a Markdown text, outside code. */
export function formulas(md: string): { tex: string; display: boolean }[] {
  const text = md.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  const out: { tex: string; display: boolean }[] = [];
  const rest = text.replace(/\$\$\n?([\s\S]*?)\n?\s*\$\$/g, (_, tex: string) => {
    out.push({ tex, display: true });
    return "";
  });
  for (const m of rest.matchAll(/\$([^$\n]+)\$/g)) out.push({ tex: m[1]!, display: false });
  return out;
}

describe.each(files)("docs for %s", (file) => {
  const name = file.replace(/\.spec\.ts$/, "");
  it("every formula renders with KaTeX", async () => {
    const md = readFileSync(join(root, "docs", `${name}.md`), "utf8");
    const fs = formulas(md);
    expect(fs.length).toBeGreaterThan(5);
    for (const f of fs) expect(() => katex.renderToString(f.tex, { displayMode: f.display, throwOnError: true, strict: "error" }), f.tex).not.toThrow();
  });

  it("the graph is well-formed SVG with a node per input and step", async () => {
    const c = await deriveLibrary(name);
    const svg = readFileSync(join(root, "docs", `${c.program.name}.svg`), "utf8");
    expect(XMLValidator.validate(svg)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as { svg: { g: { g: { "@_class": string; title: string }[] } } };
    const nodes = doc.svg.g.g.filter((g) => g["@_class"] === "node").map((g) => String(g.title));
    expect(nodes.sort()).toEqual([...c.program.inputs.map((t) => t.name), ...c.program.steps.map((s) => s.name), ...c.program.outputs.map((o) => `d${o}`)].sort());
    const edges = doc.svg.g.g.filter((g) => g["@_class"] === "edge");
    // one forward edge per tensor read, and a backward edge for each gradient contribution
    expect(edges.length).toBeGreaterThanOrEqual(c.program.steps.length);
  });

  it("replaying the listed rewrites gives the fused form", async () => {
    const c = await deriveLibrary(name);
    const sizeOf = c.program.sizeOf;
    let grads = [...c.fused.phases[0]!.gradients];
    for (const r of rewriteList(c)) {
      const targets = r.gradients ?? grads.map((_, k) => k);
      grads = grads.map((g, k) => (targets.includes(k) ? replaceNode(g, r.before, r.after, sizeOf) : g));
    }
    expect(grads).toEqual(c.fused.gradients);
  });
});

describe("backpass explain", () => {
  // in-process, through `run` (what bin/backpass.js calls); cli.test.ts runs the real command once
  it("writes the document and the graph of a spec given on the command line", async () => {
    mkdirSync(join(root, "test/.out"), { recursive: true });
    const out = mkdtempSync(join(root, "test/.out/explain-"));
    let stderr = "";
    const status = await run(["explain", "specs/softmax.spec.ts", "--out", out], { cwd: root, stdout: () => undefined, stderr: (s) => (stderr += s) });
    expect(stderr).toBe("");
    expect(status).toBe(0);
    expect(readFileSync(join(out, "softmax.md"), "utf8")).toBe(readFileSync(join(root, "docs/softmax.md"), "utf8"));
    expect(readFileSync(join(out, "softmax.svg"), "utf8")).toBe(readFileSync(join(root, "docs/softmax.svg"), "utf8"));
  });
});

describe("local partials print in their step's naming context", () => {
  // d/dp[i,j] of o[i,f] = sum(p[i,j]*v[j,f], j) is v[j,f]: printed alone, the bound j of v read as i
  it("attention's naive kernel and document name the partials of o's step right", async () => {
    const code = readFileSync(join(import.meta.dirname, "../generated/attention.ts"), "utf8");
    expect(code).toContain("local derivative ∂/∂p[i,j] = v[j,f]");
    expect(code).toContain("local derivative ∂/∂v[j,f] = p[i,j]");
    const doc = readFileSync(join(import.meta.dirname, "../docs/attention.md"), "utf8");
    expect(doc).toContain("{\\partial p_{i,j}} = v_{j,f}");
  });

  it("in every generated module, an index of a printed partial is the step's own or one of the occurrence's", () => {
    const dir = join(import.meta.dirname, "../generated");
    for (const f of readdirSync(dir).filter((x) => x.endsWith(".ts"))) {
      const code = readFileSync(join(dir, f), "utf8");
      let lhs: string[] = [];
      for (const line of code.split("\n")) {
        const step = /\/\/ step \d+ reversed: \w+\[([\w,]*)\]/.exec(line);
        if (step) lhs = step[1]!.split(",").filter(Boolean);
        const m = /local derivative ∂\/∂(\w+)(?:\[([\w,']*)\])? = (.*?)( \(own rule|$)/.exec(line);
        if (!m) continue;
        const occurrence = (m[2] ?? "").split(",").filter(Boolean);
        const used = [...m[3]!.matchAll(/\[([\w,']+)\]/g)].flatMap((x) => x[1]!.split(","));
        // or an index the partial binds itself (sum(exp(z[n,c']), c'), sum(w[o,c,p,q]*..., p, q))
        const bound = used.filter((i) => m[3]!.includes(`, ${i})`) || m[3]!.includes(`, ${i}, `));
        for (const i of used) expect([...lhs, ...occurrence, ...bound], `${f}: ${line.trim()}`).toContain(i);
      }
    }
  });
});
