/** The out-of-date decision of a build: whether a target with a record is fresh, its dependencies brought up to date first (freshness.ts decides, shared with ood and explain). */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError } from '../errors.js';
import type { CallerContext } from './caller.js';
import type { EngineRun } from './engine-run.js';
import { compareOutput, decideFreshness, isSameStamp, isSourceDependency } from './freshness.js';
import { dependencyFailed, type Outcome, type Verdict } from './outcome.js';
import { absolutePath } from './paths.js';
import { reportWarning } from './report.js';
import { sourceOutcome } from './sources.js';
import { MISSING, identityOf, readStamp } from './stamp.js';
import { isWriteError, type DependencyRecord, type TargetRecord } from './state.js';

/**
 * Decides whether `target` is fresh. Undefined means "not a target" (a source, or a
 * file that exists but redo-ts never built). Brings target dependencies up to date
 * first, in recorded order, stopping at the first change (later ones may be obsolete).
 */
export async function checkTarget(run: EngineRun, target: string, record: TargetRecord | undefined, chain: string[], caller?: CallerContext): Promise<Verdict | undefined> {
  const absolute = absolutePath(run.root, target);
  if (record === undefined) {
    return fs.existsSync(absolute) ? undefined : { status: 'stale', reason: { kind: 'no-previous-build' } };
  }
  let isDirty = false;
  const current = readStamp(absolute, record.output ?? undefined);
  const outputState = compareOutput(record, current);
  if (outputState === 'missing') return { status: 'stale', reason: { kind: 'output-missing' } };
  if (outputState === 'edited' && current !== undefined) {
    // Another process may be between renaming a new output and saving its record: then
    // rebuild() waits for its lock and checks again. (A killed one's were settled by reconcile().)
    if (!run.locks.isHeld(target)) {
      if (!run.locks.tryAcquire(target)) return { status: 'stale', reason: { kind: 'interrupted' } };
      run.locks.release(target);
    }
    reportWarning(run, target, new RedoError('ERR_TARGET_EDITED', `redo: "${target}": modified since redo-ts built it; not rebuilding`, {
      details: [`built: ${record.output === null ? 'no output' : `sha256:${record.output.sha256Hex}`}`, `found: ${identityOf(current)}`],
      hint: `delete "${target}" or run \`redo-ts -f ${target}\` to rebuild it`,
    }), caller?.stderrFd);
    return { status: 'fresh', identity: identityOf(current), stamp: current };
  }
  if (current !== undefined && record.output !== null && !isSameStamp(record.output, current)) {
    record.output = current;
    isDirty = true;
  }
  // Until a rule runs, nothing but this engine changes the tree: folder listings answer.
  const exists = (depPath: string): boolean => (run.jobCounter === 0 ? run.listings.exists(absolutePath(run.root, depPath)) : fs.existsSync(absolutePath(run.root, depPath)));
  const walk = decideFreshness(record, run.options.env, exists);
  let step = walk.next();
  while (step.done !== true) {
    const dep = step.value;
    const pending = ensureDependency(run, dep, [...chain, dep.path], target, caller);
    const outcome = pending instanceof Promise ? await pending : pending;
    step = walk.next(outcome.status === 'missing' ? { status: 'missing' } : outcome);
  }
  const verdict = step.value;
  if (verdict.status === 'failed') return { status: 'failed', error: dependencyFailed(target, verdict.dependency, chain) };
  if (verdict.status === 'stale') return verdict;
  if (verdict.status === 'stale-dependency') throw new Error(`"${target}": a build cannot predict a rebuild`);
  run.noOp.addFile(absolute, current);
  for (const dep of record.deps) if (dep.mode === 'env') run.noOp.addEnv(dep.path, dep.identity ?? MISSING);
  if (isDirty || verdict.isRestamped) {
    run.hasSaved = true;
    try {
      run.state.save(record);
    } catch (error) {
      // Only a faster next check is lost (a read-only or full disk must not fail a no-op).
      if (!isWriteError(error)) throw error;
    }
  }
  return { status: 'fresh', identity: record.identity };
}

/**
 * Like ensure(), but a dependency recorded as a source (it has a stat) that is still
 * one (no record: redo-ts has not built it since) is stamped directly, with the
 * recorded stat as its fast path. One that became a target is checked as a target.
 */
function ensureDependency(run: EngineRun, dep: DependencyRecord, chain: string[], requester: string, caller: CallerContext | undefined): Promise<Outcome> | Outcome {
  if (!run.outcomes.has(dep.path) && isSourceDependency(dep, !path.isAbsolute(dep.path) && run.state.has(dep.path))) {
    const outcome = sourceOutcome(run, dep.path, dep.stamp);
    if (outcome.status === 'ok') return outcome;
  }
  return run.ensure(dep.path, chain, requester, false, caller);
}
