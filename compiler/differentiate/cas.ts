/**
 * The one adapter between backpass and the CAS (nerdamer-prime), treated as an untrusted oracle.
 *
 * A flat scalar expression (no reductions) goes out as a string in which every leaf — a tensor
 * element, a constant, a size, a reduction placeholder — is mangled to `q<k>`, so the CAS never sees
 * a name it reserves (`e`, `pi`, `i`). Its answer comes back as a string, is parsed into our IR, and
 * is checked against central finite differences at random points. A failed or wrong answer falls
 * back to the compiler's own rules (rules.ts), which are checked the same way.
 *
 * The CAS runs in a worker thread (cas-worker.mjs) called synchronously: a call that takes longer
 * than its deadline, or more memory than the worker may use, is stopped (the worker is terminated
 * and restarted for the next call) and the compiler's own rules answer. Expressions larger than
 * `MAX_CAS_NODES` and calls after the build's CAS budget is spent go straight to the own rules.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import {
  assertNever,
  call,
  contains,
  mapBottomUp,
  mul,
  num,
  pow,
  print,
  sqrt,
  sym,
  treeSize,
  add,
  div,
  sub,
  neg,
  FUNCTIONS,
  ZERO,
  type Expr,
  type Fn,
  type SizeOf,
} from "../ir/expr.js";
import { parseExpression, type Ast } from "../parse/expression.js";
import { evalLeaves, leavesOf } from "../ir/evaluate.js";
import { prng } from "../ir/random.js";
import { derivative } from "./rules.js";
import { answerFile, keepAnswer, readAnswers } from "./cas-cache.js";
import { CAS_BUILD_BUDGET_MS, CAS_CALL_DEADLINE_MS, CAS_HEAP_MB, MAX_CAS_NODES, currentBudget } from "../limits.js";

export interface Partial {
  readonly expr: Expr;
  /** Who produced the answer that was used. */
  readonly source: "cas" | "rules";
  /** Why the CAS answer was not used, when it was not. */
  readonly rejected?: string;
}

/** Functions the CAS knows under the same name. */
const CAS_FUNCTIONS = new Set<Fn>(["exp", "log", "tanh", "sin", "cos", "cosh", "sinh", "sech"]);

const noSizes: SizeOf = (i) => {
  throw new Error(`flat expression has index '${i}'`);
};

class CasUnsupported extends Error {}

/** Prints a mangled flat expression in the CAS's syntax, fully parenthesized. */
export function toCasString(e: Expr): string {
  switch (e.kind) {
    case "num":
      return e.value < 0 ? `(${String(e.value)})` : String(e.value);
    case "sym":
      return e.name;
    case "ref":
      throw new CasUnsupported("unmangled reference");
    case "add":
      return e.terms.map((t) => `(${toCasString(t)})`).join("+");
    case "mul":
      return e.factors.map((t) => `(${toCasString(t)})`).join("*");
    case "pow":
      return `(${toCasString(e.base)})^(${toCasString(e.exp)})`;
    case "call":
      if (e.fn === "sigmoid") return `1/(1+exp(-(${toCasString(e.arg)})))`;
      if (!CAS_FUNCTIONS.has(e.fn)) throw new CasUnsupported(`the CAS has no '${e.fn}'`);
      return `${e.fn}(${toCasString(e.arg)})`;
    case "where":
    case "delta":
      throw new CasUnsupported(`the CAS is not asked about ${e.kind}(...)`);
    case "sum":
    case "max":
    case "stored":
      throw new CasUnsupported("reduction in a flat expression");
    default:
      return assertNever(e, "expression");
  }
}

/** Reads a CAS answer back into the IR; `leaf` maps mangled names back to their leaves. */
export function fromCasString(text: string, leaf: (name: string) => Expr | undefined): Expr {
  const go = (a: Ast): Expr => {
    switch (a.type) {
      case "num":
        return num(a.value);
      case "neg":
        return neg(go(a.arg));
      case "name": {
        if (a.indices) throw new CasUnsupported(`indexed name in a CAS answer: ${a.name}`);
        const l = leaf(a.name);
        if (l) return l;
        if (a.name === "e") return call("exp", num(1));
        if (a.name === "pi") return num(Math.PI);
        throw new CasUnsupported(`unknown name '${a.name}' in a CAS answer`);
      }
      case "binary": {
        if (a.op === "^" && a.left.type === "name" && a.left.name === "e" && !leaf("e")) return call("exp", go(a.right));
        const l = go(a.left);
        const r = go(a.right);
        switch (a.op) {
          case "+":
            return add(l, r);
          case "-":
            return sub(l, r);
          case "*":
            return mul(l, r);
          case "/":
            return div(l, r);
          case "^":
            return pow(l, r);
        }
      }
      // falls through (unreachable)
      case "compare":
        throw new CasUnsupported("a comparison in a CAS answer");
      case "call": {
        if (a.args.length !== 1) throw new CasUnsupported(`'${a.fn}' with ${a.args.length} arguments in a CAS answer`);
        const arg = go(a.args[0]!);
        if (a.fn === "sqrt") return sqrt(arg);
        if ((FUNCTIONS as readonly string[]).includes(a.fn)) return call(a.fn as Fn, arg);
        if (a.fn === "sec") return pow(call("cos", arg), num(-1));
        if (a.fn === "csc") return pow(call("sin", arg), num(-1));
        if (a.fn === "tan") return div(call("sin", arg), call("cos", arg));
        throw new CasUnsupported(`unknown function '${a.fn}' in a CAS answer`);
      }
    }
  };
  return go(parseExpression(text));
}

/**
 * Checks `candidate` = d flat / d v at random points against central differences of `flat`.
 * Returns undefined when it holds, or what went wrong.
 */
export function checkPartial(flat: Expr, v: Expr, candidate: Expr, seed: number): string | undefined {
  const leaves = leavesOf(flat);
  const rand = prng(seed);
  let valid = 0;
  for (let attempt = 0; attempt < 40 && valid < 6; attempt++) {
    const values = new Map<Expr, number>(leaves.map((l) => [l, 0.4 + 1.6 * rand()]));
    const at = (x: number): number => {
      const vals = new Map(values);
      vals.set(v, x);
      return evalLeaves(flat, vals);
    };
    const x0 = values.get(v)!;
    const h = 1e-5 * Math.max(1, Math.abs(x0));
    const fd = (at(x0 + h) - at(x0 - h)) / (2 * h);
    const fd2 = (at(x0 + h / 2) - at(x0 - h / 2)) / h;
    const got = evalLeaves(candidate, values);
    if (!Number.isFinite(fd) || !Number.isFinite(fd2) || Math.abs(fd - fd2) > 1e-6 * (1 + Math.abs(fd))) continue; // not smooth here
    valid++;
    // rounding in f itself, amplified by 1/h: a large constant term (exp(27) + 2a) hides the slope
    const noise = (8 * Number.EPSILON * (Math.abs(at(x0 + h)) + Math.abs(at(x0 - h)))) / h;
    if (!Number.isFinite(got) || Math.abs(got - fd) > 1e-5 * (1 + Math.abs(fd)) + noise)
      return `at ${leaves.map((l) => `${print(l)}=${values.get(l)!.toPrecision(4)}`).join(", ")} it gives ${got}, finite differences give ${fd}`;
  }
  return valid >= 3 ? undefined : "the expression could not be evaluated at enough random points";
}

const cache = new Map<string, Partial>();

/** The CAS worker and the channel to it; started on first use, restarted after a stopped call. */
interface CasThread {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly cell: Int32Array;
}
let thread: CasThread | undefined;
let requests = 0;

/** How long the worker may take to start and load the CAS (ms), on a busy machine. */
const START_DEADLINE_MS = 30_000;

function startThread(): CasThread {
  const { port1, port2 } = new MessageChannel();
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL("./cas-worker.mjs", import.meta.url), {
    workerData: { port: port2, signal: cell.buffer },
    transferList: [port2],
    resourceLimits: { maxOldGenerationSizeMb: CAS_HEAP_MB },
    stdout: true,
    stderr: true,
  });
  worker.unref();
  port1.unref();
  // a worker that dies (out of memory) is noticed by its deadline; the event must not throw
  worker.on("error", () => undefined);
  if (Atomics.wait(cell, 0, 0, START_DEADLINE_MS) === "timed-out" && Atomics.load(cell, 0) === 0) {
    void worker.terminate();
    throw new CasUnsupported("the CAS worker did not start");
  }
  return { worker, port: port1, cell };
}

function stopThread(): void {
  if (!thread) return;
  void thread.worker.terminate();
  thread.port.close();
  thread = undefined;
}

/** `d expr / d v` from the CAS, in its syntax; throws CasUnsupported when it fails or runs out of time. */
function casDiff(expr: string, v: string, deadlineMs: number): string {
  thread ??= startThread();
  const { port, cell } = thread;
  const id = ++requests;
  const before = Atomics.load(cell, 0);
  port.postMessage({ id, expr, v });
  const end = Date.now() + deadlineMs;
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) break;
    if (Atomics.load(cell, 0) === before) Atomics.wait(cell, 0, before, left);
    const got = receiveMessageOnPort(port)?.message as { id: number; answer?: string; error?: string } | undefined;
    if (got && got.id === id) {
      if (got.answer === undefined) throw new CasUnsupported(got.error ?? "no answer");
      return got.answer;
    }
    if (!got && Atomics.load(cell, 0) === id) Atomics.wait(cell, 0, id, 1); // answer not yet on the port
  }
  stopThread();
  throw new CasUnsupported(`it took longer than ${deadlineMs} ms (or more than ${CAS_HEAP_MB} MB) and was stopped`);
}

/** Asks the CAS within the per-call deadline and the build's CAS budget. */
function askCas(expr: string, v: string): string {
  const budget = currentBudget();
  const spent = budget?.casMs ?? 0;
  if (spent >= CAS_BUILD_BUDGET_MS) throw new CasUnsupported(`this build's CAS time budget of ${CAS_BUILD_BUDGET_MS / 1000} s is spent`);
  const t0 = Date.now();
  try {
    return casDiff(expr, v, Math.min(budget?.casCallMs ?? CAS_CALL_DEADLINE_MS, CAS_BUILD_BUDGET_MS - spent));
  } finally {
    if (budget) budget.casMs += Date.now() - t0;
  }
}

/**
 * The CAS's answers by question. Questions are asked with the leaves renamed q0, q1, ..., so the
 * same shape of expression in another spec, or under other names, is asked once; each answer is
 * still parsed back and checked for the expression at hand. The answers of earlier processes come
 * from the cache file (cas-cache.ts), read when the first question is asked, and each new answer is
 * added to it. Failures are not kept (a call stopped at its deadline is asked again). Bounded:
 * cleared when it holds MAX_ANSWERS.
 */
let answers: Map<string, string> | undefined;
let answersFile: string | undefined;
const MAX_ANSWERS = 20_000;

/** Takes the answers from `file` (undefined: none) from now on; the first question does this with answerFile(). */
export function useAnswerFile(file: string | undefined): void {
  answersFile = file;
  answers = file === undefined ? new Map() : readAnswers(file, MAX_ANSWERS);
}

function casAnswer(expr: string, v: string): string {
  if (!answers) useAnswerFile(answerFile());
  answers ??= new Map();
  const key = `${v}\u0000${expr}`;
  const known = answers.get(key);
  if (known !== undefined) return known;
  const answer = askCas(expr, v);
  if (answers.size >= MAX_ANSWERS) answers.clear();
  answers.set(key, answer);
  if (answersFile !== undefined) keepAnswer(answersFile, key, answer);
  return answer;
}

/** d flat / d v for a flat scalar expression and one of its leaves, from the CAS, checked. */
export function scalarPartial(flat: Expr, v: Expr): Partial {
  const key = `${flat.id}|${v.id}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const leaves = leavesOf(flat);
  if (!leaves.includes(v)) return remember(key, { expr: ZERO, source: "rules" }); // nothing to ask
  const names = new Map<Expr, string>(leaves.map((l, k) => [l, `q${k}`]));
  const byName = new Map<string, Expr>(leaves.map((l, k) => [`q${k}`, l]));
  const seed = flat.hash ^ (v.hash * 31);
  let rejected: string;
  let answered: Expr | undefined;
  try {
    if (!names.has(v)) throw new CasUnsupported("variable does not occur");
    if (treeSize(flat) > MAX_CAS_NODES) throw new CasUnsupported(`the expression has more than ${MAX_CAS_NODES} nodes, the most the CAS is asked about`);
    const mangled = mapBottomUp(flat, (x) => (names.has(x) ? sym(names.get(x)!, "const") : x), noSizes);
    const answer = casAnswer(toCasString(mangled), names.get(v)!);
    const expr = fromCasString(answer, (n) => byName.get(n));
    answered = expr;
    const inexact = approximatedConstant(expr, flat);
    if (inexact) throw new CasUnsupported(`it approximates a constant: ${inexact}`);
    const bad = checkPartial(flat, v, expr, seed);
    if (bad === undefined) return remember(key, { expr, source: "cas" });
    rejected = `the CAS answered '${answer.length > 120 ? `${answer.slice(0, 120)}...` : answer}', which is wrong: ${bad}`;
  } catch (e) {
    rejected = `the CAS failed: ${(e as Error).message}`;
  }
  const own = derivative(flat, v);
  const bad = checkPartial(flat, v, own, seed);
  if (bad === undefined) return remember(key, { expr: own, source: "rules", rejected });
  // finite differences cannot resolve some derivatives (sin(4 + g + x^27) near x = 2 loses the
  // slope in g to rounding of the argument); two independent derivations that agree are accepted
  if (answered !== undefined && sameValues(flat, answered, own, seed)) return remember(key, { expr: own, source: "rules", rejected: "finite differences could not confirm it; the CAS and the compiler's own rule agree" });
  throw new UnverifiedDerivative(`cannot confirm the derivative of ${print(flat)} with respect to ${print(v)}: ${rejected}; the compiler's own rule gives ${print(own)}, which finite differences do not confirm either: ${bad}`);
}

/** A local derivative that neither the CAS nor the compiler's own rules could confirm numerically. */
export class UnverifiedDerivative extends Error {}

/** Whether two expressions in the leaves of `flat` agree at random points (where both are finite). */
function sameValues(flat: Expr, a: Expr, b: Expr, seed: number): boolean {
  const leaves = leavesOf(flat);
  const rand = prng(seed ^ 0x5bd1e995);
  let compared = 0;
  for (let k = 0; k < 12; k++) {
    const values = new Map<Expr, number>(leaves.map((l) => [l, (rand() < 0.5 ? -1 : 1) * (0.3 + 2 * rand())]));
    const x = evalLeaves(a, values);
    const y = evalLeaves(b, values);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    compared++;
    if (Math.abs(x - y) > 1e-9 * (1 + Math.abs(x))) return false;
  }
  return compared >= 3;
}

/**
 * A number raised to a symbolic power that the question did not hold: nerdamer writes
 * `exp(x)/(1+exp(x))` as `e^x/(1+119696244^(-x)*325368125^x)`, right to 16 digits but not exact.
 */
function approximatedConstant(answer: Expr, question: Expr): string | undefined {
  let found: string | undefined;
  const asked = (b: Expr) => contains(question, (x) => x.kind === "pow" && x.base === b);
  contains(answer, (x) => {
    if (x.kind === "pow" && x.base.kind === "num" && x.exp.kind !== "num" && !asked(x.base)) found ??= print(x);
    return false;
  });
  return found;
}

function remember(key: string, p: Partial): Partial {
  cache.set(key, p);
  return p;
}
