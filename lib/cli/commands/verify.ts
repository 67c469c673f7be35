/** `redo-ts verify`: not available yet in this build. */
import type { Command } from '../command.js';
import { RedoError } from '../../errors.js';

const command: Command = {
  summary: 'verify (not available yet)',
  usage: 'redo-ts verify',
  async run() {
    throw new RedoError('ERR_USAGE', 'redo: "verify" is not available yet');
  },
};
export default command;
