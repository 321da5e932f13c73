/**
 * A spec is untrusted data. These tests put hostile text into every string a spec carries and
 * awkward identifiers into every name role, and check what reaches each sink:
 * - generated code: the module parses, its tokens outside comments and string literals are exactly
 *   those of the same spec with harmless text, it holds no invisible or control character, and it
 *   works (forward, both backward kernels, finite differences);
 * - Markdown (`explain`): rendered with markdown-it, the HTML holds no element, attribute or link
 *   that the text asked for;
 * - the terminal: spec errors carry no control character.
 * Names that JavaScript or the module itself uses (`let`, `constants`, `checkArray`, `toString`)
 * either work, keyed by the spec's own names, or are refused with a spec error saying why.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ts } from "ts-morph";
import MarkdownIt from "markdown-it";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compile } from "../compiler/driver.js";
import { SpecError } from "../compiler/parse/check.js";
import { explainMarkdown } from "../compiler/explain/document.js";
import { graphDot } from "../compiler/explain/graph.js";
import { addCount, checkModule, expectFewSkips, randomInputs, relErr, type FdCount, type Kernels, loadModule } from "./harness.js";
import { prng } from "../compiler/ir/random.js";
import { isDifferentiable, type Program } from "../compiler/ir/program.js";

const root = join(import.meta.dirname, "..");
mkdirSync(join(root, "test/.out"), { recursive: true });
const work = mkdtempSync(join(root, "test/.out/hostile-"));

/** Fragments that break out of comments, strings, templates, Markdown, HTML or a terminal. */
const FRAGMENTS = [
  "*/",
  "/*",
  "//",
  "`",
  "${",
  "}",
  "\n",
  "\r",
  "\u2028",
  "\u2029",
  "\u202e",
  "\u0000",
  "\x1b[31m",
  "\x1b]8;;https://example.com\x07",
  "\x9b2J",
  "<script>alert(1)</script>",
  "<img src=x onerror=alert(1)>",
  "[click](javascript:alert(1))",
  "![x](javascript:alert(1))",
  "<https://example.com>",
  "\"",
  "'",
  "\\",
  "\\u002a/",
  "-->",
  "]]>",
  "$$\\href{javascript:alert(1)}{x}$$",
  "# heading",
  "| a | b |",
  "\n\n    indented code\n\n",
  "\n2) item\n3. item\n- item\n+ item\n",
  "\n***\n---\n===\n",
  "\n> quote\n",
  "import('node:fs').then((fs) => fs.writeFileSync('pwned', '1'));",
];
const hostileText = fc.array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 6 })), { minLength: 1, maxLength: 8 }).map((xs) => xs.join(""));

/** Characters that must never appear in generated code or Markdown: controls, line separators, bidi. */
const INVISIBLE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/;

/** A small spec using every role: two sizes and letters, two inputs, a constant, a reduction, an output. */
function spec(n: Partial<Record<"name" | "description" | "l1" | "l2" | "s1" | "s2" | "x" | "g" | "c" | "m" | "y", string>> = {}, sep = " ") {
  const { name = "layer", l1 = "n", l2 = "d", s1 = "N", s2 = "D", x = "x", g = "g", c = "eps", m = "m", y = "y" } = n;
  return {
    name,
    ...(n.description === undefined ? {} : { description: n.description }),
    indices: { [l1]: s1, [l2]: s2 },
    inputs: [`${x}[${l1},${l2}]`, `${g}[${l2}]`],
    constants: { [c]: 0.5 },
    steps: [`${m}[${l2}] =${sep}sum(${x}[${l1},${l2}], ${l1}) / ${s1}`, `${y}[${l1},${l2}] = ${g}[${l2}] *${sep}(${x}[${l1},${l2}] - ${m}[${l2}])^2 + ${c} * ${x}[${l1},${l2}]`],
    output: y,
  };
}

/** The tokens of a module outside comments and string literals, as text. */
function codeTokens(code: string): string[] {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, code);
  const out: string[] = [];
  for (let t = scanner.scan(); t !== ts.SyntaxKind.EndOfFileToken; t = scanner.scan()) {
    if (t === ts.SyntaxKind.StringLiteral) out.push('"…"');
    else out.push(scanner.getTokenText());
  }
  return out;
}

function parses(code: string): void {
  const sf = ts.createSourceFile("m.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const diagnostics = (sf as unknown as { parseDiagnostics: readonly ts.Diagnostic[] }).parseDiagnostics;
  expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))).toEqual([]);
}

let counter = 0;
async function load(code: string): Promise<Kernels> {
  return loadModule<Kernels>(code, join(work, `m${counter++}.ts`));
}

/** The module as a user's toolchain loads it: written as a .ts file and imported. */
async function imported(code: string): Promise<Kernels> {
  const file = join(work, `m${counter++}.ts`);
  writeFileSync(file, code);
  return (await import(file)) as Kernels;
}

/**
 * The module at a few random points: forward against the interpreter, both kernels, finite
 * differences, which must settle and judge nearly every check (they are counted, not dropped).
 */
function works(p: Program, mod: Kernels, seed: number): void {
  const rand = prng(seed);
  const count: FdCount = { judged: 0, skipped: 0 };
  for (const sizes of [{ [p.sizes[0]!]: 1, [p.sizes[1]!]: 3 }, { [p.sizes[0]!]: 3, [p.sizes[1]!]: 2 }]) {
    const inputs = randomInputs(p, sizes, "normal", rand);
    addCount(count, checkModule(mod, p, sizes, inputs, rand));
    const grads = mod.backwardFused(new Float64Array(sizes[p.sizes[0]!]! * sizes[p.sizes[1]!]!).fill(1), mod.forward(inputs, sizes).cache);
    expect(Object.keys(grads).sort()).toEqual(p.inputs.map((t) => `d${t.name}`).sort());
  }
  expectFewSkips(count, p.name);
}

interface DoubleKernels extends Kernels {
  doubleBackwardNaive(gg: Record<string, Float64Array>, dout: Float64Array, cache: unknown): Record<string, Float64Array>;
  doubleBackwardFused(gg: Record<string, Float64Array>, dout: Float64Array, cache: unknown): Record<string, Float64Array>;
}

/** Both double backward kernels at a random point: keyed "d" + each input's name and "ddout", and agreeing. */
function doubleWorks(p: Program, mod: DoubleKernels, seed: number): void {
  const rand = prng(seed);
  const sizes = { [p.sizes[0]!]: 3, [p.sizes[1]!]: 2 };
  const inputs = randomInputs(p, sizes, "normal", rand);
  const { cache } = mod.forward(inputs, sizes);
  const gg = Object.fromEntries(p.inputs.filter(isDifferentiable).map((t) => [`d${t.name}`, (inputs[t.name] as Float64Array).map(() => rand() * 2 - 1)]));
  const dout = Float64Array.from({ length: 6 }, () => rand() * 2 - 1);
  const naive = mod.doubleBackwardNaive(gg, dout, cache);
  const fused = mod.doubleBackwardFused(gg, dout, cache);
  const keys = [...p.inputs.filter(isDifferentiable).map((t) => `d${t.name}`), "ddout"].sort();
  expect(Object.keys(naive).sort()).toEqual(keys);
  expect(Object.keys(fused).sort()).toEqual(keys);
  for (const key of keys) expect(relErr(fused[key]!, naive[key]!, 1e-12), key).toBeLessThan(1e-9);
}

describe("hostile text in a spec's strings", () => {
  // unformatted output has the same tokens as formatted output, and builds in a fraction of the time
  const plain = compile(spec({ description: "plain" }), { source: "plain.json", format: false });
  // the description and the source path reach the module's header and explain's title alone: the
  // property runs build without the double backward, whose kernels never print either
  const first = { format: false, doubleBackward: false } as const;
  const plainFirst = compile(spec({ description: "plain" }), { source: "plain.json", ...first });

  it("description and source path reach the module only inside comments and string literals", async () => {
    const base = codeTokens((await plainFirst).code);
    await fc.assert(
      fc.asyncProperty(hostileText, hostileText, async (description, source) => {
        const c = await compile(spec({ description }), { source, ...first });
        parses(c.code);
        expect(c.code).not.toMatch(INVISIBLE);
        expect(codeTokens(c.code)).toEqual(base);
      }),
      { numRuns: 60, seed: 11 },
    );
  });

  it("the issue's injection: a description that closes the header comment runs nothing when imported", async () => {
    const marker = join(work, "pwned");
    const description = `*/ import('node:fs').then((fs) => fs.writeFileSync(${JSON.stringify(marker)}, '1')); /*`;
    const source = `x*/ ;import('node:fs').then((fs) => fs.writeFileSync(${JSON.stringify(marker)}, '2'));/*/p.json`;
    const c = await compile(spec({ description }), { source });
    const mod = await imported(c.code);
    works(c.program, mod, 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(marker)).toBe(false);
  });

  it("steps that run over several lines (any whitespace, U+2028 included) stay inside their comments", async () => {
    const base = codeTokens((await plain).code);
    for (const sep of ["\n", "\r\n", "\u2028", "\u2029", "\n//", "\t\n \n"]) {
      if (sep.includes("//")) {
        // '//' is not whitespace: the step does not parse, and the error shows the text escaped
        await expect(compile(spec({ description: "plain" }, sep))).rejects.toThrow(SpecError);
        continue;
      }
      const c = await compile(spec({ description: "plain" }, sep), { source: "plain.json", format: false });
      parses(c.code);
      expect(c.code).not.toMatch(INVISIBLE);
      expect(codeTokens(c.code)).toEqual(base);
      works(c.program, await load(c.code), 2);
    }
  });

  it("explain's Markdown renders hostile text as text: no element, attribute, link or math it asked for", async () => {
    const md = new MarkdownIt({ html: true, linkify: true });
    const baseline = md.render(explainMarkdown(await plainFirst));
    const count = (html: string, re: RegExp) => (html.match(re) ?? []).length;
    await fc.assert(
      fc.asyncProperty(hostileText, async (description) => {
        const c = await compile(spec({ description }), { source: "p.json", ...first });
        const text = explainMarkdown(c);
        expect(text).not.toMatch(INVISIBLE);
        const html = md.render(text);
        // the description's text adds no tag, link, image or heading to the page
        // (a bare https:// address is linked as in any Markdown text; no other link can be made)
        for (const re of [/<script/g, /<img/g, /<a href="(?!https?:\/\/)/g, /<h[1-6]/g, /<table/g, /<code/g, /<pre/g, /<ol/g, /<ul/g, /<li/g, /<hr/g, /<blockquote/g, /<em>/g, /<strong>/g, /(href|src)=["']?javascript:/g])
          expect(count(html, re), `${re} in ${JSON.stringify(description)}`).toBe(count(baseline, re));
        // and it stays one block quote: the math delimiters are escaped
        expect(text.split("\n").filter((l) => l.startsWith(">")).join("\n")).not.toMatch(/(?<!\\)\$/);
      }),
      { numRuns: 60, seed: 12 },
    );
  });

  it("a description's indented lines and numbered lines stay text (the review's counterexample)", async () => {
    const render = async (description: string) => new MarkdownIt().render(explainMarkdown(await compile(spec({ description }), { format: false })));
    const html = await render("intro\n\n    indented\n\n2) two\n3. three");
    const baseline = await render("plain");
    for (const tag of ["<pre", "<ol", "<li", "<code"]) expect(html.split(tag).length, tag).toBe(baseline.split(tag).length);
    expect(html).toContain("2) two");
  });

  it("the graph's DOT source quotes every label", async () => {
    const c = await compile(spec({ description: "plain" }, "\n"), { source: "p.json", format: false });
    const dot = graphDot(c.program, c.backward);
    expect(dot).not.toMatch(INVISIBLE);
    // every line is one statement, edge or attribute list: the step's newline did not split one
    for (const line of dot.split("\n").slice(1, -2)) expect(line).toMatch(/^ {2}.*[;{}]$/);
  });

  it("spec errors show control characters escaped, never send them to the terminal", async () => {
    await fc.assert(
      fc.asyncProperty(hostileText, fc.constantFrom("name", "field", "letter", "step", "constant", "output"), async (text, role) => {
        const s: Record<string, unknown> = spec();
        if (role === "name") s["name"] = text;
        if (role === "field") s[text] = 1;
        if (role === "letter") s["indices"] = { [text]: "N", d: "D" };
        if (role === "step") s["steps"] = [`m[d] = sum(x[n,d], n) ${text}`, ...(s["steps"] as string[]).slice(1)];
        if (role === "constant") s["constants"] = { [text]: 1 };
        if (role === "output") s["output"] = text;
        try {
          await compile(s, { source: `${text}.json` });
        } catch (e) {
          expect(e).toBeInstanceOf(SpecError);
          const message = (e as SpecError).formatIn(JSON.stringify(s));
          expect(message).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
          expect((e as SpecError).message).not.toMatch(/\u001b/);
          return;
        }
        // only text that is a valid identifier, or mere whitespace in a step, builds
        expect(role === "step" ? /^\s*$/.test(text) : /^[A-Za-z_][A-Za-z0-9_]*$/.test(text)).toBe(true);
      }),
      { numRuns: 120, seed: 13 },
    );
  });
});

describe("long steps in error messages", () => {
  it("a problem deep inside a 20 kB step is shown as a window around it, the caret under the culprit", async () => {
    const long = `m[n,d] = ${Array.from({ length: 2000 }, (_, k) => `x[n,d]*${k}`).join(" + ")} + q[d]`;
    const s = { ...spec(), steps: [long, "y[n,d] = m[n,d] * x[n,d]"] };
    const e = await compile(s).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SpecError);
    const message = (e as SpecError).formatIn(JSON.stringify(s));
    expect(message.length).toBeLessThan(600);
    const [head, excerpt, caret] = message.split("\n") as [string, string, string];
    expect(head).toContain("unknown name 'q'");
    expect(excerpt.slice(caret.indexOf("^"), caret.indexOf("^") + 4)).toBe("q[d]");
  });

  it("the same problem repeated through a step is reported once", async () => {
    const long = `m[d] = ${Array.from({ length: 2000 }, (_, k) => `x[n,d]*${k}`).join(" + ")}`;
    const e = await compile({ ...spec(), steps: [long, "y[n,d] = m[d] * x[n,d]"] }).catch((x: unknown) => x);
    expect((e as SpecError).problems.map((q) => q.message)).toEqual(["index 'n' is free on the right but not on the left; sum over it or add it to the left"]);
  });
});

/** Identifiers that JavaScript, TypeScript, the module's own code or Object.prototype already use. */
const AWKWARD = [
  "let", "yield", "arguments", "eval", "await", "static", "enum", "implements", "interface", "package", "private", "var", "new", "delete", "in", "of",
  "undefined", "NaN", "Infinity", "Math", "Object", "Number", "Float64Array", "RangeError", "Array",
  "constructor", "toString", "valueOf", "hasOwnProperty", "isPrototypeOf", "prototype",
  "spec", "sizes", "constants", "inputs", "into", "dout", "cache", "values", "forward", "backwardNaive", "backwardFused",
  "checkSize", "checkConstant", "checkArray", "checkInto", "checkCache", "checkDisjoint", "overlaps", "cacheArrays", "acc", "h", "t", "c", "r", "let_", "_1", "_2d", "own", "output",
];
const ROLES = ["name", "l1", "l2", "s1", "s2", "x", "g", "c", "m", "y"] as const;

describe("names that the language or the module already uses", () => {
  // spec k gives role r the name AWKWARD[(k + r) mod AWKWARD.length]: every name meets every role,
  // and every name in a spec is awkward at once
  it.each(AWKWARD.map((_, k) => k))("spec %i, all of whose names are awkward, builds a working module keyed by its names", async (k) => {
    const names = Object.fromEntries(ROLES.map((role, r) => [role, AWKWARD[(k + r) % AWKWARD.length]!]));
    // the two refusals have their own tests below
    if (names["y"] === "cache") names["y"] = "y";
    for (const input of ["x", "g"]) if (names[input] === "dout") names[input] = "dout_";
    // the double backward's kernels print the same names through the same emitter, and cost twice
    // the rest of a build: every third spec builds them, so every name reaches them in 3 or 4 of its roles
    const c = await compile(spec(names), { source: "names.json", format: false, doubleBackward: k % 3 === 0 });
    expect([c.program.name, ...c.program.sizes, ...Object.keys(c.program.letters), ...c.program.inputs.map((t) => t.name), ...c.program.steps.map((t) => t.name)].sort()).toEqual(
      ROLES.filter((r) => r !== "c").map((r) => names[r]!).sort(),
    );
    parses(c.code);
    const mod = await load(c.code);
    try {
      works(c.program, mod, k);
      if (k % 3 === 0) doubleWorks(c.program, mod as DoubleKernels, k);
    } catch (e) {
      throw new Error(`${JSON.stringify(names)}: ${(e as Error).message}`);
    }
  });

  it.each([{ g: "dx" }, { m: "dx" }, { m: "dg" }, { y: "dm" }, { x: "dy" }, { x: "dg", g: "g" }])("names that are 'd' + another name (%o) build and work", async (names) => {
    const c = await compile(spec(names), { format: false });
    works(c.program, await load(c.code), 5);
  });

  it("'__proto__' is refused in every role that keys an object, with the reason", async () => {
    for (const role of ["l1", "l2", "s1", "s2", "x", "g", "c", "m", "y"] as const) {
      const attempt = compile(spec({ [role]: "__proto__" }));
      await expect(attempt, role).rejects.toThrow(SpecError);
      await expect(attempt, role).rejects.toThrow(/__proto__' (cannot be a name|is already the prototype slot)/);
    }
  });

  it("an output named 'cache' is refused: forward() returns { <output>, cache }", async () => {
    await expect(compile(spec({ y: "cache" }))).rejects.toThrow("output: 'cache' cannot be the output");
  });

  it("an input with a gradient named 'dout' is refused: the double backward's result keys dout's own gradient 'ddout'", async () => {
    for (const role of ["x", "g"] as const) await expect(compile(spec({ [role]: "dout" })), role).rejects.toThrow("inputs: 'dout' cannot be the name of an input with a gradient");
    // without a gradient it has no key there, and builds
    const c = await compile({ ...spec({ g: "dout" }), inputs: ["x[n,d]", "dout[d]: nograd"] }, { format: false });
    doubleWorks(c.program, (await load(c.code)) as DoubleKernels, 3);
  });
});
