/**
 * Lowering an index form (CONTRACT §4.3) to the loop IR: the local that holds its value and the
 * test that it names an element. A gather's id is always in range (the prologue checked every id
 * before anything ran). An affine index `(2*i + k - 1)/d` may fall outside `[0, size)` or, with a
 * divisor, between two elements: a read there is 0 (zero padding) and an add there is dropped.
 *
 * The loop IR has no `if`: a guarded read is `ok ? value : 0` (a select evaluates only its chosen
 * branch), and a guarded add writes `ok ? value : 0` at the index clamped to 0, so no store leaves
 * its array's row.
 */
import type { Delta, Ref } from "../ir/expr.js";
import { bin, call, let_, local, num, select, sumOf, type Namer, type Stmt, type Value } from "../loop/ir.js";

/** What lowering a form needs: fresh names, the loop counters in scope, and how to read a gather's id. */
export interface FormScope {
  readonly namer: Namer;
  readonly indices: ReadonlyMap<string, string>;
  readonly read: (r: Ref) => Value;
}

export interface LoweredForm {
  /** Statements that compute the id, in order. */
  readonly lets: readonly Stmt[];
  /** The local holding the index value (an i32). */
  readonly id: string;
  /** `ok ? then : otherwise`, where ok says the id names an element (always true for a gather). */
  readonly check: (then: Value, otherwise: Value) => Value;
  /** Whether `check` tests anything. */
  readonly guarded: boolean;
}

/**
 * The value of `d`'s form in `scope` as an i32 local named from `want`; `size` is the local of the
 * extent of `d`'s index.
 */
export function lowerForm(d: Delta, scope: FormScope, size: string, want: string): LoweredForm {
  const f = d.form;
  const id = scope.namer.fresh(want);
  if (f.kind === "gather") return { lets: [let_(id, scope.read(f.from), false, "i32")], id, check: (then) => then, guarded: false };
  const parts: Value[] = f.terms.map((t) => {
    const v = scope.indices.get(t.index);
    if (v === undefined) throw new Error(`lowering: index '${t.index}' is not in scope`);
    return t.coef === 1 ? local(v) : bin("*", num(t.coef), local(v));
  });
  let numerator: Value = parts.length ? sumOf(parts) : num(f.offset);
  if (parts.length && f.offset !== 0) numerator = bin(f.offset < 0 ? "-" : "+", numerator, num(Math.abs(f.offset)));
  const inRange = (then: Value, otherwise: Value) => select(">=", local(id), num(0), select("<", local(id), local(size), then, otherwise), otherwise);
  if (f.divisor === 1) return { lets: [let_(id, numerator, false, "i32")], id, check: inRange, guarded: true };
  // (numerator)/d names an element only where d divides the numerator
  const top = scope.namer.fresh(`${want}_num`);
  return {
    lets: [let_(top, numerator, false, "i32"), let_(id, call("floor", bin("/", local(top), num(f.divisor))), false, "i32")],
    id,
    check: (then, otherwise) => select("==", bin("*", local(id), num(f.divisor)), local(top), inRange(then, otherwise), otherwise),
    guarded: true,
  };
}

/**
 * The form as an index for a store: the id itself when it is always in range, else a second local
 * clamped to 0 where the id names no element (the value stored there is then 0).
 */
export function storeIndex(form: LoweredForm, scope: FormScope): { lets: Stmt[]; id: string } {
  if (!form.guarded) return { lets: [], id: form.id };
  const safe = scope.namer.fresh(`${form.id}_safe`);
  return { lets: [let_(safe, form.check(local(form.id), num(0)), false, "i32")], id: safe };
}

/** `delta(v, form)` written as a test where no sum over `v` makes it a read: `d*v == numerator ? 1 : 0`. */
export function formTest(d: Delta, scope: FormScope): Value {
  const v = scope.indices.get(d.index);
  if (v === undefined) throw new Error(`lowering: index '${d.index}' is not in scope`);
  const f = d.form;
  if (f.kind === "gather") return select("==", local(v), scope.read(f.from), num(1), num(0));
  const parts: Value[] = f.terms.map((t) => {
    const x = scope.indices.get(t.index);
    if (x === undefined) throw new Error(`lowering: index '${t.index}' is not in scope`);
    return t.coef === 1 ? local(x) : bin("*", num(t.coef), local(x));
  });
  const numerator = parts.length ? bin("+", sumOf(parts), num(f.offset)) : num(f.offset);
  return select("==", f.divisor === 1 ? local(v) : bin("*", num(f.divisor), local(v)), numerator, num(1), num(0));
}
