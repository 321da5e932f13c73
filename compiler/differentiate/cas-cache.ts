/**
 * The CAS's answers kept between processes: a rebuild of a spec (`codegen`, `codegen --check`, a
 * test run) asks nerdamer nothing it has answered before, and does not even start its worker.
 *
 * One file of JSON lines, `{"k": question, "a": answer}`, under `node_modules/.cache/backpass/` of
 * the nearest folder around the working directory that has a `node_modules` (as babel and eslint
 * keep theirs), named by nerdamer-prime's version. `BACKPASS_CAS_CACHE=0` turns it off; any other
 * value is the file to use. Appends are whole lines and best effort: a read-only or missing folder
 * only means no cache. A line that is not a question and an answer, both strings, is skipped.
 *
 * The file is not trusted more than the CAS is: cas.ts parses each answer back and checks it at
 * random points exactly as it does a fresh one, so an edited or stale file can make a build slower
 * (the compiler's own rules answer), never wrong.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The format of the lines; a new format is a new file. */
const FORMAT = 1;
/** A file past this size is read but not grown. */
const MAX_BYTES = 8 * 1024 * 1024;

/** nerdamer-prime's version, from the package.json beside the module cas-worker.mjs imports. */
function casVersion(): string {
  try {
    const entry = createRequire(import.meta.url).resolve("nerdamer-prime/all");
    for (let at = dirname(entry); dirname(at) !== at; at = dirname(at)) {
      const file = join(at, "package.json");
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "nerdamer-prime" && typeof pkg.version === "string") return pkg.version.replace(/[^\w.-]/g, "_");
    }
  } catch {
    // no version: no cache (below)
  }
  return "";
}

/** The cache file for a build run in `cwd` (undefined: no cache). */
export function answerFile(env: Readonly<Record<string, string | undefined>> = process.env, cwd: string = process.cwd()): string | undefined {
  const chosen = env["BACKPASS_CAS_CACHE"];
  if (chosen === "0") return undefined;
  if (chosen) return chosen;
  const version = casVersion();
  if (!version) return undefined;
  for (let at = cwd; ; at = dirname(at)) {
    if (existsSync(join(at, "node_modules"))) return join(at, "node_modules", ".cache", "backpass", `cas-answers-${version}-${FORMAT}.jsonl`);
    if (dirname(at) === at) return undefined;
  }
}

/** The answers a file holds, at most `limit` of them; a missing or unreadable file holds none. */
export function readAnswers(file: string, limit: number): Map<string, string> {
  const out = new Map<string, string>();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    if (out.size >= limit) break;
    if (line === "") continue;
    try {
      const { k, a } = JSON.parse(line) as { k?: unknown; a?: unknown };
      if (typeof k === "string" && typeof a === "string") out.set(k, a);
    } catch {
      // a line cut short (a process stopped while appending) or not ours
    }
  }
  return out;
}

/** Appends one answer to `file` as a whole line; false when it could not (or the file is full). */
export function keepAnswer(file: string, question: string, answer: string): boolean {
  try {
    if (existsSync(file) && statSync(file).size > MAX_BYTES) return false;
    mkdirSync(dirname(file), { recursive: true });
    appendFileSync(file, `${JSON.stringify({ k: question, a: answer })}\n`);
    return true;
  } catch {
    return false;
  }
}
