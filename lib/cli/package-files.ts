/** Where the installed redo-ts package's own files are (its root, bin, libexec, rules, the running library), in both of its builds. */

import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Set to true by the bundler (scripts/bundle.mjs, esbuild `define`) in dist/bundle/;
 * undeclared in tsc's dist/lib/, where `typeof` finds it undefined.
 */
declare const REDO_TS_IS_BUNDLE: boolean | undefined;

/** True when this code runs from the bundle (dist/bundle/*.js), false from tsc's dist/lib/. */
export const isBundle = typeof REDO_TS_IS_BUNDLE !== 'undefined' && REDO_TS_IS_BUNDLE;

// The bundle puts every module, entry or chunk, in dist/bundle/; tsc puts this one in
// dist/lib/cli/. Either way the package root is fixed levels up from here.
const here = path.dirname(fileURLToPath(import.meta.url));

/** Absolute root folder of the redo-ts package (holding package.json, bin/, libexec/, rules/). */
export const packageRoot = isBundle ? path.resolve(here, '..', '..') : path.resolve(here, '..', '..', '..');

/**
 * URL of the library module that rules get for `import ... from 'redo-ts'`: the index of
 * the build that is running (dist/bundle/index.js or dist/lib/index.js), so rule and
 * engine share one module graph and one RedoError class.
 */
export const libraryUrl = isBundle ? new URL('./index.js', import.meta.url).href : new URL('../index.js', import.meta.url).href;

/** Absolute folder of the running compiled library (dist/bundle or dist/lib), hashed into remote cache keys. */
export const libraryDir = isBundle ? here : path.resolve(here, '..');

/** Absolute path of `bin/redo-ts.js`, the command's entry point. */
export const binFile = path.join(packageRoot, 'bin', 'redo-ts.js');

/** The version in redo-ts's package.json, or "unknown" (read once). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      // Read, not imported: the bundle must not freeze the version of the tree it was made in.
      version = (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
let version: string | undefined;
