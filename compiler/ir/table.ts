/**
 * Name tables. Spec names are data: an index letter may be called `constructor` and a size
 * `toString`. A plain object literal inherits those keys from `Object.prototype`, so every table
 * keyed by a name is built here, with no prototype: `t["constructor"]` is undefined unless set.
 */
export function nameTable<T>(entries: Iterable<readonly [string, T]> = []): Record<string, T> {
  const t = Object.create(null) as Record<string, T>;
  for (const [k, v] of entries) t[k] = v;
  return t;
}

/** `t[k]` if `t` holds `k` itself: a table a caller built from a plain object inherits nothing here. */
export function own<T>(t: Readonly<Record<string, T>>, k: string): T | undefined {
  return Object.hasOwn(t, k) ? t[k] : undefined;
}
