/**
 * The command line's handling of everything but a good spec, in-process through `run`: malformed
 * arguments (exit 2 and the usage), file-system problems (exit 1, one line naming the path),
 * nothing created on failure, temporary files cleaned up, byte-order marks, a spec module that
 * never finishes loading, and escape codes shown rather than obeyed. One test runs the real
 * command in a child process, for the module whose top-level await lets the event loop drain.
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../compiler/cli.js";
import { OutputWriter } from "../compiler/files.js";

const root = join(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "backpass-cli-args-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let folders = 0;
/** A fresh empty folder under the test's temporary folder. */
function folder(): string {
  const dir = join(work, `case${++folders}`);
  mkdirSync(dir);
  return dir;
}

/** Runs the command line in-process with `cwd` as its folder; what it printed and its exit code. */
async function cli(cwd: string, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), cwd, loadTimeoutMs: 500 });
  return { code, stdout, stderr };
}

const tiny = (name: string) => ({ name, indices: { n: "N" }, inputs: ["x[n]"], steps: ["y[n] = tanh(x[n])"], output: "y" });

/** A folder holding `tiny.json`, a good spec. */
function withSpec(): string {
  const dir = folder();
  writeFileSync(join(dir, "tiny.json"), JSON.stringify(tiny("tiny")));
  return dir;
}

describe("malformed arguments: exit 2, the problem and the usage on stderr, nothing created", () => {
  it.each([
    [[], "no command"],
    [["frobnicate"], "unknown command 'frobnicate'"],
    [["build", "tiny.json"], "build needs --out <dir>"],
    [["build", "--out", "out"], "build needs at least one spec file"],
    [["build", "tiny.json", "--out"], "--out needs a value: --out <dir>"],
    [["build", "tiny.json", "--out", "--debug"], "--out needs a value: --out <dir>"],
    [["build", "tiny.json", "--out="], "--out needs a value: --out <dir>"],
    [["build", "tiny.json", "--out", "out", "--dtype"], "--dtype needs a value: --dtype float64|float32"],
    [["build", "tiny.json", "--dtype", "--out", "out"], "--dtype needs a value: --dtype float64|float32"],
    [["build", "tiny.json", "--out", "out", "--dtype", "float16"], "--dtype must be float64 or float32, got 'float16'"],
    [["build", "tiny.json", "--out", "out", "--out", "out2"], "--out is given twice"],
    [["build", "tiny.json", "--out", "out", "--debug", "--debug"], "--debug is given twice"],
    [["build", "tiny.json", "--out", "out", "--debug=yes"], "--debug takes no value"],
    [["build", "tiny.json", "--out", "out", "--check"], "unknown option '--check' for build (it is an option of codegen)"],
    [["build", "tiny.json", "--out", "out", "--verbose"], "unknown option '--verbose' for build"],
    [["build", "tiny.json", "--out", "out", "-o"], "unknown option '-o' for build"],
    [["build", "", "--out", "out"], "an empty argument"],
    [["codegen", "specs/tanh.spec.ts"], "codegen takes no file arguments, got 'specs/tanh.spec.ts'"],
    [["codegen", "--out", "out"], "unknown option '--out' for codegen (it is an option of build, explain)"],
    [["stats", "tiny.json", "--dtype", "float32"], "unknown option '--dtype' for stats (it is an option of build)"],
    [["stats"], "stats needs at least one spec file"],
    [["explain", "tiny.json"], "explain needs --out <dir>"],
    [["explain", "tiny.json", "--out", "out", "--dtype", "float32"], "unknown option '--dtype' for explain (it is an option of build)"],
  ])("%j", async (argv, problem) => {
    const dir = withSpec();
    const r = await cli(dir, ...argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n\n")[0]).toBe(`backpass: ${problem}`);
    expect(r.stderr).toMatch(/\n\nusage:\n {2}backpass build <spec\.spec\.ts\|spec\.json \.\.\.> --out <dir> \[--dtype float64\|float32\] \[--format ts\|js\] \[--target js\|wasm\] \[--debug\]\n/);
    expect(readdirSync(dir)).toEqual(["tiny.json"]); // no folder named out, --debug or anything else
  });

  it("shows the escape codes of an unknown option instead of sending them to the terminal", async () => {
    const r = await cli(withSpec(), "build", "tiny.json", "--out", "out", "--\x1b]0;owned\x07\x1b[2J");
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe("backpass: unknown option '--\\u{1b}]0;owned\\u{7}\\u{1b}[2J' for build");
    expect(r.stderr).not.toContain("\x1b");
  });

  it("takes --out=<dir>, and a spec file named like an option after --", async () => {
    const dir = folder();
    writeFileSync(join(dir, "--odd.json"), JSON.stringify(tiny("odd")));
    const r = await cli(dir, "build", "--out=out", "--", "--odd.json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readdirSync(join(dir, "out"))).toEqual(["odd.ts"]);
  });
});

describe("--help, --version and --format js", () => {
  const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

  it.each([["--help"], ["-h"], ["help"]])("%s prints what backpass is and every command, to stdout, exit 0", async (flag) => {
    const r = await cli(folder(), flag);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(/^backpass: compiles the forward pass/);
    for (const cmd of ["build", "codegen", "stats", "explain"]) expect(r.stdout).toContain(`\n  backpass ${cmd}`);
  });

  it.each([["--version"], ["-v"]])("%s prints the package's version, exit 0", async (flag) => {
    expect(await cli(folder(), flag)).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
  });

  it.each([
    [["build", "--help"], "build"],
    [["build", "tiny.json", "--out", "out", "-h"], "build"],
    [["build", "--frobnicate", "--help"], "build"],
    [["help", "explain"], "explain"],
    [["stats", "--help"], "stats"],
    [["codegen", "--help"], "codegen"],
  ])("%j prints the usage and options of %s, exit 0, writes nothing", async (argv, cmd) => {
    const dir = withSpec();
    const r = await cli(dir, ...argv);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(new RegExp(`^usage:\\n  backpass ${cmd} `));
    expect(r.stdout).toContain("\noptions:\n");
    expect(r.stdout).toContain("-h, --help");
    expect(readdirSync(dir)).toEqual(["tiny.json"]);
  });

  it("takes --help after -- as a file name", async () => {
    const r = await cli(withSpec(), "stats", "--", "--help");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--help: cannot read the file");
  });

  it("builds with --target wasm: the module embeds its WebAssembly kernels and says how to rebuild it", async () => {
    const dir = withSpec();
    const r = await cli(dir, "build", "tiny.json", "--out", "out", "--target", "wasm");
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const text = readFileSync(join(dir, "out", "tiny.ts"), "utf8");
    expect(text).toMatch(/const WASM_BYTES =\s+"[A-Za-z0-9+/=]+";/);
    expect(text).toContain("--out out --target wasm`");
  });

  it.each([
    ["module", "export function backwardFused("],
    ["commonjs", "exports.backwardFused = backwardFused;"],
    [undefined, "exports.backwardFused = backwardFused;"],
  ])("--format js writes <name>.js and <name>.d.ts; a package of type %s gets %s", async (type, marker) => {
    const dir = withSpec();
    if (type) writeFileSync(join(dir, "package.json"), JSON.stringify({ type }));
    const r = await cli(dir, "build", "tiny.json", "--out", "out", "--format", "js");
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(readdirSync(join(dir, "out")).sort()).toEqual(["tiny.d.ts", "tiny.js"]);
    const js = readFileSync(join(dir, "out/tiny.js"), "utf8");
    expect(js).toContain(marker);
    expect(js).not.toMatch(/: Float64Array|interface /);
    expect(js).toContain("Do not edit: change the spec and run `npx backpass build tiny.json --out out --format js`.");
    expect(readFileSync(join(dir, "out/tiny.d.ts"), "utf8")).toMatch(/export declare function backwardFused\(\s*dout: Float64Array,\s*cache: TinyCache,\s*into\?: Partial<TinyGradients>,?\s*\): TinyGradients;/);
    const child = spawnSync(process.execPath, ["-e", `import("./out/tiny.js").then((m) => { const { y, cache } = m.forward({ x: new Float64Array([0, 1]) }, { N: 2 }); console.log(JSON.stringify([Array.from(y), Array.from(m.backwardFused(new Float64Array([1, 1]), cache).dx)])); })`], { cwd: dir, encoding: "utf8" });
    expect(child.stderr).toBe("");
    const [y, dx] = JSON.parse(child.stdout) as number[][];
    expect(y![1]).toBeCloseTo(Math.tanh(1), 12);
    expect(dx![1]).toBeCloseTo(1 - Math.tanh(1) ** 2, 12);
  });
});

describe("file-system problems: exit 1 and one line naming the path, no stack", () => {
  it("--out is an existing file", async () => {
    const dir = withSpec();
    writeFileSync(join(dir, "out"), "a file");
    const r = await cli(dir, "build", "tiny.json", "--out", "out");
    expect(r).toEqual({ code: 1, stdout: "", stderr: "backpass: cannot write to 'out': not a directory\n" });
  });

  it("--out is inside an existing file", async () => {
    const dir = withSpec();
    writeFileSync(join(dir, "out"), "a file");
    const r = await cli(dir, "explain", "tiny.json", "--out", "out/sub");
    expect(r).toEqual({ code: 1, stdout: "", stderr: "backpass: cannot write to 'out/sub': 'out' is not a directory\n" });
  });

  it("--out names a file with escape codes: the path is shown escaped", async () => {
    const dir = withSpec();
    writeFileSync(join(dir, "o\x1b[31mut"), "a file");
    const r = await cli(dir, "build", "tiny.json", "--out", "o\x1b[31mut");
    expect(r).toEqual({ code: 1, stdout: "", stderr: "backpass: cannot write to 'o\\u{1b}[31mut': not a directory\n" });
  });

  it.skipIf(process.getuid?.() === 0)("--out is a folder that cannot be written", async () => {
    const dir = withSpec();
    mkdirSync(join(dir, "locked"));
    chmodSync(join(dir, "locked"), 0o500);
    const r = await cli(dir, "build", "tiny.json", "--out", "locked/out");
    chmodSync(join(dir, "locked"), 0o700);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^backpass: cannot write to 'locked\/out': cannot create it in 'locked': permission denied\n$/);
  });

  it("the output file's name is taken by a folder: one line, and no temporary file left", async () => {
    const dir = withSpec();
    mkdirSync(join(dir, "out/tiny.ts"), { recursive: true });
    const r = await cli(dir, "build", "tiny.json", "--out", "out");
    expect(r).toEqual({ code: 1, stdout: "", stderr: "backpass: cannot write 'out/tiny.ts': is a directory\n" });
    expect(readdirSync(join(dir, "out"))).toEqual(["tiny.ts"]);
  });

  it("a spec file that does not exist, or is a folder", async () => {
    const dir = folder();
    mkdirSync(join(dir, "folder.json"));
    const r = await cli(dir, "build", "missing.json", "missing.spec.ts", "folder.json", "--out", "out");
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: "missing.json: cannot read the file: no such file\nmissing.spec.ts: cannot read the file: no such file\nfolder.json: cannot read the file: it is a directory\n",
    });
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("codegen outside a project", async () => {
    const r = await cli(folder(), "codegen");
    expect(r).toEqual({ code: 1, stdout: "", stderr: "backpass: cannot read 'specs': no such file or directory (codegen runs in the project folder)\n" });
  });

  it("an unexpected error is labelled as a bug in backpass", async () => {
    const dir = withSpec();
    let stderr = "";
    const code = await run(["build", "tiny.json", "--out", "out"], {
      cwd: dir,
      stdout: () => {
        throw new Error("stdout closed");
      },
      stderr: (s) => (stderr += s),
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^backpass: internal error \(a bug in backpass; please report it with the spec\):\nError: stdout closed\n {4}at /);
  });
});

describe("nothing is created on failure", () => {
  it("a bad spec: exit 1, and --out is not created", async () => {
    const dir = folder();
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ ...tiny("bad"), steps: ["y[n] = tanh(z[n])"] }));
    const r = await cli(dir, "build", "bad.json", "--out", "out");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown name 'z'");
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("a good and a bad spec: exit 1, the good one is written", async () => {
    const dir = withSpec();
    writeFileSync(join(dir, "bad.json"), "{ not json");
    const r = await cli(dir, "build", "bad.json", "tiny.json", "--out", "out");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^bad\.json: not valid JSON: /);
    expect(r.stdout).toBe(`tiny.json -> ${join("out", "tiny.ts")}\n`);
    expect(readdirSync(join(dir, "out"))).toEqual(["tiny.ts"]);
  });
});

describe("temporary files", () => {
  it("a run removes the temporary files of dead runs in its folder, and no others", async () => {
    const dir = withSpec();
    mkdirSync(join(dir, "out"));
    const dead = ".backpass-999999999-0.tmp"; // above any pid_max
    const live = `.backpass-${process.pid}-7.tmp`;
    for (const f of [dead, live, "notes.tmp", ".x.backpass-12.txt", ".backpass-12.tmp"]) writeFileSync(join(dir, "out", f), "left over");
    const r = await cli(dir, "build", "tiny.json", "--out", "out");
    expect(r.code).toBe(0);
    expect(readdirSync(join(dir, "out")).sort()).toEqual([live, ".x.backpass-12.txt", ".backpass-12.tmp", "notes.tmp", "tiny.ts"].sort());
  });

  it("a file name of 252 characters is written (its temporary name is short), and a name the file system refuses is one line, leaving no folder", async () => {
    const dir = folder();
    const spec = (name: string) => JSON.stringify({ name, indices: { n: "N" }, inputs: ["x[n]"], steps: ["y[n] = 2*x[n]"], output: "y" });
    writeFileSync(join(dir, "long.json"), spec("q".repeat(252)));
    writeFileSync(join(dir, "too.json"), spec("q".repeat(300)));
    writeFileSync(join(dir, "ok.json"), spec("ok"));
    const long = await cli(dir, "build", "long.json", "--out", "a");
    expect(long.code).toBe(0);
    expect(readdirSync(join(dir, "a"))).toEqual([`${"q".repeat(252)}.ts`]);
    const too = await cli(dir, "build", "too.json", "--out", "b/c");
    expect(too.code).toBe(1);
    expect(too.stderr.trim().split("\n")).toHaveLength(1);
    expect(too.stderr).toMatch(/^backpass: cannot write 'b\/c\/q{300}\.ts': /);
    expect(existsSync(join(dir, "b"))).toBe(false);
    // the other spec of the same run is still written
    const both = await cli(dir, "build", "too.json", "ok.json", "--out", "d");
    expect(both.code).toBe(1);
    expect(readdirSync(join(dir, "d"))).toEqual(["ok.ts"]);
  });

  it("on SIGTERM while writing, the temporary file is removed before the signal is raised again", async () => {
    const dir = folder();
    const kill = vi.spyOn(process, "kill").mockImplementation(() => true);
    const before = process.listenerCount("SIGTERM");
    try {
      const writer = new OutputWriter();
      const writing = writer.write(join(dir, "big.ts"), "x".repeat(20_000_000)).catch((e: Error) => e);
      while (!writer.pending.some((t) => existsSync(t))) await new Promise((r) => setImmediate(r));
      const tmp = writer.pending[0]!;
      expect(tmp).toBe(join(dir, `.backpass-${process.pid}-0.tmp`));
      process.emit("SIGTERM", "SIGTERM");
      expect(existsSync(tmp)).toBe(false);
      expect(kill).toHaveBeenCalledWith(process.pid, "SIGTERM");
      expect(process.listenerCount("SIGTERM")).toBe(before);
      await writing;
      expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    } finally {
      kill.mockRestore();
    }
  });

  it("a run leaves no signal listeners behind", async () => {
    const before = [process.listenerCount("SIGINT"), process.listenerCount("SIGTERM")];
    expect((await cli(withSpec(), "build", "tiny.json", "--out", "out")).code).toBe(0);
    expect([process.listenerCount("SIGINT"), process.listenerCount("SIGTERM")]).toEqual(before);
  });
});

describe("spec files", () => {
  it("a JSON spec with a UTF-8 byte-order mark builds", async () => {
    const dir = folder();
    writeFileSync(join(dir, "bom.json"), `\uFEFF${JSON.stringify(tiny("bom"), null, 2)}`);
    const r = await cli(dir, "build", "bom.json", "--out", "out");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readdirSync(join(dir, "out"))).toEqual(["bom.ts"]);
  });

  it("a .spec.ts with a byte-order mark builds", async () => {
    const dir = folder();
    writeFileSync(join(dir, "bomts.spec.ts"), `\uFEFFexport default ${JSON.stringify(tiny("bomts"))};\n`);
    const r = await cli(dir, "build", "bomts.spec.ts", "--out", "out");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("a .spec.ts whose top-level await never settles while the process stays busy: a spec error after the bound", async () => {
    const dir = folder();
    writeFileSync(join(dir, "package.json"), '{ "type": "module" }');
    writeFileSync(join(dir, "stuck.spec.ts"), "await new Promise(() => {});\nexport default {};\n");
    const r = await cli(dir, "build", "stuck.spec.ts", "--out", "out");
    expect(r).toEqual({ code: 1, stdout: "", stderr: "stuck.spec.ts: the module did not finish loading within 0.5 s (a top-level await that never settles?)\n" });
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("the real command: a .spec.ts whose top-level await lets the event loop drain exits 1 at once", () => {
    const dir = folder();
    writeFileSync(join(dir, "package.json"), '{ "type": "module" }');
    writeFileSync(join(dir, "never.spec.ts"), "await new Promise(() => {});\nexport default {};\n");
    const started = Date.now();
    const r = spawnSync("node", [join(root, "bin/backpass.js"), "build", "never.spec.ts", "--out", "out"], { cwd: dir, encoding: "utf8" });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 1,
      stdout: "",
      stderr: "never.spec.ts: the module did not finish loading (a top-level await that never settles?)\n",
    });
    expect(Date.now() - started).toBeLessThan(20_000); // not the 30 s bound
    expect(existsSync(join(dir, "out"))).toBe(false);
  });
});
