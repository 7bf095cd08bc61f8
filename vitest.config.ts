import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Wire and Postgres tests start real servers; two cores here, so keep files in parallel
    // modest and let each file bound its own load.
    pool: "forks",
    maxWorkers: 2,
  },
});
