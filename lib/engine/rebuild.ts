/** Running a target's rule: its lock, its rule and the rule's own dependency, a job slot, the rule's environment and stderr, and the record saved after. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError, isRedoError } from '../errors.js';
import { fetchFromCache, offerToCache } from './cache-use.js';
import type { CallerContext } from './caller.js';
import { recordEnv, throwOnFailure } from './client-requests.js';
import type { EngineRun } from './engine-run.js';
import { describeReason, type RebuildReason } from './events.js';
import type { Job } from './job.js';
import { findRule } from './lookup.js';
import { dependencyFailed, dependencyRecord, type Outcome } from './outcome.js';
import { absolutePath } from './paths.js';
import { removeLeftovers } from './reconcile.js';
import { reportFailure, reportWarning, writeTo } from './report.js';
import { runRule } from './runner.js';
import { JobSlots } from './scheduler.js';
import { sourceOutcome } from './sources.js';
import { identityOf, sha256Hex } from './stamp.js';
import { STATE_VERSION, writeFailed, type DependencyRecord, type TargetRecord } from './state.js';
import { checkTarget } from './target-check.js';

/**
 * Builds `target` for `reason`: takes its lock (checking again if another process held
 * it), finds and ensures its rule, takes a job slot, runs the rule (or takes the output
 * from the target cache) in its caller's environment, umask and stderr, and saves its
 * record in the background (the lock is released once it is saved).
 */
export async function rebuild(
  run: EngineRun,
  target: string,
  chain: string[],
  reason: RebuildReason,
  record: TargetRecord | undefined,
  isForced: boolean,
  caller: CallerContext | undefined,
): Promise<Outcome> {
  // A killed engine may have left its temporary output; its pid names it.
  let isLockHandedOver = false;
  const hasWaited = await run.locks.acquire(target, {
    chain,
    onAbandoned: (deadPid) => removeLeftovers(absolutePath(run.root, target), deadPid),
    onWaiting: (holder) => reportWarning(run, target, new RedoError('ERR_LOCK_HELD', `redo: "${target}": waiting for another redo-ts process that is building it`, {
      details: [`held by: ${holder}`],
      hint: 'wait, or stop that process; a lock of a dead process is broken at once',
    }), caller?.stderrFd),
  });
  try {
    // Another build (or this one's record save) held the lock: read what it left.
    if (hasWaited) record = run.state.load(target);
    if (hasWaited && !isForced) {
      // Another process probably just built this target.
      const verdict = await checkTarget(run, target, record, chain, caller);
      if (verdict === undefined) return sourceOutcome(run, target);
      if (verdict.status === 'failed') return verdict;
      if (verdict.status === 'fresh') return { status: 'ok', identity: verdict.identity };
      reason = verdict.reason;
    }
    const lookup = findRule(run.root, target, run.options.sharedRulesDir, run.isRuleFileOutside);
    if (lookup.found === undefined) {
      if (fs.existsSync(absolutePath(run.root, target))) {
        // Its rule is gone but the file stays: used as a source for now, with a warning
        // (an error under --strict), since it is out of date. The record is kept, so when
        // the rule comes back (a branch switch), the changed rule dependency rebuilds it.
        if (record !== undefined) {
          const error = new RedoError('ERR_RULE_MISSING', `redo: "${target}": out of date, but no rule builds it any more; ${run.options.isStrict === true ? 'not using' : 'using'} its old output`, {
            details: [
              ...(chain.length > 1 ? [`chain: ${chain.join(' → ')}`] : []),
              `rule last used: ${record.rule}`,
              `out of date: ${describeReason(reason)}`,
            ],
            hint: `restore "${record.rule}" (or add another rule for it), or delete "${target}" to stop building it`,
          });
          if (run.options.isStrict === true) {
            reportFailure(run, target, error, true, caller?.stderrFd);
            return { status: 'failed', error };
          }
          reportWarning(run, target, error, caller?.stderrFd);
        }
        return sourceOutcome(run, target);
      }
      // Still missing: any rule candidate appearing would change that.
      for (const miss of lookup.misses) run.noOp.addFile(absolutePath(run.root, miss), undefined);
      return { status: 'missing', lookup };
    }
    const found = lookup.found;
    const deps: DependencyRecord[] = lookup.misses.map((miss) => ({ path: miss, mode: 'ifcreate' }));
    const ruleOutcome = await run.ensure(found.rule, [...chain, found.rule], target, false, caller);
    if (ruleOutcome.status !== 'ok') return { status: 'failed', error: dependencyFailed(target, found.rule, chain) };
    deps.push(dependencyRecord(found.rule, ruleOutcome));

    // A nested `redo -jN` gave this subtree its own budget of N slots.
    const slots = caller?.slots ?? run.slots;
    await slots.acquire(chain.length);
    const job = createJob(run, target, chain, found.cwd, deps, caller, slots);
    try {
      if (run.isStopping || caller?.batch?.isStopped === true) {
        // Not a failure of its own: a later request may still build it.
        if (!run.isStopping) run.outcomes.delete(target);
        return { status: 'failed', error: new RedoError('ERR_DEPENDENCY_FAILED', `redo: "${target}": not built after an earlier failure`) };
      }
      try {
        run.journal.note(target);
      } catch (error) {
        throw writeFailed(path.relative(run.root, run.state.stateDir), `cannot note "${target}" in the build journal`, error);
      }
      run.options.onEvent({ kind: 'started', target, chain, reason });
      const startMs = performance.now();
      const previous = record;
      const { server, spawner } = await run.processes.start();
      server.openJob(job.token);
      // Like a Unix child, the rule inherits its caller's environment, umask and stderr.
      const changes = run.processes.changesFor(spawner.env, caller?.env);
      // A TypeScript rule's environment; a sh rule gets the spawner's with ruleEnv's changes,
      // so it costs no copy of every variable per rule.
      const env = found.kind === 'sh' ? {} : { ...(caller?.env ?? spawner.env), REDO_PARENT: job.token };
      // The caller's redirected stderr (its own, or the one its caller's call inherited).
      const stderrFd = caller?.stderrFd;
      job.stderrFd = stderrFd;
      const showStderr = (text: string): void => {
        if (stderrFd === undefined || !writeTo(stderrFd, text)) run.options.onEvent({ kind: 'rule-stderr', target, text });
      };
      job.writeStderr = showStderr;
      const fromCache = await fetchFromCache(run, job, found.rule, reason, previous?.deps);
      let result = fromCache;
      try {
        result ??= await runRule({
          root: run.root,
          target,
          found,
          env,
          isXtrace: run.options.isXtrace || caller?.isXtrace === true,
          isVerbose: run.options.isVerbose || caller?.isVerbose === true,
          logFile: run.state.logPath(target),
          scratchDir: server.runDir,
          onStderr: showStderr,
          typeScript: run.options.typeScript,
          spawner: spawner.spawner,
          ruleEnv: { ...changes.set, REDO_PARENT: job.token },
          unsetEnv: changes.unset,
          ...(caller?.umask === undefined ? {} : { umask: caller.umask }),
          operations: {
            ifchange: (paths) => throwOnFailure(run, job, 'ifchange', paths),
            ifcreate: (paths) => throwOnFailure(run, job, 'ifcreate', paths),
            always: () => void (job.isAlways = true),
            stamp: (data) => void (job.stampSha256Hex = sha256Hex(data)),
            ifchangeEnv: (names) => recordEnv(run, job, names),
          },
          chain,
          onExit: (status) => void (job.exitStatus = status),
          ruleIdentity: ruleOutcome.identity,
          previousOutput: previous?.output ?? null,
        });
      } catch (error) {
        // The dependency's own failure was reported; a sh rule then exits with the
        // client's status 1 (sh -e) and a TypeScript rule's ifchange() throws: neither is
        // news. Any other status is the rule's own failure, even after one it tolerated.
        const isConsequence = job.exitStatus === undefined || job.exitStatus === 1;
        if (job.isLastRequestFailed && isConsequence && (isRedoError(error, 'ERR_RULE_FAILED') || isRedoError(error, 'ERR_DEPENDENCY_FAILED'))) {
          return { status: 'failed', error: new RedoError('ERR_DEPENDENCY_FAILED', `redo: "${target}": a dependency failed`, { cause: error }) };
        }
        throw error;
      }
      if (fromCache === undefined) offerToCache(run, job, found.rule, result);
      const builds = (previous?.builds ?? 0) + 1;
      const identity = job.stampSha256Hex !== null
        ? `stamp:${job.stampSha256Hex}`
        : result.treeSha256Hex !== undefined ? `dir:${result.treeSha256Hex}`
        : result.output !== null ? identityOf(result.output) : `none:${builds}`;
      // Dependents may go on at once; the lock is kept until the record is saved.
      const saving = run.state.saveInBackground({
        version: STATE_VERSION,
        target,
        rule: found.rule,
        output: result.output,
        identity,
        builds,
        isAlways: job.isAlways,
        stampSha256Hex: job.stampSha256Hex,
        deps: job.deps,
      });
      isLockHandedOver = true;
      run.builtTargets.add(target);
      if (result.output !== null) run.builtOutputs.add(target);
      run.track(saving.finally(() => run.locks.release(target)), target);
      run.options.onEvent({
        kind: 'built',
        target,
        reason,
        hasOutput: result.output !== null,
        isOutputChanged: identity !== previous?.identity,
        durationMs: performance.now() - startMs,
        ...(fromCache === undefined ? {} : { isFromCache: true }),
      });
      return { status: 'ok', identity };
    } finally {
      run.processes.server?.closeJob(job.token);
      run.jobs.delete(job.token);
      if (job.hasSlot) job.slots.release();
    }
  } finally {
    if (!isLockHandedOver) run.locks.release(target);
  }
}

function createJob(run: EngineRun, target: string, chain: string[], cwd: string, deps: DependencyRecord[], caller: CallerContext | undefined, slots: JobSlots): Job {
  run.jobCounter += 1;
  const job: Job = {
    token: String(run.jobCounter),
    target,
    chain,
    cwd,
    deps,
    isAlways: false,
    stampSha256Hex: null,
    hasSlot: true,
    isLastRequestFailed: false,
    slots,
    caller: caller === undefined ? undefined : {
      env: caller.env,
      umask: caller.umask,
      clientPid: undefined,
      isXtrace: caller.isXtrace === true,
      isVerbose: caller.isVerbose === true,
      ...(caller.slots === undefined ? {} : { slots: caller.slots }),
    },
    writeStderr: (text) => run.options.onEvent({ kind: 'rule-stderr', target, text }),
  };
  run.jobs.set(job.token, job);
  return job;
}
