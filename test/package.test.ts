/**
 * The package as a user gets it (CONTRACT §5): `npm pack` (which builds dist/), then the tarball
 * installed into a fresh CommonJS project, which holds a `"type": "module"` project in a folder of
 * its own (it resolves "backpass" from its parent's node_modules, as a package of a monorepo
 * does), and used from both:
 * `npx backpass --help/--version`, `build` of a `.spec.ts` (importing `defineSpec` from "backpass"
 * and a helper module) and of a `.json` spec in both formats, a bad `.spec.ts` reported with its
 * file and line, plain `node` running the `.js` output, `require`/`import` of "backpass" giving a
 * working `compile()`, and TypeScript reading the types of both entries and of a generated `.d.ts`.
 *
 * The install runs offline: `npm ci --offline` from a lock file made of the repository's own
 * (its entries that are not dev-only, which are backpass's dependencies), so every tarball comes
 * from the npm cache that the repository's `npm ci` filled. The install must print no `npm warn`.
 *
 * Nearly all the time goes to child processes, most of it to loading the compiler, so the tarball
 * is packed and installed once, every command of both projects starts as soon as what it needs is
 * there and each test awaits the commands it judges. The compiler loads three times, not ten: the
 * `.js` build of each project also reports the bad `.spec.ts`, and the ES module project's is held
 * byte for byte to what the repository's compiler writes; one process takes `compile()` through
 * `require` and then `import`; `tsc` reads the `.d.ts` of that `.js` build, and every file in one
 * run. vitest.config.ts starts this file first, so that it overlaps the rest of the suite.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../compiler/driver.js";
import { moduleFiles } from "../compiler/api.js";

const root = join(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "backpass-package-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string; license: string; dependencies: Record<string, string>; bin: Record<string, string>; engines: Record<string, string> };
const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };

interface Ran {
  readonly command: string;
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall-clock time of the command, in ms. */
  readonly ms: number;
}

/** Runs a command; resolves with its exit status and output (it never rejects, so no job started early is an unhandled rejection). */
function sh(cwd: string, cmd: string, args: readonly string[]): Promise<Ran> {
  return new Promise((done) => {
    const started = performance.now();
    const command = `${cmd} ${args.join(" ")}`;
    const child = spawn(cmd, args, { cwd, env: { ...process.env, npm_config_update_notifier: "false" } });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", (e) => done({ command, status: null, stdout, stderr: `${stderr}${e.message}`, ms: performance.now() - started }));
    child.on("close", (status) => done({ command, status, stdout, stderr, ms: performance.now() - started }));
  });
}

/** A command's result, after failing the test with its output if it did not exit 0. */
function ok(r: Ran): Ran {
  if (r.status !== 0) throw new Error(`${r.command} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/**
 * The command npm linked into a project's node_modules/.bin, which `npx backpass` runs: `npx`
 * itself is run once (--help, in the CommonJS project), since it adds about a second to every call.
 */
const binLink = "node_modules/.bin/backpass";

const tiny = { name: "tiny", indices: { n: "N" }, inputs: ["x[n]"], steps: ["y[n] = tanh(x[n])"], output: "y" };

type Kind = "commonjs" | "module";

/** Everything run in one project, each a command started as soon as what it needs is there. */
interface Jobs {
  readonly dir: string;
  /**
   * `backpass --help` through `npx`, `build --help`, and `--version` under a resolve hook that logs
   * every module it loads: in the CommonJS project only, since the command is the package's own
   * `bin/backpass.js`, which runs the same way whatever the project's type.
   */
  readonly help?: Promise<Ran>;
  readonly buildHelp?: Promise<Ran>;
  readonly probe?: Promise<{ ran: Ran; urls: string }>;
  /** The .js build, with a bad .spec.ts among its specs. */
  readonly buildJs: Promise<Ran>;
  /** Plain node running the .js output: `import` (and `require` in the CommonJS project). */
  readonly runJs: Promise<Ran[]>;
  /**
   * `compile()` through `require` and then through `import`, in one process of the CommonJS
   * project: a project's type changes how its own `.js` files are read, not how "backpass" resolves.
   */
  readonly api?: Promise<Ran>;
  /** tsc over .mts and .cts files using both entries and a generated .d.ts (the ES module project). */
  readonly tsc?: Promise<Ran>;
}

/** The body each `node -e` runs on a generated `center.js` bound to `m`. */
const runCenter = [
  `const N = 3, D = 2, x = Float64Array.from({ length: N * D }, (_, i) => Math.sin(i + 1)), g = new Float64Array([2, 3]);`,
  `const { y, cache } = m.forward({ x, g }, { N, D });`,
  `const dout = Float64Array.from({ length: N * D }, (_, i) => i - 2);`,
  `const fused = m.backwardFused(dout, cache), naive = m.backwardNaive(dout, cache);`,
  `console.log(JSON.stringify({ y: Array.from(y), fused: Array.from(fused.dx), naive: Array.from(naive.dx), dg: Array.from(fused.dg) }));`,
].join("\n");

/** What each entry of the API is asked, `api` bound to it; prints one JSON line. */
const useApi = [
  `const r = await api.compile(${JSON.stringify(tiny)}, { format: "js", module: "cjs" });`,
  `const m = { exports: {} }; new Function("exports", "module", r.files["tiny.js"])(m.exports, m);`,
  `const { y } = m.exports.forward({ x: new Float64Array([0.5]) }, { N: 1 });`,
  `let message = "", isSpecError = false;`,
  `try { await api.compile({ ...${JSON.stringify(tiny)}, steps: ["y[n] = tanh(q[n])"] }); } catch (e) { message = e.message; isSpecError = e instanceof api.SpecError; }`,
  `const rw = await api.compile(${JSON.stringify(tiny)}, { target: "wasm", format: "js", module: "cjs" });`,
  `const mw = { exports: {} }; new Function("exports", "module", rw.files["tiny.js"])(mw.exports, mw);`,
  `const wasm = mw.exports.forward({ x: new Float64Array([0.5]) }, { N: 1 }).y[0];`,
  `console.log(JSON.stringify({ entry, files: Object.keys(r.files), y: y[0], message, isSpecError, wasm, stats: Object.keys(await api.stats(${JSON.stringify(tiny)})) }));`,
].join("\n");

/**
 * The CommonJS project, with the tarball as its one dependency: its package.json and a lock file
 * made of the repository's own entries that are not dev-only.
 */
function writeInstall(dir: string, tarball: string): void {
  const spec = `file:${tarball}`;
  const packages: Record<string, unknown> = {
    "": { name: "p-commonjs", version: "1.0.0", dependencies: { backpass: spec } },
    "node_modules/backpass": { version: pkg.version, resolved: spec, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path && !entry.dev && !entry.devOptional) packages[path] = entry;
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "p-commonjs", version: "1.0.0", type: "commonjs", dependencies: { backpass: spec } }, null, 2));
  writeFileSync(join(dir, "package-lock.json"), JSON.stringify({ name: "p-commonjs", version: "1.0.0", lockfileVersion: 3, requires: true, packages }, null, 2));
}

/**
 * A project of the given type, its files written; starts every command once `install` is done.
 * The CommonJS project is `root`, where the tarball is installed; the ES module project is its
 * folder `esm/`, whose own package.json says `"type": "module"` and which finds the installed
 * package (and the `.bin` link) in its parent's node_modules.
 */
function start(type: Kind, root: string, install: Promise<Ran>): Jobs {
  const dir = type === "commonjs" ? root : join(root, "esm");
  if (type === "module") {
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "p-module", version: "1.0.0", type: "module", private: true }, null, 2));
  }
  const bin = type === "commonjs" ? binLink : `../${binLink}`;
  // a spec that imports defineSpec from the package and a helper module by its .js name
  writeFileSync(join(dir, "parts.ts"), `export const steps: string[] = ["mu[d] = 1/N * sum(x[n,d], n)", "y[n,d] = (x[n,d] - mu[d]) * g[d]"];\n`);
  writeFileSync(
    join(dir, "center.spec.ts"),
    `import { defineSpec } from "backpass";\nimport { steps } from "./parts.js";\n\ninterface Unused { a: number }\nexport default defineSpec({ name: "center", indices: { n: "N", d: "D" }, inputs: ["x[n,d]", "g[d]"], steps, output: "y" });\n`,
  );
  writeFileSync(join(dir, "tiny.json"), JSON.stringify(tiny));
  writeFileSync(join(dir, "bad.spec.ts"), `import { defineSpec } from "backpass";\nexport default defineSpec({ name: "bad", indices: { n: "N" }, inputs: ["x[n]"],\n  steps: ["y[n] = tanh(q[n])"], output: "y" });\n`);
  const log = join(dir, "resolved.log");
  writeFileSync(join(dir, "hook.mjs"), `import { appendFileSync } from "node:fs";\nexport async function resolve(s, c, next) {\n  const r = await next(s, c);\n  appendFileSync(${JSON.stringify(log)}, r.url + "\\n");\n  return r;\n}\n`);
  writeFileSync(join(dir, "probe.mjs"), `import { register } from "node:module";\nregister("./hook.mjs", import.meta.url);\n`);
  /** Runs once the install is done. */
  const then = (cmd: string, args: readonly string[]) => install.then(() => sh(dir, cmd, args));
  const buildJs = then(bin, ["build", "center.spec.ts", "tiny.json", "bad.spec.ts", "--out", "out-js", "--format", "js"]);
  const entries = [`import("./out-js/center.js").then((m) => {\n${runCenter}\n});`];
  if (type === "commonjs") entries.push(`const m = require("./out-js/center.js");\n${runCenter}`);
  const api = `(async () => {\nlet entry = "require", api = require("backpass");\n{\n${useApi}\n}\nentry = "import"; api = await import("backpass");\n{\n${useApi}\n}\n})();`;
  return {
    dir,
    help: type === "commonjs" ? then("npx", ["backpass", "--help"]) : undefined,
    buildHelp: type === "commonjs" ? then(bin, ["build", "--help"]) : undefined,
    probe: type === "commonjs" ? then(process.execPath, ["--import", "./probe.mjs", "node_modules/backpass/bin/backpass.js", "--version"]).then((ran) => ({ ran, urls: readFileSync(log, "utf8") })) : undefined,
    buildJs,
    runJs: buildJs.then(() => Promise.all(entries.map((code) => sh(dir, process.execPath, ["-e", code])))),
    api: type === "commonjs" ? then(process.execPath, ["-e", api]) : undefined,
    tsc: type === "module" ? typesChecked(dir, buildJs) : undefined,
  };
}

/**
 * One tsc run (nodenext) over use.mts and use.cts, which use both entries and a generated .d.ts
 * (out-js/tiny.d.ts, written by `buildJs`) and must type-check, and bad.mts, whose wrong option
 * must not.
 */
async function typesChecked(dir: string, buildJs: Promise<Ran>): Promise<Ran> {
  await writeFile(
    join(dir, "use.mts"),
    `import { compile, defineSpec, SpecError, type CompileResult } from "backpass";\nimport { forward, backwardFused } from "./out-js/tiny.js";\nconst spec = defineSpec(${JSON.stringify(tiny)});\nexport const r: CompileResult = await compile(spec, { format: "js", dtype: "float32" });\nconst { y, cache } = forward({ x: new Float64Array(2) }, { N: 2 });\nexport const dx: Float64Array = backwardFused(y, cache).dx;\nexport const isSpecError = (e: unknown): e is SpecError => e instanceof SpecError;\n`,
  );
  await writeFile(join(dir, "use.cts"), `import { compile, SpecError } from "backpass";\nexport async function names(): Promise<string[]> {\n  try {\n    return Object.keys((await compile({})).files);\n  } catch (e) {\n    if (e instanceof SpecError) return e.problems.map((p) => p.message);\n    throw e;\n  }\n}\n`);
  await writeFile(join(dir, "bad.mts"), `import { compile } from "backpass";\nawait compile({}, { format: "xml" });\n`);
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "nodenext", strict: true, noEmit: true, types: [] }, files: ["use.mts", "use.cts", "bad.mts"] }));
  await buildJs; // exits 1 for its bad spec; tiny.d.ts is judged by the build's own test
  return sh(dir, join(root, "node_modules/.bin/tsc"), ["-p", "."]);
}

let tarball = "";
let install: Promise<Ran>;
const jobs = new Map<Kind, Jobs>();

beforeAll(async () => {
  ok(await sh(root, "npm", ["pack", "--pack-destination", work]));
  const tgz = readdirSync(work).filter((f) => f.endsWith(".tgz"));
  expect(tgz).toHaveLength(1);
  tarball = join(work, tgz[0]!);
  const project = join(work, "project");
  mkdirSync(project);
  writeInstall(project, tarball);
  install = sh(project, "npm", ["ci", "--offline", "--no-audit", "--no-fund"]);
  for (const type of ["commonjs", "module"] as const) jobs.set(type, start(type, project, install));
}, 120_000);

afterAll(async () => {
  // every command has ended before the folder goes (a failed test may not have awaited its own)
  await Promise.all([install, ...[...jobs.values()].flatMap((j) => [j.help, j.buildHelp, j.probe, j.buildJs, j.runJs, j.api, j.tsc])]);
});

describe("the packed tarball", () => {
  it("holds bin/, dist/ (with both entries and their types), package.json and README.md, and no sources or tests", async () => {
    const files = ok(await sh(work, "tar", ["-tzf", tarball])).stdout.trim().split("\n").map((f) => f.replace(/^package\//, ""));
    for (const f of ["package.json", "README.md", "bin/backpass.js", "dist/main.js", "dist/index.js", "dist/index.d.ts", "dist/index.cjs", "dist/index.d.cts", "dist/parse/spec-hooks.js", "dist/differentiate/cas-worker.mjs"]) expect(files).toContain(f);
    expect(files.filter((f) => /^(test|bench|\.ci|compiler|specs|generated|scripts|docs|node_modules)\//.test(f))).toEqual([]);
  });
});

describe("the tarball installed", () => {
  it("installs offline without a single npm warning", async () => {
    const r = ok(await install);
    const output = `${r.stdout}${r.stderr}`;
    expect(output).toMatch(/added \d+ packages/);
    expect(output.split("\n").filter((l) => /npm warn/i.test(l))).toEqual([]);
  });
});

describe.each(["commonjs", "module"] as const)("used from a %s project", (type) => {
  const job = () => jobs.get(type)!;

  // the package's own bin, whatever the project's type: one project runs it
  it.runIf(type === "commonjs")("answers --help and --version at once, loading neither the compiler nor a TypeScript loader", async () => {
    expect(ok(await job().help!).stdout).toContain("backpass build <spec.spec.ts|spec.json ...> --out <dir>");
    expect(ok(await job().buildHelp!).stdout).toContain("--format ts|js");
    // every module that `backpass --version` resolves, logged by a resolve hook (the .bin link it
    // would go through runs every other command here)
    const { ran, urls } = await job().probe!;
    expect(ok(ran).stdout).toBe(`${pkg.version}\n`);
    expect(urls).toContain("/node_modules/backpass/dist/main.js");
    expect(urls).not.toMatch(/ts-morph|prettier|nerdamer|viz-js|tsx|esbuild|typescript|driver\.js/);
    console.log(`backpass --version in a ${type} project: ${ran.ms.toFixed(0)} ms (with the probe, beside the other commands)`);
  });

  // the module kind follows the project's type; one project suffices for the comparison
  it.runIf(type === "module")("builds a .json spec byte for byte as the repository's compiler writes it", async () => {
    const { dir } = job();
    await job().buildJs;
    // the installed build is the repository's, CAS worker included: byte for byte the same files
    const installed = readFileSync(join(dir, "out-js/tiny.js"), "utf8");
    expect(installed).not.toContain("own rule");
    const own = await moduleFiles((await compile(tiny, { source: "tiny.json", rebuild: "npx backpass build tiny.json --out out-js --format js" })).code, "tiny", "js", "esm");
    expect(installed).toBe(own["tiny.js"]);
    expect(readFileSync(join(dir, "out-js/tiny.d.ts"), "utf8")).toBe(own["tiny.d.ts"]);
  });

  it("builds a .spec.ts and a .json spec as .js + .d.ts that plain node runs", async () => {
    const { dir } = job();
    await job().buildJs; // its bad spec is judged below; the good ones are written all the same
    expect(readdirSync(join(dir, "out-js")).sort()).toEqual(["center.d.ts", "center.js", "tiny.d.ts", "tiny.js"]);
    expect(readFileSync(join(dir, "out-js/center.js"), "utf8")).toContain("Do not edit: change the spec and run `npx backpass build center.spec.ts --out out-js --format js`.");
    const runs = await job().runJs;
    expect(runs).toHaveLength(type === "commonjs" ? 2 : 1);
    for (const r of runs) {
      expect(ok(r).stderr).toBe("");
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

  it("reports a bad .spec.ts with exit 1, its file and line and nothing else, writing nothing for it", async () => {
    const r = await job().buildJs;
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^bad\.spec\.ts:3:\d+: step 1 "y\[n\] = tanh\(q\[n\]\)": unknown name 'q'[^\n]*\n {4}y\[n\] = tanh\(q\[n\]\)\n {16}\^\n$/);
    expect(r.stdout).not.toContain("bad.spec.ts");
    expect(readdirSync(join(job().dir, "out-js")).filter((f) => f.startsWith("bad"))).toEqual([]);
  });

  it.runIf(type === "commonjs")("gives a working compile() through require and import, rejecting a bad spec with the CLI's message", async () => {
    const r = ok(await job().api!);
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l["entry"])).toEqual(["require", "import"]);
    for (const out of lines) {
      expect(out).toMatchObject({ files: ["tiny.js", "tiny.d.ts"], isSpecError: true, stats: ["spec", "largest", "at", "naive", "fused", "double"] });
      expect(out["y"]).toBeCloseTo(Math.tanh(0.5), 12);
      expect(out["message"]).toBe(`step 1 "y[n] = tanh(q[n])": unknown name 'q' (not an input, step, constant or size symbol)\n    y[n] = tanh(q[n])\n                ^`);
      // the WebAssembly module of the same spec, through the installed package (wabt assembles it)
      expect(out["wasm"]).toBeCloseTo(Math.tanh(0.5), 12);
    }
  });

  // one project suffices: its .mts and .cts files take each entry
  it.runIf(type === "module")("types both entries and the generated .d.ts for TypeScript (nodenext), which catches a wrong option", async () => {
    const r = await job().tsc!;
    expect(r.stdout).toContain(`Type '"xml"' is not assignable`);
    // every error is bad.mts's wrong option: use.mts and use.cts type-check
    const errors = r.stdout.split("\n").filter((l) => /error TS\d+/.test(l));
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect(e).toMatch(/^bad\.mts\(2,\d+\): error TS\d+: /);
  });
});
