/** `redo-ts whichdo TARGET`: print the rule candidates tried, ending with the one that builds it. */

import * as path from 'node:path';
import { findRule } from '../../engine/lookup.js';
import { toTargetPath } from '../../engine/paths.js';
import { RedoError } from '../../errors.js';
import type { Command } from '../command.js';
import { projectRoot, sharedRulesDir } from '../session.js';

const command: Command = {
  summary: 'print the .do files searched for TARGET, the one used last (exit 1 if none)',
  usage: 'Usage: redo-ts whichdo TARGET\n  Paths are relative to the current folder, one per line; the last is the rule used.',
  async run(args, io) {
    if (args.length !== 1) throw new RedoError('ERR_USAGE', 'redo: "whichdo": wants exactly one TARGET');
    const projectFolder = projectRoot(io);
    // A target outside the project is searched for as redo does, up to `/` (a query
    // only: such a target is never built).
    const absolute = path.resolve(io.cwd, args[0] as string);
    const isOutside = path.relative(projectFolder, absolute).startsWith('..');
    const root = isOutside ? path.parse(absolute).root : projectFolder;
    const target = isOutside ? path.relative(root, absolute) : toTargetPath(root, io.cwd, args[0] as string);
    const lookup = findRule(root, target, isOutside ? undefined : sharedRulesDir());
    const show = (p: string): string => path.relative(io.cwd, path.resolve(root, p)) || '.';
    // redo's candidate list; the installed package's shared rules are shown only when used.
    const shared = sharedRulesDir();
    const isShared = (miss: string): boolean => shared !== undefined && miss.startsWith(`${shared}/`);
    for (const miss of lookup.misses) if (miss.endsWith('.do') && !isShared(miss)) io.stdout.write(`${show(miss)}\n`);
    if (lookup.found === undefined) return 1;
    io.stdout.write(`${show(lookup.found.rule)}\n`);
    return 0;
  },
};
export default command;
