/**
 * Spec text is untrusted data. Everything that comes from a spec (its name, description, step
 * texts, file path, error excerpts) reaches a sink only through the one function here for that
 * sink; nothing else in `compiler/` pastes spec text into code, comments, Markdown, SVG or the
 * terminal.
 *
 * Every function first makes invisible and layout-changing characters visible as `\u{hex}`:
 * C0 and C1 controls (newlines, ESC of ANSI/OSC sequences), DEL, the line terminators U+2028 and
 * U+2029, zero-width and bidirectional controls (Trojan Source), the byte-order mark.
 */

const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;

/** `s` with every invisible or layout-changing character written as `\u{hex}`. */
export function visible(s: string): string {
  return s.replace(INVISIBLE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

/** Text inside a `//` or a `/* *\/` comment of generated code: one line, never closing the comment. */
export function commentText(s: string): string {
  return visible(s).replace(/\*\//g, "*\\/");
}

/** A JavaScript string literal (double-quoted) holding `s` exactly; ASCII only, so no sink can misread it. */
export function stringLiteral(s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Text for a terminal: controls (ANSI, OSC, carriage returns, newlines) shown, never obeyed. */
export function terminalText(s: string): string {
  return visible(s);
}

const HTML: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text inside XML or HTML (SVG labels and titles, attribute values). */
export function xmlText(s: string): string {
  return visible(s).replace(/[&<>"']/g, (c) => HTML[c]!);
}

/**
 * Inline Markdown text: no HTML, no links, no emphasis or headings, on one line. HTML-special
 * characters become entities and the Markdown punctuation that could start markup is
 * backslash-escaped, so a description renders as the characters it holds.
 */
export function markdownText(s: string): string {
  return visible(s)
    .replace(/[\\`*_{}[\]#!|~$]/g, (c) => `\\${c}`) // emphasis, code, links, images, tables, math
    .replace(/^\s+/, "") // indentation would start a code block
    .replace(/^([-+=])/, "\\$1") // a list item or a heading underline at the start
    .replace(/^(\d+)([.)])/, "$1\\$2") // an ordered list item
    .replace(/[&<>"']/g, (c) => HTML[c]!); // HTML, autolinks
}

/** An inline Markdown code span holding `s`, whatever backticks it contains. */
export function markdownCode(s: string): string {
  const text = visible(s);
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** A line inside a fenced Markdown code block (the fence is three backticks). */
export function markdownCodeLine(s: string): string {
  return visible(s).replace(/`/g, "\\u{60}");
}

/** A double-quoted Graphviz DOT string; several lines are joined by DOT's own line break. */
export function dotString(s: string | readonly string[]): string {
  const lines = typeof s === "string" ? [s] : s;
  return `"${lines.map((l) => visible(l).replace(/[\\"]/g, (c) => `\\${c}`)).join("\\n")}"`;
}
