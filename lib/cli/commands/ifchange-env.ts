/** `redo-ts ifchange-env VAR...`: inside a rule, record environment variables as dependencies. */

import { callEngine, encodeArguments, isInsideRule } from '../client.js';
import type { Command } from '../command.js';
import { notInRule } from './ifcreate.js';

const command: Command = {
  summary: 'inside a rule: rebuild the target when environment variables VARs change',
  usage: 'Usage: redo-ifchange-env VAR...  (only inside a running rule; e.g. redo-ifchange-env SOURCE_DATE_EPOCH)',
  async run(args, io) {
    if (!isInsideRule(io.env)) throw notInRule('ifchange-env');
    return callEngine(io.env, 'ifchange-env', encodeArguments(args));
  },
};
export default command;
