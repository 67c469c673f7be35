/** `redo-ts pins`: not available yet in this build. */
import type { Command } from '../command.js';
import { RedoError } from '../../errors.js';

const command: Command = {
  summary: 'pins (not available yet)',
  usage: 'redo-ts pins',
  async run() {
    throw new RedoError('ERR_USAGE', 'redo: "pins" is not available yet');
  },
};
export default command;
