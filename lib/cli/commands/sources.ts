/** `redo-ts sources [TARGET]`: list source files (dependencies that are not targets). */

import * as path from 'node:path';
import { listSources, listTransitiveSources } from '../../engine/inspect.js';
import { toTargetPath } from '../../engine/paths.js';
import type { Command } from '../command.js';
import { projectRoot } from '../session.js';

const command: Command = {
  summary: 'list sources: all recorded ones, or those TARGET transitively depends on',
  usage: 'Usage: redo-ts sources [TARGET]\n  Paths relative to the current folder, sorted.',
  async run(args, io) {
    const root = projectRoot(io);
    const sources = args.length === 0
      ? listSources(root)
      : [...new Set(args.flatMap((arg) => listTransitiveSources(root, toTargetPath(root, io.cwd, arg))))].sort();
    for (const source of sources) io.stdout.write(`${path.relative(io.cwd, path.resolve(root, source))}\n`);
    return 0;
  },
};
export default command;
