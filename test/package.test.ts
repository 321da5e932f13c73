/**
 * The package as a user gets it (CONTRACT §5): `npm pack` (which builds dist/), then the tarball
 * installed into two fresh projects, one CommonJS and one `"type": "module"`, and used from there:
 * `npx backpass --help/--version`, `build` of a `.spec.ts` (importing `defineSpec` from "backpass"
 * and a helper module) and of a `.json` spec in both formats, plain `node` running the `.js`
 * output, `require`/`import` of "backpass" giving a working `compile()`, and TypeScript reading
 * the types of both entries and of a generated `.d.ts`.
 *
 * The install runs offline: `npm ci --offline` from a lock file made of the repository's own
 * (its entries that are not dev-only, which are backpass's dependencies), so every tarball comes
 * from the npm cache that the repository's `npm ci` filled. The install must print no `npm warn`.
 * About 40-60 s, most of it in `npm pack` and the builds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../compiler/driver.js";

const root = join(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "backpass-package-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string; license: string; dependencies: Record<string, string>; bin: Record<string, string>; engines: Record<string, string> };
const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };

/** Runs a command; fails the test with its output if it exits non-zero (unless `allowFail`). */
function sh(cwd: string, cmd: string, args: readonly string[], allowFail = false): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_update_notifier: "false" } });
  if (!allowFail && r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

let tarball = "";
/**
 * The command npm linked into a project's node_modules/.bin, which `npx backpass` runs: `npx`
 * itself is run once per project (--help), since it adds about a second to every call.
 */
const bin = "node_modules/.bin/backpass";
const installs = new Map<string, string>();

const tiny = { name: "tiny", indices: { n: "N" }, inputs: ["x[n]"], steps: ["y[n] = tanh(x[n])"], output: "y" };

/** A fresh project of the given type with the tarball installed; its folder. */
function project(type: "commonjs" | "module"): string {
  const dir = join(work, type);
  mkdirSync(dir);
  const spec = `file:${tarball}`;
  const packages: Record<string, unknown> = {
    "": { name: `p-${type}`, version: "1.0.0", dependencies: { backpass: spec } },
    "node_modules/backpass": { version: pkg.version, resolved: spec, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path && !entry.dev && !entry.devOptional) packages[path] = entry;
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `p-${type}`, version: "1.0.0", type, dependencies: { backpass: spec } }, null, 2));
  writeFileSync(join(dir, "package-lock.json"), JSON.stringify({ name: `p-${type}`, version: "1.0.0", lockfileVersion: 3, requires: true, packages }, null, 2));
  const r = sh(dir, "npm", ["ci", "--offline", "--no-audit", "--no-fund"]);
  installs.set(type, `${r.stdout}${r.stderr}`);
  // a spec that imports defineSpec from the package and a helper module by its .js name
  writeFileSync(join(dir, "parts.ts"), `export const steps: string[] = ["mu[d] = 1/N * sum(x[n,d], n)", "y[n,d] = (x[n,d] - mu[d]) * g[d]"];\n`);
  writeFileSync(
    join(dir, "center.spec.ts"),
    `import { defineSpec } from "backpass";\nimport { steps } from "./parts.js";\n\ninterface Unused { a: number }\nexport default defineSpec({ name: "center", indices: { n: "N", d: "D" }, inputs: ["x[n,d]", "g[d]"], steps, output: "y" });\n`,
  );
  writeFileSync(join(dir, "tiny.json"), JSON.stringify(tiny));
  return dir;
}

beforeAll(() => {
  sh(root, "npm", ["pack", "--pack-destination", work]);
  const tgz = readdirSync(work).filter((f) => f.endsWith(".tgz"));
  expect(tgz).toHaveLength(1);
  tarball = join(work, tgz[0]!);
}, 120_000);

describe("the packed tarball", () => {
  it("holds bin/, dist/ (with both entries and their types), package.json and README.md, and no sources or tests", () => {
    const files = sh(work, "tar", ["-tzf", tarball]).stdout.trim().split("\n").map((f) => f.replace(/^package\//, ""));
    for (const f of ["package.json", "README.md", "bin/backpass.js", "dist/main.js", "dist/index.js", "dist/index.d.ts", "dist/index.cjs", "dist/index.d.cts", "dist/parse/spec-hooks.js", "dist/differentiate/cas-worker.mjs"]) expect(files).toContain(f);
    expect(files.filter((f) => /^(test|bench|\.ci|compiler|specs|generated|scripts|docs|node_modules)\//.test(f))).toEqual([]);
  });
});

describe.each(["commonjs", "module"] as const)("installed into a %s project", (type) => {
  let dir = "";
  beforeAll(() => {
    dir = project(type);
  }, 120_000);

  it("installs offline without a single npm warning", () => {
    expect(installs.get(type)).toMatch(/added \d+ packages/);
    expect(installs.get(type)!.split("\n").filter((l) => /npm warn/i.test(l))).toEqual([]);
  });

  it("answers --help and --version at once, loading neither the compiler nor a TypeScript loader", () => {
    const help = sh(dir, "npx", ["backpass", "--help"]);
    expect(help.stdout).toContain("backpass build <spec.spec.ts|spec.json ...> --out <dir>");
    expect(sh(dir, bin, ["build", "--help"]).stdout).toContain("--format ts|js");
    expect(sh(dir, bin, ["--version"]).stdout).toBe(`${pkg.version}\n`);
    // every module that `backpass --version` resolves, logged by a resolve hook
    const log = join(dir, "resolved.log");
    writeFileSync(join(dir, "hook.mjs"), `import { appendFileSync } from "node:fs";\nexport async function resolve(s, c, next) {\n  const r = await next(s, c);\n  appendFileSync(${JSON.stringify(log)}, r.url + "\\n");\n  return r;\n}\n`);
    writeFileSync(join(dir, "probe.mjs"), `import { register } from "node:module";\nregister("./hook.mjs", import.meta.url);\n`);
    const started = performance.now();
    const r = sh(dir, process.execPath, ["--import", "./probe.mjs", "node_modules/backpass/bin/backpass.js", "--version"]);
    const ms = performance.now() - started;
    expect(r.stdout).toBe(`${pkg.version}\n`);
    const urls = readFileSync(log, "utf8");
    expect(urls).toContain("/node_modules/backpass/dist/main.js");
    expect(urls).not.toMatch(/ts-morph|prettier|nerdamer|viz-js|tsx|esbuild|typescript|driver\.js/);
    console.log(`backpass --version in a ${type} project: ${ms.toFixed(0)} ms (with the probe)`);
  });

  it("builds a .spec.ts and a .json spec as .ts, and as .js + .d.ts that plain node runs", async () => {
    const ts = sh(dir, bin, ["build", "center.spec.ts", "tiny.json", "--out", "out-ts"]);
    expect(ts.stderr).toBe("");
    expect(readdirSync(join(dir, "out-ts")).sort()).toEqual(["center.ts", "tiny.ts"]);
    // the installed build is the repository's, CAS worker included: byte for byte the same module
    const installed = readFileSync(join(dir, "out-ts/tiny.ts"), "utf8");
    expect(installed).not.toContain("own rule");
    expect(installed).toBe((await compile(tiny, { source: "tiny.json", rebuild: "npx backpass build tiny.json --out out-ts" })).code);
    expect(readFileSync(join(dir, "out-ts/center.ts"), "utf8")).toContain("Do not edit: change the spec and run `npx backpass build center.spec.ts --out out-ts`.");
    const js = sh(dir, bin, ["build", "center.spec.ts", "tiny.json", "--out", "out-js", "--format", "js"]);
    expect(js.stderr).toBe("");
    expect(readdirSync(join(dir, "out-js")).sort()).toEqual(["center.d.ts", "center.js", "tiny.d.ts", "tiny.js"]);
    const main = [
      `const N = 3, D = 2, x = Float64Array.from({ length: N * D }, (_, i) => Math.sin(i + 1)), g = new Float64Array([2, 3]);`,
      `const { y, cache } = m.forward({ x, g }, { N, D });`,
      `const dout = Float64Array.from({ length: N * D }, (_, i) => i - 2);`,
      `const fused = m.backwardFused(dout, cache), naive = m.backwardNaive(dout, cache);`,
      `console.log(JSON.stringify({ y: Array.from(y), fused: Array.from(fused.dx), naive: Array.from(naive.dx), dg: Array.from(fused.dg) }));`,
    ].join("\n");
    const runs = [`import("./out-js/center.js").then((m) => {\n${main}\n});`];
    if (type === "commonjs") runs.push(`const m = require("./out-js/center.js");\n${main}`);
    for (const code of runs) {
      const r = sh(dir, process.execPath, ["-e", code]);
      expect(r.stderr).toBe("");
      const out = JSON.parse(r.stdout) as { y: number[]; fused: number[]; naive: number[]; dg: number[] };
      const x = Array.from({ length: 6 }, (_, i) => Math.sin(i + 1));
      const mu = [0, 1].map((d) => (x[d]! + x[2 + d]! + x[4 + d]!) / 3);
      out.y.forEach((v, i) => expect(v).toBeCloseTo((x[i]! - mu[i % 2]!) * [2, 3][i % 2]!, 12));
      // dx = g*(dout - mean_n dout); dout's column means are 0 and 1
      out.fused.forEach((v, i) => expect(v).toBeCloseTo([2, 3][i % 2]! * (i - 2 - [0, 1][i % 2]!), 12));
      out.naive.forEach((v, i) => expect(v).toBeCloseTo(out.fused[i]!, 12));
      expect(out.dg).toHaveLength(2);
    }
  });

  it("gives a working compile() through require and import, rejecting a bad spec with the CLI's message", () => {
    const check = [
      `const r = await api.compile(${JSON.stringify(tiny)}, { format: "js", module: "cjs" });`,
      `const m = { exports: {} }; new Function("exports", "module", r.files["tiny.js"])(m.exports, m);`,
      `const { y } = m.exports.forward({ x: new Float64Array([0.5]) }, { N: 1 });`,
      `let message = "", isSpecError = false;`,
      `try { await api.compile({ ...${JSON.stringify(tiny)}, steps: ["y[n] = tanh(q[n])"] }); } catch (e) { message = e.message; isSpecError = e instanceof api.SpecError; }`,
      `let wasm = ""; try { await api.compile(${JSON.stringify(tiny)}, { target: "wasm" }); } catch (e) { wasm = e.message; }`,
      `console.log(JSON.stringify({ files: Object.keys(r.files), y: y[0], message, isSpecError, wasm, stats: Object.keys(await api.stats(${JSON.stringify(tiny)})) }));`,
    ].join("\n");
    const entries = [`import("backpass").then(async (api) => {\n${check}\n});`];
    if (type === "commonjs") entries.push(`const api = require("backpass");\n(async () => {\n${check}\n})();`);
    for (const code of entries) {
      const r = sh(dir, process.execPath, ["-e", code]);
      expect(r.stderr).toBe("");
      const out = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(out).toMatchObject({ files: ["tiny.js", "tiny.d.ts"], isSpecError: true, stats: ["spec", "largest", "at", "naive", "fused"] });
      expect(out["y"]).toBeCloseTo(Math.tanh(0.5), 12);
      expect(out["message"]).toBe(`step 1 "y[n] = tanh(q[n])": unknown name 'q' (not an input, step, constant or size symbol)\n    y[n] = tanh(q[n])\n                ^`);
      expect(out["wasm"]).toContain("target 'wasm' is not supported yet");
    }
  });

  // one project suffices: its .mts and .cts files take each entry
  it.runIf(type === "module")("types both entries and the generated .d.ts for TypeScript (nodenext), which catches a wrong option", () => {
    sh(dir, bin, ["build", "tiny.json", "--out", "out-types", "--format", "js"]);
    writeFileSync(
      join(dir, "use.mts"),
      `import { compile, defineSpec, SpecError, type CompileResult } from "backpass";\nimport { forward, backwardFused } from "./out-types/tiny.js";\nconst spec = defineSpec(${JSON.stringify(tiny)});\nexport const r: CompileResult = await compile(spec, { format: "js", dtype: "float32" });\nconst { y, cache } = forward({ x: new Float64Array(2) }, { N: 2 });\nexport const dx: Float64Array = backwardFused(y, cache).dx;\nexport const isSpecError = (e: unknown): e is SpecError => e instanceof SpecError;\n`,
    );
    writeFileSync(join(dir, "use.cts"), `import { compile, SpecError } from "backpass";\nexport async function names(): Promise<string[]> {\n  try {\n    return Object.keys((await compile({})).files);\n  } catch (e) {\n    if (e instanceof SpecError) return e.problems.map((p) => p.message);\n    throw e;\n  }\n}\n`);
    writeFileSync(join(dir, "bad.mts"), `import { compile } from "backpass";\nawait compile({}, { format: "xml" });\n`);
    const tsconfig = (files: string[]) => JSON.stringify({ compilerOptions: { module: "nodenext", strict: true, noEmit: true, types: [] }, files });
    const tsc = join(root, "node_modules/.bin/tsc");
    writeFileSync(join(dir, "tsconfig.json"), tsconfig(["use.mts", "use.cts"]));
    expect(sh(dir, tsc, ["-p", "."], true).stdout).toBe("");
    writeFileSync(join(dir, "tsconfig.json"), tsconfig(["bad.mts"]));
    expect(sh(dir, tsc, ["-p", "."], true).stdout).toContain(`Type '"xml"' is not assignable`);
  });

  it("reports a bad .spec.ts with exit 1 and its file and line, writing nothing", () => {
    writeFileSync(join(dir, "bad.spec.ts"), `import { defineSpec } from "backpass";\nexport default defineSpec({ name: "bad", indices: { n: "N" }, inputs: ["x[n]"],\n  steps: ["y[n] = tanh(q[n])"], output: "y" });\n`);
    const r = sh(dir, bin, ["build", "bad.spec.ts", "--out", "out-bad"], true);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^bad\.spec\.ts:3:\d+: step 1 "y\[n\] = tanh\(q\[n\]\)": unknown name 'q'/);
    expect(readdirSync(dir)).not.toContain("out-bad");
  });
});
