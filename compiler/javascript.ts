/**
 * `--format js`: a generated TypeScript module as `<name>.js` plus `<name>.d.ts`, for projects that
 * run plain `node` and for editors. The JavaScript is the same module with its types stripped by
 * TypeScript's `transpileModule` (the TypeScript that ts-morph bundles, already loaded to emit the
 * module: no second compiler, and it keeps every comment); the declarations come from
 * `transpileDeclaration`, which needs no program because every export of a generated module has
 * its types written out (isolated declarations). Both are formatted with prettier like the `.ts`.
 *
 * Node reads a `.js` file as the package around it says (`"type"`), so the JavaScript is an ES
 * module (`export function`) for `"module"` and CommonJS (`exports.forward = ...`, whose names
 * `import` also finds) otherwise, as TypeScript itself emits for NodeNext.
 */
import { ts } from "ts-morph";
import { formatted } from "./emit/format.js";

const options: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  declaration: true,
  isolatedDeclarations: true,
  strict: true,
  newLine: ts.NewLineKind.LineFeed,
};

function failed(what: string, diagnostics: readonly ts.Diagnostic[] | undefined): Error | undefined {
  if (!diagnostics?.length) return undefined;
  const text = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")).join("; ");
  return new Error(`the generated module does not convert to ${what}: ${text}`);
}

/** The module `code` (TypeScript) as JavaScript (an ES or CommonJS module) and as declarations; `name` is its base name. */
export async function toJavaScript(code: string, name: string, module: "esm" | "cjs" = "esm"): Promise<{ js: string; dts: string }> {
  const fileName = `${name}.ts`;
  const { declaration: _d, isolatedDeclarations: _i, ...rest } = options;
  const jsOptions = { ...rest, module: module === "esm" ? ts.ModuleKind.ESNext : ts.ModuleKind.CommonJS };
  const js = ts.transpileModule(code, { compilerOptions: jsOptions, fileName, reportDiagnostics: true });
  const dts = ts.transpileDeclaration(code, { compilerOptions: options, fileName, reportDiagnostics: true });
  const problem = failed("JavaScript", js.diagnostics) ?? failed("declarations", dts.diagnostics);
  if (problem) throw problem;
  // the declarations through babel's TypeScript parser, as the .ts module (emit/module.ts): the same
  // text as prettier's "typescript" parser gives on every library module's declarations, without
  // loading that parser (a tenth of a second of every `--format js` build)
  return {
    js: await formatted(js.outputText, "babel"),
    dts: await formatted(dts.outputText, "babel-ts"),
  };
}
