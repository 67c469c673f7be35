/** Vitest global set-up: bundles lib/ into dist/bundle/ (scripts/bundle.mjs) so the CLI the tests spawn is the code under test. */

// @ts-expect-error: a plain .mjs build script, without type declarations
import { bundle } from '../../scripts/bundle.mjs';

/** Runs once before any test file. */
export default async function setup(): Promise<void> {
  await bundle();
}
