import { defineConfig } from 'vitest/config';

// Tests share two cores with model inference: run files one at a time, with room for real model work.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Starts a throwaway Redis for the Redis-backed tests when none answers at REDIS_TEST_URL.
    globalSetup: ['test/helpers/redis-setup.ts'],
  },
});
