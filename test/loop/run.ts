/** Running one loop-IR pass on text: the input parsed, the pass applied, the result printed. */
import { Namer, namesIn, type Stmt } from "../../compiler/loop/ir.js";
import { parseStmts } from "../../compiler/loop/parse.js";
import { printStmts } from "../../compiler/loop/print.js";

/** Text with the indentation of its first non-empty line removed from every line, without the first and last line breaks. */
export function ir(text: string): string {
  const lines = text.replace(/^\n/, "").replace(/\n\s*$/, "").split("\n");
  const pad = /^ */.exec(lines.find((l) => l.trim() !== "") ?? "")![0].length;
  return lines.map((l) => l.slice(Math.min(pad, /^ */.exec(l)![0].length))).join("\n");
}

/** The printed result of `pass` on the statements `input`, with a namer that avoids every name the input uses. */
export function runPass(pass: (body: readonly Stmt[], namer: Namer) => Stmt[], input: string): string {
  const body = parseStmts(ir(input));
  return printStmts(pass(body, new Namer(namesIn(body))));
}
