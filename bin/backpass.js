#!/usr/bin/env node
// Entry point of `npx backpass`. The installed package runs its compiled JavaScript (dist/, built by
// `npm run build` when it is packed); a checkout of the repository, which has compiler/, runs the
// TypeScript sources through tsx, so `npm run codegen` always uses the code as it is now.
import { existsSync } from "node:fs";

if (existsSync(new URL("../compiler/main.ts", import.meta.url))) {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../compiler/main.ts");
} else {
  await import("../dist/main.js");
}
