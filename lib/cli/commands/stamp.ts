/** `redo-ts stamp < DATA`: inside a rule, dependents rebuild only when DATA changes. */

import * as fs from 'node:fs';
import { callEngine, isInsideRule } from '../client.js';
import type { Command } from '../command.js';
import { notInRule } from './ifcreate.js';

const command: Command = {
  summary: 'inside a rule: set the stamp dependents compare (data on stdin)',
  usage: 'Usage: redo-stamp < DATA  (only inside a running rule)',
  async run(_args, io) {
    if (!isInsideRule(io.env)) throw notInRule('stamp');
    return callEngine(io.env, 'stamp', fs.readFileSync(0));
  },
};
export default command;
