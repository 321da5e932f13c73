/**
 * The math functions of the WebAssembly backend, as WebAssembly text: a generated module imports
 * nothing, so `exp`, `log`, `tanh`, `erf`, ... are functions of the module itself. WebAssembly has
 * `sqrt`, `abs`, `min`/`max` and `copysign` as instructions; everything else is here.
 *
 * The algorithms are fdlibm's (the ones musl and V8 descend from): `exp` and `log` reduce the
 * argument by ln 2 and evaluate fdlibm's minimax polynomials (within 1 ulp); `sin`/`cos` reduce by
 * pi/2 in three parts (Cody and Waite) and use fdlibm's kernels, exact to an ulp or two for
 * |x| < 2^20 and losing digits beyond; `expm1` and `log1p` use Kahan's and Goldberg's corrections
 * through `exp` and `log` (a few ulps); `tanh`, `sinh`, `cosh` are written through `expm1`/`exp`;
 * `pow` squares for integer exponents up to 64 and is `exp(y log x)` otherwise (an ulp of
 * `y ln x` becomes |y ln x| ulps of the result: no library spec calls it); `erf` is the
 * series and continued fraction the TypeScript modules use. test/wasm-math.test.ts measures each
 * against `Math` in ulps.
 *
 * Each function takes and returns f64 and is named `$m.<name>` (a name no kernel local can take:
 * the `Namer` makes identifiers, which never contain a dot).
 */

/** The functions a kernel may call, with the WebAssembly text of each and the functions it calls. */
const FUNCS: Readonly<Record<string, { readonly uses: readonly string[]; readonly text: string }>> = {
  scalbn: {
    uses: [],
    // y * 2^n for n in [-1100, 1100], as musl's scalbn
    text: `(func $m.scalbn (param $y f64) (param $n i32) (result f64)
  (if (i32.gt_s (local.get $n) (i32.const 1023))
    (then (local.set $y (f64.mul (local.get $y) (f64.const 0x1p1023)))
          (local.set $n (i32.sub (local.get $n) (i32.const 1023)))
          (if (i32.gt_s (local.get $n) (i32.const 1023)) (then (local.set $n (i32.const 1023)))))
    (else (if (i32.lt_s (local.get $n) (i32.const -1022))
      (then (local.set $y (f64.mul (local.get $y) (f64.const 0x1p-969)))
            (local.set $n (i32.add (local.get $n) (i32.const 969)))
            (if (i32.lt_s (local.get $n) (i32.const -1022))
              (then (local.set $y (f64.mul (local.get $y) (f64.const 0x1p-969)))
                    (local.set $n (i32.add (local.get $n) (i32.const 969)))
                    (if (i32.lt_s (local.get $n) (i32.const -1022)) (then (local.set $n (i32.const -1022))))))))))
  (f64.mul (local.get $y) (f64.reinterpret_i64 (i64.shl (i64.extend_i32_s (i32.add (local.get $n) (i32.const 1023))) (i64.const 52)))))`,
  },
  exp: {
    uses: ["scalbn"],
    // x = k ln2 + r, |r| <= ln2/2; exp(r) = 1 + r + r c/(2 - c) with fdlibm's P1..P5
    text: `(func $m.exp (param $x f64) (result f64) (local $k f64) (local $hi f64) (local $lo f64) (local $r f64) (local $rr f64) (local $c f64)
  (if (f64.ne (local.get $x) (local.get $x)) (then (return (local.get $x))))
  (if (f64.gt (local.get $x) (f64.const 709.782712893383973096)) (then (return (f64.const inf))))
  (if (f64.lt (local.get $x) (f64.const -745.13321910194110842)) (then (return (f64.const 0))))
  (local.set $k (f64.nearest (f64.mul (local.get $x) (f64.const 1.44269504088896338700e+00))))
  (local.set $hi (f64.sub (local.get $x) (f64.mul (local.get $k) (f64.const 6.93147180369123816490e-01))))
  (local.set $lo (f64.mul (local.get $k) (f64.const 1.90821492927058770002e-10)))
  (local.set $r (f64.sub (local.get $hi) (local.get $lo)))
  (local.set $rr (f64.mul (local.get $r) (local.get $r)))
  (local.set $c (f64.sub (local.get $r) (f64.mul (local.get $rr)
    (f64.add (f64.const 1.66666666666666019037e-01) (f64.mul (local.get $rr)
    (f64.add (f64.const -2.77777777770155933842e-03) (f64.mul (local.get $rr)
    (f64.add (f64.const 6.61375632143793436117e-05) (f64.mul (local.get $rr)
    (f64.add (f64.const -1.65339022054652515390e-06) (f64.mul (local.get $rr) (f64.const 4.13813679705723846039e-08))))))))))))
  (call $m.scalbn
    (f64.add (f64.const 1) (f64.add (f64.sub (f64.div (f64.mul (local.get $r) (local.get $c)) (f64.sub (f64.const 2) (local.get $c))) (local.get $lo)) (local.get $hi)))
    (i32.trunc_f64_s (local.get $k))))`,
  },
  log: {
    uses: [],
    // x = 2^k (1 + f), 1 + f in [sqrt(2)/2, sqrt(2)); log(1 + f) = f - hfsq + s (hfsq + R(z)), fdlibm's Lg1..Lg7
    text: `(func $m.log (param $x f64) (result f64) (local $u i64) (local $hx i32) (local $k i32) (local $f f64) (local $hfsq f64) (local $s f64) (local $z f64) (local $w f64) (local $dk f64)
  (local.set $u (i64.reinterpret_f64 (local.get $x)))
  (local.set $hx (i32.wrap_i64 (i64.shr_u (local.get $u) (i64.const 32))))
  (if (i32.or (i32.lt_u (local.get $hx) (i32.const 0x00100000)) (i32.shr_u (local.get $hx) (i32.const 31)))
    (then
      (if (i64.eqz (i64.shl (local.get $u) (i64.const 1))) (then (return (f64.const -inf))))
      (if (i32.shr_u (local.get $hx) (i32.const 31)) (then (return (f64.const nan))))
      (local.set $k (i32.const -54))
      (local.set $u (i64.reinterpret_f64 (f64.mul (local.get $x) (f64.const 0x1p54))))
      (local.set $hx (i32.wrap_i64 (i64.shr_u (local.get $u) (i64.const 32)))))
    (else
      (if (i32.ge_u (local.get $hx) (i32.const 0x7ff00000)) (then (return (local.get $x))))
      (if (i64.eq (local.get $u) (i64.const 0x3ff0000000000000)) (then (return (f64.const 0))))))
  (local.set $hx (i32.add (local.get $hx) (i32.const 0x95f62)))
  (local.set $k (i32.add (local.get $k) (i32.sub (i32.shr_u (local.get $hx) (i32.const 20)) (i32.const 0x3ff))))
  (local.set $hx (i32.add (i32.and (local.get $hx) (i32.const 0x000fffff)) (i32.const 0x3fe6a09e)))
  (local.set $f (f64.sub (f64.reinterpret_i64 (i64.or (i64.shl (i64.extend_i32_u (local.get $hx)) (i64.const 32)) (i64.and (local.get $u) (i64.const 0xffffffff)))) (f64.const 1)))
  (local.set $hfsq (f64.mul (f64.mul (f64.const 0.5) (local.get $f)) (local.get $f)))
  (local.set $s (f64.div (local.get $f) (f64.add (f64.const 2) (local.get $f))))
  (local.set $z (f64.mul (local.get $s) (local.get $s)))
  (local.set $w (f64.mul (local.get $z) (local.get $z)))
  (local.set $dk (f64.convert_i32_s (local.get $k)))
  (local.set $z (f64.add
    (f64.mul (local.get $z) (f64.add (f64.const 6.666666666666735130e-01) (f64.mul (local.get $w) (f64.add (f64.const 2.857142874366239149e-01) (f64.mul (local.get $w) (f64.add (f64.const 1.818357216161805012e-01) (f64.mul (local.get $w) (f64.const 1.479819860511658591e-01))))))))
    (f64.mul (local.get $w) (f64.add (f64.const 3.999999999940941908e-01) (f64.mul (local.get $w) (f64.add (f64.const 2.222219843214978396e-01) (f64.mul (local.get $w) (f64.const 1.531383769920937332e-01))))))))
  (f64.add
    (f64.add
      (f64.sub
        (f64.add (f64.mul (local.get $s) (f64.add (local.get $hfsq) (local.get $z))) (f64.mul (local.get $dk) (f64.const 1.90821492927058770002e-10)))
        (local.get $hfsq))
      (local.get $f))
    (f64.mul (local.get $dk) (f64.const 6.93147180369123816490e-01))))`,
  },
  log1p: {
    uses: ["log"],
    // Goldberg: u = 1 + x rounded; log(u) x/(u - 1) cancels the rounding of u
    text: `(func $m.log1p (param $x f64) (result f64) (local $u f64)
  (local.set $u (f64.add (f64.const 1) (local.get $x)))
  (if (f64.eq (local.get $u) (f64.const 1)) (then (return (local.get $x))))
  (if (f64.eq (local.get $u) (f64.const inf)) (then (return (local.get $u))))
  (f64.mul (call $m.log (local.get $u)) (f64.div (local.get $x) (f64.sub (local.get $u) (f64.const 1)))))`,
  },
  expm1: {
    uses: ["exp", "log"],
    // Kahan: u = exp(x); (u - 1) x / log(u) cancels the rounding of u
    text: `(func $m.expm1 (param $x f64) (result f64) (local $u f64) (local $m f64)
  (if (f64.lt (f64.abs (local.get $x)) (f64.const 0x1p-54)) (then (return (local.get $x))))
  (local.set $u (call $m.exp (local.get $x)))
  ;; past 38, exp(x) - 1 rounds to exp(x)
  (if (f64.gt (local.get $x) (f64.const 38)) (then (return (local.get $u))))
  (if (f64.eq (local.get $u) (f64.const 1)) (then (return (local.get $x))))
  (if (f64.eq (local.get $u) (f64.const inf)) (then (return (local.get $u))))
  (local.set $m (f64.sub (local.get $u) (f64.const 1)))
  (if (f64.eq (local.get $m) (f64.const -1)) (then (return (f64.const -1))))
  (f64.div (f64.mul (local.get $m) (local.get $x)) (call $m.log (local.get $u))))`,
  },
  tanh: {
    uses: ["expm1"],
    // tanh|x| = t/(t + 2) with t = expm1(2|x|); 1 beyond 22
    text: `(func $m.tanh (param $x f64) (result f64) (local $a f64) (local $t f64)
  (local.set $a (f64.abs (local.get $x)))
  (if (f64.gt (local.get $a) (f64.const 22)) (then (return (f64.copysign (f64.const 1) (local.get $x)))))
  (local.set $t (call $m.expm1 (f64.mul (f64.const 2) (local.get $a))))
  (f64.copysign (f64.div (local.get $t) (f64.add (local.get $t) (f64.const 2))) (local.get $x)))`,
  },
  sinh: {
    uses: ["exp", "expm1"],
    text: `(func $m.sinh (param $x f64) (result f64) (local $a f64) (local $t f64) (local $r f64)
  (local.set $a (f64.abs (local.get $x)))
  (if (f64.lt (local.get $a) (f64.const 1))
    (then (local.set $t (call $m.expm1 (local.get $a)))
          (local.set $r (f64.mul (f64.const 0.5) (f64.add (local.get $t) (f64.div (local.get $t) (f64.add (local.get $t) (f64.const 1)))))))
    (else (if (f64.lt (local.get $a) (f64.const 709))
      (then (local.set $t (call $m.exp (local.get $a)))
            (local.set $r (f64.mul (f64.const 0.5) (f64.sub (local.get $t) (f64.div (f64.const 1) (local.get $t))))))
      (else (local.set $t (call $m.exp (f64.mul (f64.const 0.5) (local.get $a))))
            (local.set $r (f64.mul (f64.mul (f64.const 0.5) (local.get $t)) (local.get $t)))))))
  (f64.copysign (local.get $r) (local.get $x)))`,
  },
  cosh: {
    uses: ["exp"],
    text: `(func $m.cosh (param $x f64) (result f64) (local $a f64) (local $t f64)
  (local.set $a (f64.abs (local.get $x)))
  (if (f64.lt (local.get $a) (f64.const 709))
    (then (local.set $t (call $m.exp (local.get $a)))
          (return (f64.mul (f64.const 0.5) (f64.add (local.get $t) (f64.div (f64.const 1) (local.get $t)))))))
  (local.set $t (call $m.exp (f64.mul (f64.const 0.5) (local.get $a))))
  (f64.mul (f64.mul (f64.const 0.5) (local.get $t)) (local.get $t)))`,
  },
  sin: { uses: ["sinq"], text: `(func $m.sin (param $x f64) (result f64) (call $m.sinq (local.get $x) (i32.const 0)))` },
  cos: { uses: ["sinq"], text: `(func $m.cos (param $x f64) (result f64) (call $m.sinq (local.get $x) (i32.const 1)))` },
  sinq: {
    uses: [],
    // sin(x + q pi/2): x = n pi/2 + y with pi/2 in three parts, then fdlibm's __sin or __cos of y by (n + q) mod 4
    text: `(func $m.sinq (param $x f64) (param $q i32) (result f64) (local $n f64) (local $y f64) (local $z f64) (local $w f64) (local $hz f64) (local $r f64) (local $j i32)
  (if (f64.ne (f64.sub (local.get $x) (local.get $x)) (f64.const 0)) (then (return (f64.const nan))))
  (local.set $n (f64.nearest (f64.mul (local.get $x) (f64.const 6.36619772367581382433e-01))))
  (local.set $y (f64.sub (f64.sub (f64.sub (local.get $x) (f64.mul (local.get $n) (f64.const 1.57079632673412561417e+00))) (f64.mul (local.get $n) (f64.const 6.07710050630396597660e-11))) (f64.mul (local.get $n) (f64.const 2.02226624871116645580e-21))))
  (local.set $j (i32.and (i32.add (i32.wrap_i64 (i64.trunc_f64_s (local.get $n))) (local.get $q)) (i32.const 3)))
  (local.set $z (f64.mul (local.get $y) (local.get $y)))
  (if (i32.and (local.get $j) (i32.const 1))
    (then
      (local.set $w (f64.mul (local.get $z) (local.get $z)))
      (local.set $hz (f64.mul (f64.const 0.5) (local.get $z)))
      (local.set $r (f64.add
        (f64.mul (local.get $z) (f64.add (f64.const 4.16666666666666019037e-02) (f64.mul (local.get $z) (f64.add (f64.const -1.38888888888741095749e-03) (f64.mul (local.get $z) (f64.const 2.48015872894767294178e-05))))))
        (f64.mul (f64.mul (local.get $w) (local.get $w)) (f64.add (f64.const -2.75573143513906633035e-07) (f64.mul (local.get $z) (f64.add (f64.const 2.08757232129817482790e-09) (f64.mul (local.get $z) (f64.const -1.13596475577881948265e-11))))))))
      (local.set $w (f64.sub (f64.const 1) (local.get $hz)))
      (local.set $r (f64.add (local.get $w) (f64.add (f64.sub (f64.sub (f64.const 1) (local.get $w)) (local.get $hz)) (f64.mul (local.get $z) (local.get $r))))))
    (else
      (local.set $r (f64.add (local.get $y) (f64.mul (f64.mul (local.get $z) (local.get $y))
        (f64.add (f64.const -1.66666666666666324348e-01) (f64.mul (local.get $z)
          (f64.add (f64.const 8.33333333332248946124e-03) (f64.mul (local.get $z) (f64.add (f64.const -1.98412698298579493134e-04) (f64.mul (local.get $z)
          (f64.add (f64.const 2.75573137070700676789e-06) (f64.mul (local.get $z) (f64.add (f64.const -2.50507602534068634195e-08) (f64.mul (local.get $z) (f64.const 1.58969099521155010221e-10))))))))))))))))
  (if (result f64) (i32.ge_u (local.get $j) (i32.const 2)) (then (f64.neg (local.get $r))) (else (local.get $r))))`,
  },
  pow: {
    uses: ["exp", "log"],
    // integer exponents up to 64 by squaring (exact where the products are), else exp(y log|x|) with the sign of an odd power
    text: `(func $m.pow (param $x f64) (param $y f64) (result f64) (local $n i32) (local $b f64) (local $r f64) (local $neg i32)
  (if (f64.eq (local.get $y) (f64.const 0)) (then (return (f64.const 1))))
  (if (i32.and (f64.eq (f64.trunc (local.get $y)) (local.get $y)) (f64.le (f64.abs (local.get $y)) (f64.const 64)))
    (then
      (local.set $n (i32.trunc_f64_s (f64.abs (local.get $y))))
      (local.set $b (local.get $x))
      (local.set $r (f64.const 1))
      (loop $sq
        (if (i32.and (local.get $n) (i32.const 1)) (then (local.set $r (f64.mul (local.get $r) (local.get $b)))))
        (local.set $n (i32.shr_u (local.get $n) (i32.const 1)))
        (if (local.get $n) (then (local.set $b (f64.mul (local.get $b) (local.get $b))) (br $sq))))
      (return (if (result f64) (f64.lt (local.get $y) (f64.const 0)) (then (f64.div (f64.const 1) (local.get $r))) (else (local.get $r))))))
  (if (f64.ne (local.get $y) (local.get $y)) (then (return (local.get $y))))
  (if (f64.lt (local.get $x) (f64.const 0))
    (then
      (if (f64.ne (f64.trunc (local.get $y)) (local.get $y)) (then (return (f64.const nan))))
      (local.set $neg (f64.ne (f64.sub (local.get $y) (f64.mul (f64.const 2) (f64.trunc (f64.mul (f64.const 0.5) (local.get $y))))) (f64.const 0)))))
  (local.set $r (call $m.exp (f64.mul (local.get $y) (call $m.log (f64.abs (local.get $x))))))
  (if (result f64) (local.get $neg) (then (f64.neg (local.get $r))) (else (local.get $r))))`,
  },
  sign: {
    uses: [],
    text: `(func $m.sign (param $x f64) (result f64)
  (if (f64.gt (local.get $x) (f64.const 0)) (then (return (f64.const 1))))
  (if (f64.lt (local.get $x) (f64.const 0)) (then (return (f64.const -1))))
  (local.get $x))`,
  },
  erf: {
    uses: ["exp"],
    // as the TypeScript modules' erf: the series with positive terms below 3, the continued fraction of erfc up to 6, then 1
    text: `(func $m.erf (param $x f64) (result f64) (local $a f64) (local $term f64) (local $total f64) (local $n f64) (local $f f64) (local $v f64)
  (if (f64.ne (local.get $x) (local.get $x)) (then (return (local.get $x))))
  (local.set $a (f64.abs (local.get $x)))
  (if (f64.lt (local.get $a) (f64.const 3))
    (then
      (local.set $term (local.get $a))
      (local.set $total (local.get $a))
      (local.set $n (f64.const 1))
      (block $done (loop $more
        (br_if $done (i32.eqz (i32.and (f64.lt (local.get $n) (f64.const 200)) (f64.gt (local.get $term) (f64.mul (f64.const 1e-17) (local.get $total))))))
        (local.set $term (f64.mul (local.get $term) (f64.div (f64.mul (f64.mul (f64.const 2) (local.get $a)) (local.get $a)) (f64.add (f64.mul (f64.const 2) (local.get $n)) (f64.const 1)))))
        (local.set $total (f64.add (local.get $total) (local.get $term)))
        (local.set $n (f64.add (local.get $n) (f64.const 1)))
        (br $more)))
      (local.set $v (f64.mul (f64.mul (f64.const 1.1283791670955126) (call $m.exp (f64.neg (f64.mul (local.get $a) (local.get $a))))) (local.get $total)))
      (return (f64.copysign (local.get $v) (local.get $x)))))
  (if (f64.gt (local.get $a) (f64.const 6)) (then (return (f64.copysign (f64.const 1) (local.get $x)))))
  (local.set $f (local.get $a))
  (local.set $n (f64.const 80))
  (loop $cf
    (local.set $f (f64.add (local.get $a) (f64.div (f64.div (local.get $n) (f64.const 2)) (local.get $f))))
    (local.set $n (f64.sub (local.get $n) (f64.const 1)))
    (br_if $cf (f64.ge (local.get $n) (f64.const 1))))
  (local.set $v (f64.sub (f64.const 1) (f64.div (call $m.exp (f64.neg (f64.mul (local.get $a) (local.get $a)))) (f64.mul (f64.const 1.7724538509055159) (local.get $f)))))
  (f64.copysign (local.get $v) (local.get $x)))`,
  },
};

/** The WebAssembly text of the math functions `used` call, with those they call in turn, in a fixed order. */
export function mathFunctions(used: Iterable<string>): string[] {
  const need = new Set<string>();
  const add = (f: string): void => {
    const def = FUNCS[f];
    if (def === undefined) throw new Error(`wasm: no implementation of '${f}'`);
    if (need.has(f)) return;
    need.add(f);
    def.uses.forEach(add);
  };
  for (const f of used) add(f);
  return Object.keys(FUNCS).filter((f) => need.has(f)).map((f) => FUNCS[f]!.text);
}

/** Whether a math function is a module function (`$m.<name>`) rather than an instruction. */
export function isModuleFunction(fn: string): boolean {
  return Object.hasOwn(FUNCS, fn);
}
