/**
 * Prettier, the one formatter of every text backpass writes (the `.ts` module, and `--format js`'s
 * `.js` and `.d.ts`), behind a small memo: a build formats the same text again when it rebuilds a
 * spec it has built (`codegen --check` and then `codegen`, a watch loop, the API called twice), and
 * formatting is the largest part of emitting a module. Texts are keyed whole and the memo is bounded.
 */
import * as prettier from "prettier";

/** Prettier's parsers used here: babel's TypeScript parser for `.ts` and `.d.ts`, babel for `.js`. */
export type Parser = "babel-ts" | "babel";

const memo = new Map<string, Promise<string>>();
/** The texts remembered, most recent last; the oldest is dropped past this. */
const MAX_TEXTS = 32;

/** `text` formatted by prettier (print width 120, its defaults otherwise). */
export function formatted(text: string, parser: Parser): Promise<string> {
  const key = `${parser}\u0000${text}`;
  const known = memo.get(key);
  if (known) {
    memo.delete(key);
    memo.set(key, known);
    return known;
  }
  const out = prettier.format(text, { parser, printWidth: 120 });
  memo.set(key, out);
  // a failure is not remembered (it is thrown to the caller that asked)
  out.catch(() => memo.delete(key));
  if (memo.size > MAX_TEXTS) memo.delete(memo.keys().next().value!);
  return out;
}
