/** `redo-ts ifcreate FILE...`: inside a rule, rebuild the target if FILEs come to exist. */

import { RedoError } from '../../errors.js';
import { callEngine, encodeArguments, isInsideRule } from '../client.js';
import type { Command } from '../command.js';

const command: Command = {
  summary: 'inside a rule: rebuild the target when FILEs are created',
  usage: 'Usage: redo-ifcreate FILE...  (only inside a running rule; fails if a FILE exists)',
  async run(args, io) {
    if (!isInsideRule(io.env)) throw notInRule('ifcreate');
    return callEngine(io.env, 'ifcreate', encodeArguments([io.cwd, ...args]));
  },
};
export default command;

/** The error for a rule-only command run outside a build. */
export function notInRule(name: string): RedoError {
  return new RedoError('ERR_NOT_IN_RULE', `redo: "redo-${name}": only works inside a running rule`, {
    details: ['found: run from a shell, not by a rule that redo-ts is running'],
    hint: 'call it from a .do rule that redo-ts is running',
  });
}
