/** The command's entry point (bin/redo-ts.js): a repeated no-op build is answered here from one small module; anything else loads the CLI (main.ts). */

import { isAnsweredNoOp } from './fast-no-op.js';

// No top-level await: the bundle makes this module CommonJS (scripts/bundle.mjs, main.cjs).
void isAnsweredNoOp(process.argv.slice(2), process.cwd(), process.env).then(async (isAnswered) => {
  if (!isAnswered) await import('./main.js');
});
