/**
 * The yardstick: the fastest batchnorm backward (fused closed form) we could write by hand, with
 * preallocated outputs. It is not product code; the benchmark holds the generated kernel to it.
 *
 * Pass 1 walks dout and xhat once, four rows at a time, into the per-column sums
 * sum_n dout and sum_n dout*xhat. The per-column coefficients of
 * dx = a*dout + b*xhat + c are then computed once, and pass 2 writes dx two rows and four columns
 * at a time.
 */
export function batchnormBackwardByHand(
  N: number,
  D: number,
  dout: Float64Array,
  xhat: Float64Array,
  gamma: Float64Array,
  ivar: Float64Array,
  dx: Float64Array,
  dgamma: Float64Array,
  dbeta: Float64Array,
  a: Float64Array,
  b: Float64Array,
  c: Float64Array,
): void {
  dgamma.fill(0);
  dbeta.fill(0);
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = n * D;
    const r1 = r0 + D;
    const r2 = r1 + D;
    const r3 = r2 + D;
    for (let d = 0; d < D; d++) {
      const g0 = dout[r0 + d]!;
      const g1 = dout[r1 + d]!;
      const g2 = dout[r2 + d]!;
      const g3 = dout[r3 + d]!;
      dbeta[d] = dbeta[d]! + g0 + g1 + g2 + g3;
      dgamma[d] = dgamma[d]! + g0 * xhat[r0 + d]! + g1 * xhat[r1 + d]! + g2 * xhat[r2 + d]! + g3 * xhat[r3 + d]!;
    }
  }
  for (; n < N; n++) {
    const r0 = n * D;
    for (let d = 0; d < D; d++) {
      const g0 = dout[r0 + d]!;
      dbeta[d] = dbeta[d]! + g0;
      dgamma[d] = dgamma[d]! + g0 * xhat[r0 + d]!;
    }
  }
  for (let d = 0; d < D; d++) {
    const k = gamma[d]! * ivar[d]!;
    a[d] = k;
    b[d] = (-k * dgamma[d]!) / N;
    c[d] = (-k * dbeta[d]!) / N;
  }
  n = 0;
  for (; n + 2 <= N; n += 2) {
    const r0 = n * D;
    const r1 = r0 + D;
    let d = 0;
    for (; d + 4 <= D; d += 4) {
      dx[r0 + d] = a[d]! * dout[r0 + d]! + b[d]! * xhat[r0 + d]! + c[d]!;
      dx[r0 + d + 1] = a[d + 1]! * dout[r0 + d + 1]! + b[d + 1]! * xhat[r0 + d + 1]! + c[d + 1]!;
      dx[r0 + d + 2] = a[d + 2]! * dout[r0 + d + 2]! + b[d + 2]! * xhat[r0 + d + 2]! + c[d + 2]!;
      dx[r0 + d + 3] = a[d + 3]! * dout[r0 + d + 3]! + b[d + 3]! * xhat[r0 + d + 3]! + c[d + 3]!;
      dx[r1 + d] = a[d]! * dout[r1 + d]! + b[d]! * xhat[r1 + d]! + c[d]!;
      dx[r1 + d + 1] = a[d + 1]! * dout[r1 + d + 1]! + b[d + 1]! * xhat[r1 + d + 1]! + c[d + 1]!;
      dx[r1 + d + 2] = a[d + 2]! * dout[r1 + d + 2]! + b[d + 2]! * xhat[r1 + d + 2]! + c[d + 2]!;
      dx[r1 + d + 3] = a[d + 3]! * dout[r1 + d + 3]! + b[d + 3]! * xhat[r1 + d + 3]! + c[d + 3]!;
    }
    for (; d < D; d++) {
      dx[r0 + d] = a[d]! * dout[r0 + d]! + b[d]! * xhat[r0 + d]! + c[d]!;
      dx[r1 + d] = a[d]! * dout[r1 + d]! + b[d]! * xhat[r1 + d]! + c[d]!;
    }
  }
  for (; n < N; n++) {
    const r0 = n * D;
    for (let d = 0; d < D; d++) dx[r0 + d] = a[d]! * dout[r0 + d]! + b[d]! * xhat[r0 + d]! + c[d]!;
  }
}

/**
 * The streaming floor as the issue defines it: plain loops that stream the minimal data of the two
 * passes (read dout and xhat, then read them again and write dx) with almost no arithmetic.
 */
export function streamingFloor(N: number, D: number, dout: Float64Array, xhat: Float64Array, dx: Float64Array, s1: Float64Array, s2: Float64Array): void {
  s1.fill(0);
  s2.fill(0);
  for (let n = 0; n < N; n++) {
    const r = n * D;
    for (let d = 0; d < D; d++) {
      s1[d] = s1[d]! + dout[r + d]!;
      s2[d] = s2[d]! + xhat[r + d]!;
    }
  }
  for (let n = 0; n < N; n++) {
    const r = n * D;
    for (let d = 0; d < D; d++) dx[r + d] = dout[r + d]! + xhat[r + d]!;
  }
}

/**
 * The same traffic with the hand-written kernel's unrolling: a tighter floor, closer to what the
 * memory system allows. It is reported beside the plain one.
 */
export function streamingFloorUnrolled(N: number, D: number, dout: Float64Array, xhat: Float64Array, dx: Float64Array, s1: Float64Array): void {
  s1.fill(0);
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = n * D;
    const r1 = r0 + D;
    const r2 = r1 + D;
    const r3 = r2 + D;
    for (let d = 0; d < D; d++) s1[d] = s1[d]! + dout[r0 + d]! + xhat[r0 + d]! + dout[r1 + d]! + xhat[r1 + d]! + dout[r2 + d]! + xhat[r2 + d]! + dout[r3 + d]! + xhat[r3 + d]!;
  }
  for (; n < N; n++) {
    const r0 = n * D;
    for (let d = 0; d < D; d++) s1[d] = s1[d]! + dout[r0 + d]! + xhat[r0 + d]!;
  }
  const total = N * D;
  let i = 0;
  for (; i + 4 <= total; i += 4) {
    dx[i] = dout[i]! + xhat[i]!;
    dx[i + 1] = dout[i + 1]! + xhat[i + 1]!;
    dx[i + 2] = dout[i + 2]! + xhat[i + 2]!;
    dx[i + 3] = dout[i + 3]! + xhat[i + 3]!;
  }
  for (; i < total; i++) dx[i] = dout[i]! + xhat[i]!;
}
