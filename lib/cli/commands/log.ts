/** `redo-ts log TARGET`: print the stderr of the target's last build. */

import * as fs from 'node:fs';
import { toTargetPath } from '../../engine/paths.js';
import { StateStore } from '../../engine/state.js';
import { RedoError } from '../../errors.js';
import type { Command } from '../command.js';
import { projectRoot } from '../session.js';

const command: Command = {
  summary: "print the stderr of TARGET's last build",
  usage: 'Usage: redo-ts log TARGET...',
  async run(args, io) {
    if (args.length === 0) throw new RedoError('ERR_USAGE', 'redo: "log": wants a TARGET');
    const root = projectRoot(io);
    const state = new StateStore(root);
    let status = 0;
    for (const arg of args) {
      const target = toTargetPath(root, io.cwd, arg);
      try {
        io.stdout.write(fs.readFileSync(state.logPath(target)));
      } catch {
        // No log: the last build wrote nothing to stderr, or the target was never built.
        if (state.load(target) === undefined) {
          io.stderr.write(`redo: "${target}": no build log (never built by redo-ts here)\n`);
          status = 1;
        }
      }
    }
    return status;
  },
};
export default command;
