/**
 * The command line (CONTRACT §3):
 *   backpass build <spec files...> --out <dir> [--dtype float64|float32] [--debug]
 *   backpass codegen [--check]          every specs/*.spec.ts into generated/
 *   backpass stats <spec files...>      what each backward kernel computes, as JSON
 * A bad spec exits 1 with one message per problem; nothing is written for it, and files are
 * written to a temporary name and renamed so that no reader ever sees half a file.
 */
import { mkdir, readdir, readFile, rename, writeFile, rm } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { compile } from "./driver.js";
import { SpecError } from "./parse/check.js";
import { loadSpecObject } from "./parse/load.js";
import type { SpecStats } from "./stats.js";

interface Built {
  readonly file: string;
  readonly name: string;
  readonly code: string;
  readonly stats: SpecStats;
}

async function buildAll(files: readonly string[], debug: boolean, dtype: "float64" | "float32" = "float64"): Promise<{ built: Built[]; failed: number }> {
  const built: Built[] = [];
  let failed = 0;
  const names = new Map<string, string>();
  for (const file of files) {
    const source = relative(process.cwd(), resolve(file)) || file;
    try {
      const spec = await loadSpecObject(file);
      const c = await compile(spec, { source, dtype, debug: debug ? (l) => process.stderr.write(`${l}\n`) : undefined });
      const other = names.get(c.program.name);
      if (other) throw new SpecError([{ where: { field: "name" }, message: `'${c.program.name}' is also the name of ${other}; each spec writes <out>/<name>.ts` }], source);
      names.set(c.program.name, source);
      built.push({ file: source, name: c.program.name, code: c.code, stats: c.stats });
    } catch (e) {
      failed++;
      if (e instanceof SpecError) process.stderr.write(`${e.formatIn(await readFile(file, "utf8").catch(() => undefined))}\n`);
      else process.stderr.write(`${source}: internal error: ${(e as Error).stack ?? String(e)}\n`);
    }
  }
  return { built, failed };
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const valued = ["--out", "--dtype"];
  const flags = new Set(rest.filter((a) => a.startsWith("--") && !valued.includes(a)));
  const valueOf = (flag: string) => {
    const at = rest.indexOf(flag);
    return at >= 0 ? rest[at + 1] : undefined;
  };
  const outAt = rest.indexOf("--out");
  const positional = rest.filter((a, k) => !a.startsWith("--") && !valued.includes(rest[k - 1] ?? ""));
  const debug = flags.has("--debug");
  const dtype = valueOf("--dtype") ?? "float64";
  if (dtype !== "float64" && dtype !== "float32") return usage(`--dtype must be float64 or float32, got '${dtype}'`);
  const unknown = [...flags].filter((f) => !["--debug", "--check"].includes(f));
  if (unknown.length) return usage(`unknown option ${unknown.join(", ")}`);
  if (cmd === "build") {
    if (outAt < 0 || !rest[outAt + 1]) return usage("build needs --out <dir>");
    if (positional.length === 0) return usage("build needs at least one spec file");
    const out = rest[outAt + 1]!;
    const { built, failed } = await buildAll(positional, debug, dtype);
    await mkdir(out, { recursive: true });
    for (const b of built) {
      await writeAtomic(join(out, `${b.name}.ts`), b.code);
      process.stdout.write(`${b.file} -> ${join(out, `${b.name}.ts`)}\n`);
    }
    return failed ? 1 : 0;
  }
  if (cmd === "stats") {
    if (positional.length === 0) return usage("stats needs at least one spec file");
    const { built, failed } = await buildAll(positional, debug);
    const all = built.map((b) => b.stats);
    // arrays of names (shapes, loops) on one line
    const json = JSON.stringify(all.length === 1 ? all[0] : all, null, 2).replace(/\[\s+((?:"[^"]*"|\d+)(?:,\s+(?:"[^"]*"|\d+))*)\s+\]/g, (_, xs: string) => `[${xs.replace(/,\s+/g, ", ")}]`);
    if (all.length) process.stdout.write(`${json}\n`);
    return failed ? 1 : 0;
  }
  if (cmd === "codegen") {
    const specs = (await readdir("specs")).filter((f) => f.endsWith(".spec.ts")).sort().map((f) => join("specs", f));
    const started = performance.now();
    // generated/<name>.ts (float64, the contract's modules) and generated/float32/<name>.ts
    const targets = [
      { dir: "generated", dtype: "float64" as const },
      { dir: join("generated", "float32"), dtype: "float32" as const },
    ];
    const files = new Map<string, string>();
    for (const t of targets) {
      const { built, failed } = await buildAll(specs, debug, t.dtype);
      if (failed) return 1;
      for (const b of built) files.set(join(t.dir, `${b.name}.ts`), b.code);
    }
    const existing = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".ts")).map((f) => join(dir, f));
    const present = (await Promise.all(targets.map((t) => existing(t.dir)))).flat();
    if (flags.has("--check")) {
      const stale: string[] = [];
      for (const [path, code] of files) if ((await readFile(path, "utf8").catch(() => undefined)) !== code) stale.push(path);
      for (const f of present) if (!files.has(f)) stale.push(f);
      if (stale.length) {
        process.stderr.write(`stale generated files (run npm run codegen):\n${stale.map((s) => `  ${s}`).join("\n")}\n`);
        return 1;
      }
      process.stdout.write(`generated/ is up to date with ${specs.length} spec(s)\n`);
      return 0;
    }
    for (const t of targets) await mkdir(t.dir, { recursive: true });
    for (const [path, code] of files) await writeAtomic(path, code);
    for (const f of present) if (!files.has(f)) await rm(f);
    process.stdout.write(`built ${specs.length} spec(s) into generated/ (float64) and generated/float32/ in ${((performance.now() - started) / 1000).toFixed(2)} s\n`);
    return 0;
  }
  return usage(cmd ? `unknown command '${cmd}'` : "no command");
}

function usage(problem: string): number {
  process.stderr.write(
    `backpass: ${problem}\n\nusage:\n  backpass build <spec.spec.ts|spec.json ...> --out <dir> [--dtype float64|float32] [--debug]\n  backpass codegen [--check] [--debug]\n  backpass stats <spec.spec.ts|spec.json ...>\n`,
  );
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`backpass: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
void basename;
