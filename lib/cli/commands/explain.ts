/** `redo-ts explain TARGET` (or `--why`): say why a target is or would be rebuilt. */

import { describeReason } from '../../engine/events.js';
import { explainTarget, type Explanation } from '../../engine/inspect.js';
import { toTargetPath } from '../../engine/paths.js';
import { RedoError } from '../../errors.js';
import type { Command } from '../command.js';
import { projectRoot, sharedRulesDir } from '../session.js';

/** Lines explaining `explanation`, indented by `depth`. Pure. */
export function explanationLines(explanation: Explanation, depth = 0): string[] {
  const pad = '  '.repeat(depth);
  const name = explanation.target;
  switch (explanation.status) {
    case 'source':
      return [`${pad}${name}: a source file (no record of building it)`];
    case 'no-rule':
      return [`${pad}${name}: no rule to build it and no such file (\`redo-ts whichdo ${name}\` lists the rules looked for)`];
    case 'unknown':
      return [`${pad}${name}: unknown`];
    case 'fresh':
      return [`${pad}${name}: up to date`];
    case 'edited':
      return [`${pad}${name}: edited by hand since it was built; not rebuilt until deleted or forced (-f)`];
    case 'stale': {
      const lines = [`${pad}${name}: would rebuild (${describeReason(explanation.reason)})`];
      if (explanation.reason.kind === 'changed') {
        lines.push(`${pad}  old: ${explanation.reason.oldIdentity}`, `${pad}  new: ${explanation.reason.newIdentity}`);
      }
      return lines;
    }
    case 'stale-dependency':
      return [
        `${pad}${name}: would rebuild if ${explanation.dependency} changes when rebuilt`,
        ...explanationLines(explanation.because, depth + 1),
      ];
    default: {
      const impossible: never = explanation;
      return [String(impossible)];
    }
  }
}

const command: Command = {
  summary: 'say why TARGETs are or would be rebuilt (which dependency, old and new hash)',
  usage: 'Usage: redo-ts explain TARGET...   (same as redo-ts --why TARGET...)',
  async run(args, io) {
    if (args.length === 0) throw new RedoError('ERR_USAGE', 'redo: "explain": wants a TARGET');
    const root = projectRoot(io);
    let status = 0;
    for (const arg of args) {
      const explanation = explainTarget(root, toTargetPath(root, io.cwd, arg), sharedRulesDir());
      io.stdout.write(`${explanationLines(explanation).join('\n')}\n`);
      // A target that cannot be built is an answer, but not a success.
      if (explanation.status === 'no-rule') status = 1;
    }
    return status;
  },
};
export default command;
