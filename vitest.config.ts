import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // pins fast-check's seed (BACKPASS_SEED varies it)
    setupFiles: ["test/setup.ts"],
    testTimeout: 120_000,
  },
});
