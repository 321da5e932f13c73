/** The public API of backpass: what a spec file or a program embedding the compiler imports. */
export { defineSpec, checkSpec, SpecError, type SpecObject, type Problem } from "./parse/check.js";
export { compile, explain, stats, type CompileOptions, type CompileResult, type ExplainOptions, type Dtype, type Format, type Target, type ModuleKind } from "./api.js";
export type { SpecStats, KernelStats, PassStats, ReductionStats } from "./stats.js";
