/** `redo-ts pin`: not available yet in this build. */
import type { Command } from '../command.js';
import { RedoError } from '../../errors.js';

const command: Command = {
  summary: 'pin (not available yet)',
  usage: 'redo-ts pin',
  async run() {
    throw new RedoError('ERR_USAGE', 'redo: "pin" is not available yet');
  },
};
export default command;
