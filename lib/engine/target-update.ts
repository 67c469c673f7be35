/** Scheduling of one run: each target brought up to date at most once (its outcome shared by every request), looked at again only where redo says to, checked or rebuilt. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError, isRedoError } from '../errors.js';
import type { CallerContext } from './caller.js';
import type { EngineRun } from './engine-run.js';
import type { RebuildReason } from './events.js';
import type { Outcome } from './outcome.js';
import { absolutePath } from './paths.js';
import { rebuild } from './rebuild.js';
import { reportFailure } from './report.js';
import { refuseSource, sourceOutcome, warnIfBuildable } from './sources.js';
import { isWriteError, writeFailed } from './state.js';
import { checkTarget } from './target-check.js';
import { cycleError } from './wait-graph.js';

/**
 * Ensures `target` is up to date (once per engine), recording that `requester` waits
 * for it. Returns ERR_CYCLE as a failure if `target` already waits on `requester`.
 */
export async function ensureTarget(run: EngineRun, target: string, chain: string[], requester: string | undefined, isForced: boolean, caller?: CallerContext): Promise<Outcome> {
  if (requester !== undefined) {
    const error = cycleError(run.waits, target, requester, chain);
    if (error !== undefined) {
      reportFailure(run, requester, error, true, caller?.stderrFd);
      return { status: 'failed', error };
    }
  }
  let outcome = run.outcomes.get(target);
  if (outcome === undefined) {
    outcome = update(run, target, chain, isForced, caller);
    run.outcomes.set(target, outcome);
  } else {
    outcome = revisit(run, target, chain, isForced, caller, outcome);
  }
  if (requester === undefined) return outcome;
  run.waits.add(requester, target);
  try {
    return await outcome;
  } finally {
    run.waits.remove(requester, target);
  }
}

/**
 * A second request for `target` in this run: the earlier outcome, unless redo's rules
 * say to look again. (Kept out of ensure() so that stays small on the no-op path.)
 */
function revisit(run: EngineRun, target: string, chain: string[], isForced: boolean, caller: CallerContext | undefined, earlier: Promise<Outcome>): Promise<Outcome> {
  let outcome = earlier;
  if (isForced) {
    // `redo X` always runs X's rule, even when this run already built X (redo.md):
    // after any build of X in progress, run it again.
    outcome = earlier.then(() => update(run, target, chain, true, caller));
  } else if (run.failedTargets.has(target) && !path.isAbsolute(target) && fs.existsSync(absolutePath(run.root, target)) && run.state.load(target) === undefined) {
    // It failed earlier in this run and has since been made by hand: now it is a source.
    run.failedTargets.delete(target);
    run.sourceStamps.delete(target);
    outcome = Promise.resolve(sourceOutcome(run, target));
  } else if (run.builtOutputs.has(target) && !fs.existsSync(absolutePath(run.root, target))) {
    // Built earlier in this run, then deleted (by a rule): check it again, as redo does.
    run.builtOutputs.delete(target);
    outcome = update(run, target, chain, false, caller);
  } else {
    return earlier;
  }
  run.outcomes.set(target, outcome);
  return outcome;
}

async function update(run: EngineRun, target: string, chain: string[], isForced: boolean, caller: CallerContext | undefined): Promise<Outcome> {
  try {
    // Outside the project only sources live (system headers named by gcc -MD output).
    const record = path.isAbsolute(target) ? undefined : run.state.load(target);
    if (isForced && record === undefined) {
      const refusal = refuseSource(run, target, chain, caller?.stderrFd);
      if (refusal !== undefined) return refusal;
    }
    if (path.isAbsolute(target)) return sourceOutcome(run, target);
    let reason: RebuildReason;
    if (isForced) {
      reason = { kind: 'forced' };
    } else {
      const verdict = await checkTarget(run, target, record, chain, caller);
      if (verdict === undefined) {
        warnIfBuildable(run, target, caller?.stderrFd);
        return sourceOutcome(run, target);
      }
      if (verdict.status === 'failed') return verdict;
      if (verdict.status === 'fresh') {
        if (record !== undefined) run.options.onEvent({ kind: 'fresh', target });
        return { status: 'ok', identity: verdict.identity, ...(verdict.stamp === undefined ? {} : { stamp: verdict.stamp }) };
      }
      reason = verdict.reason;
    }
    return await rebuild(run, target, chain, reason, record, isForced, caller);
  } catch (error) {
    const redoError = isRedoError(error)
      ? error
      : isWriteError(error)
      ? writeFailed(target, `cannot write ${(error as NodeJS.ErrnoException).path === undefined ? 'its output or state' : `"${path.relative(run.root, (error as NodeJS.ErrnoException).path as string)}"`}`, error)
      : new RedoError('ERR_INTERNAL', `redo: "${target}": internal error: ${error instanceof Error ? error.message : String(error)}`, {
          details: [error instanceof Error && error.stack !== undefined ? error.stack : ''],
          hint: 'this is a bug in redo-ts; please report it with this message',
          cause: error,
        });
    reportFailure(run, target, redoError, true, caller?.stderrFd);
    return { status: 'failed', error: redoError };
  }
}
