/** `redo-ts ood`: list the targets that are out of date. */

import * as path from 'node:path';
import { listOutOfDate } from '../../engine/inspect.js';
import type { Command } from '../command.js';
import { endOfName, projectRoot, sharedRulesDir } from '../session.js';

const command: Command = {
  summary: 'list targets that are out of date (relative to the current folder)',
  usage: 'Usage: redo-ts ood [-0]\n  -0  end each name with NUL instead of a newline',
  async run(args, io) {
    const end = endOfName(args, 'ood');
    const root = projectRoot(io);
    for (const target of listOutOfDate(root, sharedRulesDir())) io.stdout.write(`${path.relative(io.cwd, path.resolve(root, target))}${end}`);
    return 0;
  },
};
export default command;
