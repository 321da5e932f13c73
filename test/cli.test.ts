/**
 * The command line as users and outside checks run it: a spec the library does not have, in JSON
 * with 3-D indices, built by `backpass build` and imported; a bad spec; codegen --check on a stale
 * copy of the project. The command runs in-process through `run` (what bin/backpass.js calls).
 * That generated/ and docs/ are up to date is CI's own `npm run codegen -- --check` (.ci/run), not
 * repeated here; the suite's one spawn of bin/backpass.js is in cli-args.test.ts.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { cpSync, existsSync, mkdirSync, symlinkSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { addCount, checkModule, checkSpecModule, expectFewSkips, type FdCount, type Kernels } from "./harness.js";
import { prng } from "../compiler/ir/random.js";
import { run } from "../compiler/cli.js";

const root = join(import.meta.dirname, "..");
/** The command line in-process (`run`, as bin/backpass.js runs it), in `cwd`. */
async function runIn(cwd: string, ...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const status = await run(args, { cwd, stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { status, stdout, stderr };
}
const cli = (...args: string[]) => runIn(root, ...args);

mkdirSync(join(root, "test/.out"), { recursive: true });
const work = mkdtempSync(join(root, "test/.out/cli-"));

const instancenorm = {
  name: "instancenorm",
  description: "Instance normalization over s, per (b, c)",
  indices: { b: "B", c: "C", s: "S" },
  inputs: ["x[b,c,s]", "gamma[c]", "beta[c]"],
  constants: { eps: 1e-5 },
  steps: [
    "mu[b,c] = mean(x[b,c,s], s)",
    "xmu[b,c,s] = x[b,c,s] - mu[b,c]",
    "var[b,c] = mean(xmu[b,c,s]^2, s)",
    "xhat[b,c,s] = xmu[b,c,s] / sqrt(var[b,c] + eps)",
    "y[b,c,s] = gamma[c] * xhat[b,c,s] + beta[c]",
  ],
  output: "y",
};

describe("backpass build", () => {
  it("builds a 3-D JSON spec whose fused kernel agrees with naive and finite differences", async () => {
    const spec = join(work, "instancenorm.json");
    writeFileSync(spec, JSON.stringify(instancenorm));
    const r = await cli("build", spec, "--out", join(work, "out"));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const mod = (await import(join(work, "out/instancenorm.ts"))) as Kernels;
    const program = checkSpec(instancenorm);
    const count: FdCount = { judged: 0, skipped: 0 };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (B, C, S, seed) => {
        const rand = prng(seed);
        const inputs = {
          x: Float64Array.from({ length: B * C * S }, () => 4 * rand() - 2),
          gamma: Float64Array.from({ length: C }, () => 0.5 + rand()),
          beta: Float64Array.from({ length: C }, () => rand()),
        };
        addCount(count, checkModule(mod, program, { B, C, S }, inputs, rand));
      }),
      { numRuns: 60 },
    );
    expectFewSkips(count, "instancenorm");
    // the fused kernel shares the two reductions over s between dx and nothing else: no [B,C,S] temporary
    const fused = readFileSync(join(work, "out/instancenorm.ts"), "utf8").split("export function backwardFused")[1]!.split("export function doubleBackwardNaive")[0]!;
    expect(fused).toContain('const dx = output(into, "dx", B * C * S);');
    expect(fused).not.toMatch(/new Float64Array\(B \* C \* S\)/);
  });

  it.each([
    {
      name: "wse",
      description: "weighted squared error, a scalar loss",
      indices: { n: "N", d: "D" },
      inputs: ["y[n,d]", "t[n,d]", "w[d]"],
      steps: ["loss = sum(w[d]*(y[n,d] - t[n,d])^2, n, d) / N"],
      output: "loss",
    },
    {
      name: "norm2axes",
      description: "a normalization over two axes at once, with a per-channel scale",
      indices: { b: "B", h: "H", k: "W", c: "C" },
      inputs: ["x[b,h,k,c]", "g[c]"],
      constants: { eps: 1e-5 },
      steps: [
        "mu[b,c] = mean(x[b,h,k,c], h, k)",
        "xc[b,h,k,c] = x[b,h,k,c] - mu[b,c]",
        "var[b,c] = mean(xc[b,h,k,c]^2, h, k)",
        "y[b,h,k,c] = g[c] * xc[b,h,k,c] / sqrt(var[b,c] + eps)",
      ],
      output: "y",
    },
    {
      name: "powers",
      description: "negative and fractional powers, in the forward and in the derivatives",
      indices: { n: "N", d: "D" },
      inputs: ["x[n,d]"],
      steps: ["y[n,d] = 1/(1 + x[n,d]^2)^2 + (2 + x[n,d]^2)^-3 + sqrt(1 + x[n,d]^2)^3"],
      output: "y",
    },
    {
      name: "tanhmix",
      description: "a product inside a reduction that the fused kernel stores once (tanh(x) in dw)",
      indices: { n: "N", d: "D", k: "K" },
      inputs: ["x[n,d]", "w[d,k]"],
      steps: ["y[n,k] = sum(tanh(x[n,d]) * w[d,k], d)"],
      output: "y",
    },
  ])("builds the unseen spec $name from JSON and it passes the whole property check", async (spec) => {
    const file = join(work, `${spec.name}.json`);
    writeFileSync(file, JSON.stringify(spec));
    const r = await cli("build", file, "--out", join(work, "unseen"));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const mod = (await import(join(work, `unseen/${spec.name}.ts`))) as Kernels;
    checkSpecModule(checkSpec(spec), mod, 40);
  });

  it("builds a spec whose names the CAS reserves (e, pi, i) and checks its gradients", async () => {
    const spec = {
      name: "reserved",
      indices: { i: "I", k: "K" },
      inputs: ["e[i,k]", "pi[k]"],
      constants: { E: 2 },
      steps: ["exp1[i,k] = tanh(e[i,k] / E) * pi[k]", "i2[i] = sum(exp1[i,k] * e[i,k], k)", "out[i,k] = i2[i] - e[i,k]*pi[k]"],
      output: "out",
    };
    const file = join(work, "reserved.json");
    writeFileSync(file, JSON.stringify(spec));
    const r = await cli("build", file, "--out", join(work, "reserved"));
    expect(r.stderr).toBe("");
    const mod = (await import(join(work, "reserved/reserved.ts"))) as Kernels;
    checkSpecModule(checkSpec(spec), mod, 20);
  });

  it("points at the file, line and column of a typo in a .spec.ts file", async () => {
    const file = join(work, "typo.spec.ts");
    writeFileSync(
      file,
      [
        "export default {",
        '  name: "typo", indices: { n: "N", d: "D" }, inputs: ["x[n,d]", "gamma[d]"],',
        '  steps: ["mu[d] = mean(x[n,d], n)", "y[n,d] = gama[d] * (x[n,d] - mu[d])"],',
        '  output: "y",',
        "};",
      ].join("\n"),
    );
    const r = await cli("build", file, "--out", join(work, "typo"));
    expect(r.status).toBe(1);
    const rel = relative(root, file);
    expect(r.stderr).toBe(
      `${rel}:3:48: step 2 "y[n,d] = gama[d] * (x[n,d] - mu[d])": unknown name 'gama' (not an input, step, constant or size symbol)\n` +
        "    y[n,d] = gama[d] * (x[n,d] - mu[d])\n" +
        "             ^\n",
    );
    expect(existsSync(join(work, "typo/typo.ts"))).toBe(false);
  });

  it("reports every problem of a bad spec with its step and column, exits 1, and writes nothing", async () => {
    const bad = {
      ...instancenorm,
      name: "bad",
      steps: ["mu[b,c] = mean(x[b,c,s], t)", "xmu[b,c,s] = x[b,c,s] - mu[b,c]", "y[b,c,s] = gama[c] * xmu[b,c,s]"],
    };
    const spec = join(work, "bad.json");
    writeFileSync(spec, JSON.stringify(bad));
    const out = join(work, "bad-out");
    const r = await cli("build", spec, "--out", out);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`step 1 "mu[b,c] = mean(x[b,c,s], t)": mean over 't', which is not a declared index`);
    expect(r.stderr).toContain(`step 3 "y[b,c,s] = gama[c] * xmu[b,c,s]": unknown name 'gama'`);
    expect(r.stderr).toMatch(/\n {4}y\[b,c,s\] = gama\[c\] \* xmu\[b,c,s\]\n {15}\^/);
    expect(existsSync(out)).toBe(false); // not even the folder: nothing was built
  });

  it("codegen --check names every stale file in generated/ and docs/, and codegen repairs them", async () => {
    // a copy of the project (node_modules linked) with one stale module, one stale document and
    // one generated file whose spec is gone; three specs of the library and their files are enough
    // (every spec is built three times here), the hand-written docs are all there
    const copy = join(work, "project");
    const library = readdirSync(join(root, "specs")).filter((f) => f.endsWith(".spec.ts")).map((f) => f.replace(/\.spec\.ts$/, ""));
    const kept = ["softmax", "tanh", "mse"];
    const filter = (src: string) => {
      const name = basename(src).replace(/\.(spec\.ts|ts|md|svg|png)$/, "");
      return !library.includes(name) || kept.includes(name);
    };
    for (const d of ["bin", "compiler", "specs", "generated", "docs"]) cpSync(join(root, d), join(copy, d), { recursive: true, filter });
    cpSync(join(root, "package.json"), join(copy, "package.json"));
    symlinkSync(join(root, "node_modules"), join(copy, "node_modules"));
    writeFileSync(join(copy, "generated/softmax.ts"), "// edited by hand\n");
    writeFileSync(join(copy, "docs/tanh.md"), readFileSync(join(root, "docs/tanh.md"), "utf8").replace("## Cost", "## Cost (edited)"));
    cpSync(join(copy, "docs/mse.md"), join(copy, "docs/gone.md"));
    cpSync(join(copy, "generated/mse.ts"), join(copy, "generated/gone.ts"));
    const check = await runIn(copy, "codegen", "--check");
    expect(check.status).toBe(1);
    for (const f of ["generated/softmax.ts", "docs/tanh.md", "docs/gone.md", "generated/gone.ts"]) expect(check.stderr).toContain(f);
    expect(check.stderr).not.toContain("docs/spec-language.md");
    expect((await runIn(copy, "codegen")).status).toBe(0);
    expect((await runIn(copy, "codegen", "--check")).status).toBe(0);
    expect(existsSync(join(copy, "docs/gone.md"))).toBe(false);
    expect(existsSync(join(copy, "docs/spec-language.md"))).toBe(true);
    expect(readFileSync(join(copy, "generated/softmax.ts"), "utf8")).toBe(readFileSync(join(root, "generated/softmax.ts"), "utf8"));
  });

  it("builds byte-identical output twice", async () => {
    const a = await cli("build", join(root, "specs/batchnorm.spec.ts"), "--out", join(work, "same"));
    expect(a.status).toBe(0);
    const first = readFileSync(join(work, "same/batchnorm.ts"), "utf8");
    const b = await cli("build", join(root, "specs/batchnorm.spec.ts"), "--out", join(work, "same"));
    expect(b.status).toBe(0);
    expect(readFileSync(join(work, "same/batchnorm.ts"), "utf8")).toBe(first);
  });
});

process.on("exit", () => rmSync(work, { recursive: true, force: true }));
