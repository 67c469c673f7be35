/** `redo-ts always`: inside a rule, mark the target out of date on every run. */

import { callEngine, isInsideRule } from '../client.js';
import type { Command } from '../command.js';
import { notInRule } from './ifcreate.js';

const command: Command = {
  summary: 'inside a rule: rebuild the target on every run',
  usage: 'Usage: redo-always  (only inside a running rule)',
  async run(_args, io) {
    if (!isInsideRule(io.env)) throw notInRule('always');
    return callEngine(io.env, 'always', Buffer.alloc(0));
  },
};
export default command;
