/** The public API of backpass: what a spec file or a program embedding the compiler imports. */
export { defineSpec, checkSpec, SpecError, type SpecObject, type Problem } from "./parse/check.js";
