/** `redo-ts ifchange TARGET...`: build the targets that are out of date (the default command). */

import type { Command } from '../command.js';
import { parseBuildOptions, runBuild } from '../session.js';

const command: Command = {
  summary: 'build TARGETs that are out of date (what plain redo-ts does)',
  usage: 'Usage: redo-ts ifchange [-j N] [-k] [-x] [-v] TARGET...\n  Inside a rule, also records TARGETs as dependencies of the running target.',
  run: (args, io) => runBuild(parseBuildOptions(args), io),
};
export default command;
