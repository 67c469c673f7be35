/** `redo-ts redo TARGET...`: rebuild the targets even if up to date (redo semantics). */

import type { Command } from '../command.js';
import { parseBuildOptions, runBuild } from '../session.js';

const command: Command = {
  summary: 'rebuild TARGETs unconditionally (their dependencies only if out of date)',
  usage: 'Usage: redo-ts redo [-j N] [-k] [-x] [-v] TARGET...\n  Same as redo-ts -f TARGET...; inside a rule, also records TARGETs as dependencies.',
  run: (args, io) => runBuild({ ...parseBuildOptions(args), isForced: true }, io),
};
export default command;
