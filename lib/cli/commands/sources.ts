/** `redo-ts sources [TARGET]`: list source files (dependencies that are not targets). */

import * as path from 'node:path';
import { listSources, listTransitiveSources } from '../../engine/inspect.js';
import { toTargetPath } from '../../engine/paths.js';
import type { Command } from '../command.js';
import { projectRoot } from '../session.js';

const command: Command = {
  summary: 'list sources: all recorded ones, or those TARGET transitively depends on',
  usage: 'Usage: redo-ts sources [-0] [TARGET]\n  Paths relative to the current folder, sorted (absolute outside the project).\n  -0  end each name with NUL instead of a newline',
  async run(allArgs, io) {
    const end = allArgs.includes('-0') ? '\0' : '\n';
    const args = allArgs.filter((arg) => arg !== '-0');
    const root = projectRoot(io);
    const sources = args.length === 0
      ? listSources(root)
      : [...new Set(args.flatMap((arg) => listTransitiveSources(root, toTargetPath(root, io.cwd, arg))))].sort();
    for (const source of sources) io.stdout.write(`${path.isAbsolute(source) ? source : path.relative(io.cwd, path.resolve(root, source))}${end}`);
    return 0;
  },
};
export default command;
