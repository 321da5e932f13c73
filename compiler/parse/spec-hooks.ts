/**
 * Module hooks (Node's `module.register`) that let the installed backpass import `.spec.ts` files
 * without tsx, whatever the `"type"` of the project around them: a `.ts` or `.mts` file outside
 * node_modules is read as an ES module, its types stripped by TypeScript's `transpileModule` (the
 * TypeScript that ts-morph bundles, loaded on the first such file). Relative imports between
 * TypeScript files may name the `.js` file (TypeScript's own convention), the `.ts` file, or leave
 * the extension out. `import { defineSpec } from "backpass"` in a spec resolves as usual, to the
 * package's ES module build.
 *
 * load.ts registers these hooks only when it runs as JavaScript (the built package); from the
 * repository's TypeScript sources, tsx or vitest already loads `.ts` files.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { LoadHook, ResolveHook } from "node:module";

const TYPESCRIPT = /\.m?ts$/;

function isOwnTypeScript(url: string): boolean {
  return url.startsWith("file:") && TYPESCRIPT.test(new URL(url).pathname) && !url.includes("/node_modules/");
}

export const resolve: ResolveHook = async (specifier, context, next) => {
  try {
    return await next(specifier, context);
  } catch (e) {
    const relative = /^\.\.?\//.test(specifier);
    if (!relative || !context.parentURL || !isOwnTypeScript(context.parentURL) || (e as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") throw e;
    const candidates = [specifier.replace(/\.(m?)js$/, ".$1ts"), `${specifier}.ts`, `${specifier}/index.ts`].filter((c) => c !== specifier);
    for (const candidate of candidates)
      try {
        return await next(candidate, context);
      } catch {
        // try the next spelling
      }
    throw e;
  }
};

let typescript: Promise<typeof import("ts-morph").ts> | undefined;

export const load: LoadHook = async (url, context, next) => {
  if (!isOwnTypeScript(url)) return next(url, context);
  const file = fileURLToPath(url);
  const source = await readFile(file, "utf8");
  typescript ??= import("ts-morph").then((m) => m.ts);
  const ts = await typescript;
  const out = ts.transpileModule(source, {
    fileName: file,
    reportDiagnostics: true,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false, sourceMap: false },
  });
  const problem = out.diagnostics?.[0];
  if (problem) {
    const at = problem.file && problem.start !== undefined ? problem.file.getLineAndCharacterOfPosition(problem.start) : undefined;
    throw new SyntaxError(`${file}${at ? `:${at.line + 1}:${at.character + 1}` : ""}: ${ts.flattenDiagnosticMessageText(problem.messageText, " ")}`);
  }
  return { format: "module", source: out.outputText, shortCircuit: true };
};
