#!/usr/bin/env node
// Entry point of `npx backpass`: runs the TypeScript command line through tsx's loader.
import { register } from "tsx/esm/api";

register();
await import("../compiler/main.ts");
