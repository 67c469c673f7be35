/** `redo-ts ood`: list the targets that are out of date. */

import * as path from 'node:path';
import { listOutOfDate } from '../../engine/inspect.js';
import type { Command } from '../command.js';
import { projectRoot } from '../session.js';

const command: Command = {
  summary: 'list targets that are out of date (relative to the current folder)',
  usage: 'Usage: redo-ts ood',
  async run(_args, io) {
    const root = projectRoot(io);
    for (const target of listOutOfDate(root)) io.stdout.write(`${path.relative(io.cwd, path.resolve(root, target))}\n`);
    return 0;
  },
};
export default command;
