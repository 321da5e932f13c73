import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // pins fast-check's seed (BACKPASS_SEED varies it)
    setupFiles: ["test/setup.ts"],
    testTimeout: 120_000,
    // test files share their worker's module cache instead of importing the compiler, the CAS
    // worker and TensorFlow.js afresh for each file: this halves the suite's CPU time. No test file
    // mocks a module or leaves global state behind (cli-args.test.ts restores its process.kill spy).
    isolate: false,
    // vitest's default on this 2-core machine is one worker (cores - 1), which runs the files one
    // after another; package.test.ts spends most of its time waiting for npm and node subprocesses
    maxWorkers: 2,
  },
});
