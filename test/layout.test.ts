/**
 * The shape of compiler/: its import graph, read by dpdm (the same graph `npx dpdm --circular
 * 'compiler/**' ` prints), type-only and dynamic imports included.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { parseCircular, parseDependencyTree, type DependencyTree } from "dpdm";

const root = fileURLToPath(new URL("..", import.meta.url));

/**
 * compiler/ in the order data flows through it (README, "How it works"): a module may import only
 * from its own stage and earlier ones, so every arrow points back along the pipeline. A file or
 * folder not listed is part of the front (driver's callers: api, cli, index), which may import
 * anything but is imported by no stage.
 */
const STAGES: readonly (readonly string[])[] = [
  ["limits.ts", "escape.ts"], // helpers for every stage, importing nothing
  ["ir/"], // the IR, the backward as data, the interpreter
  ["verify.ts"], // the checks after each stage: the IR and its interpreter only
  ["parse/"],
  ["differentiate/"],
  ["simplify/"],
  ["loop/"], // the loop IR and its passes: imports nothing of the pipeline
  ["schedule/"],
  ["stats.ts"],
  ["emit/"],
  ["double.ts"], // the double backward through the stages above; the driver calls it
  ["driver.ts"],
  ["explain/"],
];

function stageOf(file: string): number {
  const path = file.replace(/^compiler\//, "");
  const k = STAGES.findIndex((stage) => stage.some((entry) => (entry.endsWith("/") ? path.startsWith(entry) : path === entry)));
  return k < 0 ? STAGES.length : k;
}

/** Each import of one compiler/ module by another, as `importer -> imported`. */
function imports(tree: DependencyTree): [string, string][] {
  return Object.entries(tree).flatMap(([file, deps]) =>
    file.startsWith("compiler/") ? (deps ?? []).flatMap((d) => (d.id?.startsWith("compiler/") ? [[file, d.id] as [string, string]] : [])) : [],
  );
}

/** compiler/'s modules, each with the compiler/ modules it imports. */
let graph: Promise<DependencyTree> | undefined;
function importGraph(): Promise<DependencyTree> {
  return (graph ??= parseDependencyTree(["compiler/**/*.ts", "compiler/**/*.cts", "compiler/**/*.mjs"], {
    cwd: root,
    context: root,
    tsconfig: "tsconfig.json",
    extensions: [".ts", ".cts", ".mjs", ".js"],
    js: [".ts", ".cts", ".mjs", ".js"],
    exclude: /node_modules/,
  }));
}

describe("layout", () => {
  it("compiler/ has no import cycle", async () => {
    const tree = await importGraph();
    expect(Object.keys(tree).filter((file) => file.startsWith("compiler/")).length).toBeGreaterThan(20);
    expect(parseCircular(tree).map((cycle) => cycle.join(" -> "))).toEqual([]);
  });

  it("each stage imports only from itself and earlier stages", async () => {
    const backwards = imports(await importGraph()).filter(([from, to]) => stageOf(to) > stageOf(from));
    expect(backwards.map(([from, to]) => `${from} -> ${to}`)).toEqual([]);
  });

  it("verify.ts depends on ir/ alone", async () => {
    const deps = imports(await importGraph()).filter(([from]) => from === "compiler/verify.ts");
    expect(deps.length).toBeGreaterThan(0);
    expect(deps.filter(([, to]) => !to.startsWith("compiler/ir/"))).toEqual([]);
  });
});
