import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The CLI the tests spawn (bin/redo-ts.js) runs dist/bundle/: made fresh from lib/ first.
    globalSetup: ['test/helpers/bundle-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    sequence: { concurrent: false },
  },
});
