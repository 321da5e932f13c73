import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * vitest's order (longest first by the last run's times, else largest file first), except that
 * package.test.ts always starts first: it spends most of its time waiting for npm and node
 * subprocesses, so begun first it overlaps the rest of the suite instead of running alone at the
 * end (on a fresh clone, with no times recorded, it would start after the larger files).
 */
class PackageFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const first = (f: TestSpecification) => f.moduleId.endsWith("/test/package.test.ts");
    return [...sorted.filter(first), ...sorted.filter((f) => !first(f))];
  }
}

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
    // worker threads, not child processes: the same tests in about 8 s less CPU and 5 s less wall
    // time here (64 s against 69 s, three runs each); no test changes the process's directory or
    // exits it, and the CLI and package tests start their own processes
    pool: "threads",
    sequence: { sequencer: PackageFirst },
  },
});
