/**
 * Loads a spec file: a `.spec.ts` (or `.ts`/`.js`/`.mjs`) module's default export, or a `.json`
 * document. Loading problems are reported as spec problems naming the file.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { SpecError } from "./check.js";

export async function loadSpecObject(file: string): Promise<unknown> {
  const abs = resolve(file);
  if (file.endsWith(".json")) {
    let text: string;
    try {
      text = await readFile(abs, "utf8");
    } catch (e) {
      throw new SpecError([{ message: `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})` }], file);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new SpecError([{ message: `not valid JSON: ${(e as Error).message}` }], file);
    }
  }
  if (!/\.(ts|mts|js|mjs)$/.test(file)) throw new SpecError([{ message: "a spec file must end in .spec.ts, .ts, .js or .json" }], file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    const msg = (e as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND" ? "file not found" : (e as Error).message;
    throw new SpecError([{ message: `cannot load the module: ${msg}` }], file);
  }
  if (!("default" in mod)) throw new SpecError([{ message: "the module has no default export; export the spec object as default" }], file);
  return mod["default"];
}
