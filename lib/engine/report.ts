/** How one run reports failures and warnings: to the redirected stderr of the call they concern, else as build events. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError } from '../errors.js';
import type { EngineRun } from './engine-run.js';
import type { Outcome } from './outcome.js';

/** Turns a "missing" outcome (no file, no rule) into an ERR_NO_RULE failure and reports it. */
export function requireBuilt(run: EngineRun, target: string, chain: string[], outcome: Outcome, stderrFd?: number): Outcome {
  if (outcome.status !== 'missing') return outcome;
  if (path.isAbsolute(target)) {
    const error = new RedoError('ERR_NO_RULE', `redo: "${target}": no such file (outside the project, where only sources live)`, {
      details: chain.length > 1 ? [`chain: ${chain.join(' → ')}`] : [],
      hint: 'create the file, or stop depending on it',
    });
    reportFailure(run, target, error, true, stderrFd);
    return { status: 'failed', error };
  }
  const error = new RedoError('ERR_NO_RULE', `redo: "${target}": no rule to build it and no such file`, {
    details: [
      ...(chain.length > 1 ? [`chain: ${chain.join(' → ')}`] : []),
      'looked for:',
      ...outcome.lookup.misses.filter((miss) => miss.endsWith('.do') && !path.isAbsolute(miss)).map((miss) => `  ${miss}[.ts]`),
    ],
    hint: 'create one of those rules, or the source file itself',
  });
  reportFailure(run, target, error, true, stderrFd);
  return { status: 'failed', error };
}

/**
 * Reports `target` failed with `error` (the run then has a failure). A root cause goes
 * to `stderrFd` when the call redirected its stderr, else it is a `failed` event; after
 * an interrupt nothing is reported.
 */
export function reportFailure(run: EngineRun, target: string, error: RedoError, isRootCause: boolean, stderrFd?: number): void {
  run.hasFailure = true;
  run.failedTargets.add(target);
  if (run.isInterrupted) return;
  // A nested call whose caller redirected its stderr (`redo-ifchange x 2>/dev/null`)
  // gets the message there, as a redo process's own stderr would.
  if (isRootCause && stderrFd !== undefined && writeTo(stderrFd, `${error.render()}\n`)) isRootCause = false;
  run.options.onEvent({ kind: 'failed', target, error, isRootCause });
}

/** Reports a warning, to the redirected stderr of the call it concerns when there is one. */
export function reportWarning(run: EngineRun, target: string, error: RedoError, stderrFd: number | undefined): void {
  run.hasWarned = true;
  if (stderrFd !== undefined && writeTo(stderrFd, `warning: ${error.render()}\n`)) return;
  run.options.onEvent({ kind: 'warning', target, error });
}

/** Writes `text` to the descriptor `fd`; false when it cannot (closed, a broken pipe). */
export function writeTo(fd: number, text: string): boolean {
  try {
    fs.writeSync(fd, text);
    return true;
  } catch {
    return false;
  }
}
