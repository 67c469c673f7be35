/** The verified no-op answered before the CLI is loaded: the plain `redo-ts TARGET...` request whose memo still holds. */

import { describeRequest, isVerifiedNoOp } from '../engine/no-op-memo.js';
import { isInsideRule } from './client.js';
import { packageVersion } from './package-files.js';
import { projectRoot, sharedRulesDir } from './session.js';

/** The subcommands of main.ts (`commandModules`): a first word among them is a command, not a target. */
export const COMMAND_NAMES: readonly string[] = [
  'redo', 'ifchange', 'ifcreate', 'always', 'stamp', 'whichdo', 'ood', 'targets', 'sources', 'log', 'explain', 'verify',
  'pin', 'pins', 'sbom', 'push', 'lock', 'ifchange-env', 'audit', 'contains', 'origin', 'cache', 'init', 'key',
  'attestations', 'store',
];

/**
 * True when `argv` (the command line without node and script) is a build of plain
 * targets (no option, no subcommand) outside a rule, and `.redo/no-op.json` shows that
 * the same request would run nothing and print nothing (no-op-memo.ts): the caller then
 * exits 0. False sends the request through main.ts as usual. Reads only the memo and
 * stats; never throws.
 */
export async function isAnsweredNoOp(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    if (argv.some((arg) => arg.startsWith('-')) || (argv[0] !== undefined && COMMAND_NAMES.includes(argv[0]))) return false;
    if (isInsideRule(env)) return false;
    const io = { cwd, env };
    const root = projectRoot(io as Parameters<typeof projectRoot>[0]);
    const targets = argv.length === 0 ? ['all'] : [...argv];
    return await isVerifiedNoOp(root, describeRequest(root, cwd, targets, sharedRulesDir(), packageVersion()), env);
  } catch {
    return false;
  }
}
