/** The command's entry point (bin/redo-ts.js): a repeated no-op build is answered here from one small module; anything else loads the CLI (main.ts). */

import { isAnsweredNoOp } from './fast-no-op.js';

if (!(await isAnsweredNoOp(process.argv.slice(2), process.cwd(), process.env))) await import('./main.js');
