/**
 * The CAS's answers kept between processes (compiler/differentiate/cas-cache.ts): where the file
 * is, that lines round-trip and broken lines are skipped, and that an answer read from the file is
 * checked like a fresh one: a wrong answer there is refused and the compiler's own rule answers.
 */
import { afterAll, describe, expect, it } from "vitest";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { answerFile, keepAnswer, readAnswers } from "../compiler/differentiate/cas-cache.js";
import { checkPartial, scalarPartial, useAnswerFile } from "../compiler/differentiate/cas.js";
import { mul, ref, sym } from "../compiler/ir/expr.js";

const work = mkdtempSync(join(tmpdir(), "backpass-cas-cache-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the CAS answer file", () => {
  it("is under node_modules/.cache/backpass of the nearest folder with node_modules, another file when named, none when turned off", () => {
    const project = join(work, "project");
    mkdirSync(join(project, "node_modules"), { recursive: true });
    mkdirSync(join(project, "src", "deep"), { recursive: true });
    const file = answerFile({}, join(project, "src", "deep"))!;
    expect(file.startsWith(join(project, "node_modules", ".cache", "backpass", "cas-answers-"))).toBe(true);
    expect(file).toMatch(/cas-answers-\d+\.\d+\.\d+-\d+\.jsonl$/);
    expect(answerFile({ BACKPASS_CAS_CACHE: "0" }, project)).toBeUndefined();
    expect(answerFile({ BACKPASS_CAS_CACHE: join(work, "mine.jsonl") }, project)).toBe(join(work, "mine.jsonl"));
  });

  it("round-trips answers, skips lines that are not a question and an answer, and holds at most the limit", () => {
    const file = join(work, "answers", "a.jsonl");
    expect(readAnswers(file, 10).size).toBe(0); // no file yet
    expect(keepAnswer(file, "q0\u0000(q0)*(q1)", "q1")).toBe(true);
    expect(keepAnswer(file, "q1\u0000exp(q1)", "e^q1")).toBe(true);
    appendFileSync(file, '{"k": "q0\\u0000x", "a": 3}\nnot json\n{"k": "q2\\u0000(q2)^(2)", "a": "2*q2"}\n{"k": "cut sh');
    expect([...readAnswers(file, 10)]).toEqual([
      ["q0\u0000(q0)*(q1)", "q1"],
      ["q1\u0000exp(q1)", "e^q1"],
      ["q2\u0000(q2)^(2)", "2*q2"],
    ]);
    expect(readAnswers(file, 2).size).toBe(2);
  });

  it("does not keep answers where it cannot write", () => {
    const blocker = join(work, "a-file");
    writeFileSync(blocker, "");
    expect(keepAnswer(join(blocker, "x.jsonl"), "q", "a")).toBe(false);
  });

  it("an answer read from the file is checked like a fresh one: a wrong one is refused and the own rule answers", () => {
    const file = join(work, "tampered.jsonl");
    const a = ref("a", ["n"]);
    const c = sym("c", "const");
    try {
      // the question d(a*c)/da asked afresh, and kept in the file
      useAnswerFile(file);
      const fresh = scalarPartial(mul(a, c), a);
      expect(fresh.source).toBe("cas");
      const lines = readFileSync(file, "utf8").trim().split("\n");
      expect(lines).toHaveLength(1);
      // the same question (leaves are renamed q0, q1) with a wrong answer in the file
      const { k } = JSON.parse(lines[0]!) as { k: string; a: string };
      writeFileSync(file, `${JSON.stringify({ k, a: "2*q1" })}\n`);
      useAnswerFile(file);
      const b = ref("b", ["n"]);
      const d = sym("d", "const");
      const got = scalarPartial(mul(b, d), b);
      expect(got.source).toBe("rules");
      expect(got.rejected).toMatch(/the CAS answered '2\*q1', which is wrong/);
      expect(checkPartial(mul(b, d), b, got.expr, 3)).toBeUndefined();
    } finally {
      useAnswerFile(answerFile());
    }
  });
});
