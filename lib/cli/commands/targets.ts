/** `redo-ts targets`: list the targets redo-ts built whose output exists. */

import * as path from 'node:path';
import { listTargets } from '../../engine/inspect.js';
import type { Command } from '../command.js';
import { endOfName, projectRoot } from '../session.js';

const command: Command = {
  summary: 'list built targets that exist (relative to the current folder)',
  usage: 'Usage: redo-ts targets [-0]\n  -0  end each name with NUL instead of a newline',
  async run(args, io) {
    const end = endOfName(args, 'targets');
    const root = projectRoot(io);
    for (const target of listTargets(root)) io.stdout.write(`${path.relative(io.cwd, path.resolve(root, target))}${end}`);
    return 0;
  },
};
export default command;
