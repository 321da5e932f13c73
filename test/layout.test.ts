/**
 * The shape of compiler/: its import graph, read by dpdm (the same graph `npx dpdm --circular
 * 'compiler/**' ` prints), type-only and dynamic imports included.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { parseCircular, parseDependencyTree, type DependencyTree } from "dpdm";

const root = fileURLToPath(new URL("..", import.meta.url));

/** compiler/'s modules, each with the compiler/ modules it imports. */
async function importGraph(): Promise<DependencyTree> {
  return parseDependencyTree(["compiler/**/*.ts", "compiler/**/*.cts", "compiler/**/*.mjs"], {
    cwd: root,
    context: root,
    tsconfig: "tsconfig.json",
    extensions: [".ts", ".cts", ".mjs", ".js"],
    js: [".ts", ".cts", ".mjs", ".js"],
    exclude: /node_modules/,
  });
}

describe("layout", () => {
  it("compiler/ has no import cycle", async () => {
    const tree = await importGraph();
    expect(Object.keys(tree).filter((file) => file.startsWith("compiler/")).length).toBeGreaterThan(20);
    expect(parseCircular(tree).map((cycle) => cycle.join(" -> "))).toEqual([]);
  });
});
