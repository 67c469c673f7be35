/** `redo-ts ifchange TARGET...`: build the targets that are out of date (the default command). */

import type { Command } from '../command.js';
import { parseBuildOptions, runBuild } from '../session.js';

const command: Command = {
  summary: 'build TARGETs that are out of date (what plain redo-ts does)',
  usage: 'Usage: redo-ts ifchange [-j N] [-k] [-x] [-v] TARGET...\n  Inside a rule, also records TARGETs as dependencies of the running target.\n  Without TARGETs it does nothing, as redo-ifchange does (plain redo-ts builds all).',
  run: async (args, io) => {
    const options = parseBuildOptions(args);
    return options.targets.length === 0 ? 0 : runBuild(options, io);
  },
};
export default command;
