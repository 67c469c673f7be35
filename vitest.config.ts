import { configDefaults, defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that run alone, after the others: they time a build or the end of a killed
 * one's processes against a few seconds, which a busy second worker could stretch.
 */
const alone = ['test/e2e/engine-faults.test.ts', 'test/e2e/engine-gaps.test.ts'];

/**
 * The longest files (minutes each: mmdebstrap's downloads, many sandboxed builds, a
 * 3 GiB source, two apps installed), started first, longest first, so no one of them is
 * left running alone at the end. Vitest orders by the last run's durations when it has
 * them, and by file size on a fresh clone (as in CI), where these would start late.
 */
const longest = ['test/e2e/debian-mmdebstrap.test.ts', 'test/e2e/hermetic-build.test.ts', 'test/e2e/hostile-input.test.ts', 'test/e2e/app-examples.test.ts'];

/** Vitest's order, with the longest files moved to the front. */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification): number => {
      const found = longest.findIndex((file) => spec.moduleId.endsWith(`/${file}`));
      return found === -1 ? longest.length : found;
    };
    const sorted = await super.sort(files);
    return sorted.map((spec, index) => ({ spec, index })).sort((a, b) => rank(a.spec) - rank(b.spec) || a.index - b.index).map(({ spec }) => spec);
  }
}

/** What both projects share. */
const common = {
  testTimeout: 120_000,
  hookTimeout: 120_000,
  pool: 'forks',
  sequence: { concurrent: false },
} as const;

export default defineConfig({
  test: {
    // The CLI the tests spawn (bin/redo-ts.js) runs dist/bundle/: made fresh from lib/ first.
    // Here only, not in the projects: it runs once for the whole run.
    globalSetup: ['test/helpers/bundle-setup.ts'],
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        // Two files at once (vitest's default is one less than the cores: 1 on two): a
        // file that waits on the network or on sleeps overlaps one that computes. Each
        // file has its own temporary folders, ports and registries; fixtures of the
        // shared test cache are built under a lock (test/helpers/shared-cache-lock.ts).
        test: { ...common, name: 'parallel', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...alone], maxWorkers: 2 },
      },
      {
        // One worker: vitest runs these files one at a time, once the others are done.
        test: { ...common, name: 'alone', include: alone, maxWorkers: 1 },
      },
    ],
  },
});
