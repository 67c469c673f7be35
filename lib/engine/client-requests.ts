/** The engine's side of the rule protocol: a running rule's redo, redo-ifchange, redo-ifcreate, redo-always, redo-stamp and redo-ifchange-env calls. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError, isRedoError } from '../errors.js';
import { openCallerStderr, parseCallOptions, startOrder, type CallerContext } from './caller.js';
import type { EngineRun } from './engine-run.js';
import { envIdentity } from './freshness.js';
import { addDependency, type Job } from './job.js';
import { dependencyRecord, type Outcome } from './outcome.js';
import { absolutePath, toDependencyPath } from './paths.js';
import { requireBuilt, writeTo } from './report.js';
import { JobSlots } from './scheduler.js';
import { sha256Hex } from './stamp.js';

/** Handles one sh client call; returns the client's exit status. */
export async function serveClient(run: EngineRun, command: string, payload: Buffer, token: string, callId: string): Promise<number> {
  const job = run.jobs.get(token);
  const splitArguments = run.processes.splitArguments;
  if (job === undefined || splitArguments === undefined) return 2;
  switch (command) {
    case 'ifchange':
    case 'redo':
    case 'ifcreate': {
      // The client sends its own folder first: names are relative to where it runs.
      const [fromDir = '', ...names] = splitArguments(payload);
      const own = { env: job.caller?.env, umask: job.caller?.umask };
      // The client leaves its environment (v.<pid>) for ifchange and redo only; read when a rule starts.
      const left = command === 'ifcreate' ? undefined : run.processes.readCaller(callId, own);
      const caller = inheriting(left?.caller ?? own, {
        clientPid: left?.caller.clientPid,
        isXtrace: job.caller?.isXtrace === true,
        isVerbose: job.caller?.isVerbose === true,
        ...(job.caller?.slots === undefined ? {} : { slots: job.caller.slots }),
      });
      try {
        return await request(run, job, command, names, path.isAbsolute(fromDir) ? fromDir : path.resolve(run.root, job.cwd), caller);
      } finally {
        left?.done();
      }
    }
    case 'always':
      job.isAlways = true;
      return 0;
    case 'ifchange-env':
      // Sent after the client's folder, like every call but stamp.
      return recordEnv(run, job, splitArguments(payload).slice(1));
    case 'stamp':
      job.stampSha256Hex = sha256Hex(payload);
      return 0;
    case 'flush-cache':
      await forgetSettledOutcomes(run);
      return 0;
    default:
      job.writeStderr(`redo: unknown client command ${JSON.stringify(command)}\n`);
      return 2;
  }
}

/**
 * The `flush-cache` call of outside redo test suites (apenwarr's t/flush-cache, which
 * edits its database): forgets what this run decided about every target that is not
 * being built or waited on now, so the next request looks at it again as a new run
 * would (after the records being saved have landed).
 */
export async function forgetSettledOutcomes(run: EngineRun): Promise<void> {
  await run.flush();
  const busy = new Set<string>();
  for (const job of run.jobs.values()) for (const target of job.chain) busy.add(target);
  for (const target of run.waits.nodes()) busy.add(target);
  for (const target of [...run.outcomes.keys()]) {
    if (busy.has(target)) continue;
    run.outcomes.delete(target);
    run.failedTargets.delete(target);
    run.builtOutputs.delete(target);
  }
  run.sourceStamps.clear();
}

/** redo-ifchange-env / ctx.ifchangeEnv: records environment variables as dependencies. */
export function recordEnv(run: EngineRun, job: Job, names: string[]): number {
  for (const name of names) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      job.writeStderr(`redo-ifchange-env: "${name}" is not a variable name\n`);
      return 2;
    }
    addDependency(job.deps, { path: name, mode: 'env', identity: envIdentity(run.options.env[name]) });
  }
  return 0;
}

/** A TypeScript rule's ctx.ifchange() / ctx.ifcreate(): the call as a client would make it; throws ERR_DEPENDENCY_FAILED / ERR_IFCREATE_EXISTS when it fails. */
export async function throwOnFailure(run: EngineRun, job: Job, command: 'ifchange' | 'ifcreate', names: string[]): Promise<void> {
  const status = await request(run, job, command, names, path.resolve(run.root, job.cwd), job.caller);
  if (status !== 0) {
    throw new RedoError(command === 'ifcreate' ? 'ERR_IFCREATE_EXISTS' : 'ERR_DEPENDENCY_FAILED', `redo: "${job.target}": ${command} ${names.join(' ')} failed`, {
      details: [`chain: ${job.chain.join(' → ')}`],
    });
  }
}

/** A message about a rule's redo call: to the call's redirected stderr, else shown as the rule's. */
function writeCallStderr(run: EngineRun, job: Job, stderrFd: number | undefined, text: string): void {
  if (stderrFd === undefined || !writeTo(stderrFd, text)) job.writeStderr(text);
}

/**
 * A running rule's redo-ifchange / redo / redo-ifcreate call, with `names` relative to
 * the caller's absolute folder `fromDir`. The job gives its slot back while it waits,
 * so nested builds share the one budget without deadlock.
 */
async function request(
  run: EngineRun,
  job: Job,
  command: 'ifchange' | 'redo' | 'ifcreate',
  names: string[],
  fromDir: string,
  caller: CallerContext | undefined,
): Promise<number> {
  // The client's own stderr when it redirected it (`redo x 2>log`, `$(redo x 2>&1)`);
  // otherwise (it is the calling rule's captured stderr) wherever that rule's goes.
  const server = run.processes.server;
  const ownStderrFd = caller?.clientPid === undefined || server === undefined ? undefined : openCallerStderr(caller.clientPid, server.realRunDir);
  const stderrFd = ownStderrFd ?? job.stderrFd;
  try {
    return await requestWith(run, job, command, names, fromDir, caller, stderrFd);
  } finally {
    if (ownStderrFd !== undefined) fs.closeSync(ownStderrFd);
  }
}

async function requestWith(
  run: EngineRun,
  job: Job,
  command: 'ifchange' | 'redo' | 'ifcreate',
  names: string[],
  fromDir: string,
  caller: CallerContext | undefined,
  stderrFd: number | undefined,
): Promise<number> {
  const options = command === 'ifcreate' ? parseCallOptions(['--', ...names]) : parseCallOptions(names);
  if ('problem' in options) {
    writeCallStderr(run, job, stderrFd, `redo: ${options.problem}\n  hint: redo and redo-ifchange take -j N, -k, -x, -v, --shuffle\n`);
    return 2;
  }
  // The call's own options apply to everything it builds, as redo's do to its subtree.
  const context = inheriting(caller, {
    clientPid: caller?.clientPid,
    isXtrace: caller?.isXtrace === true || options.isXtrace,
    isVerbose: caller?.isVerbose === true || options.isVerbose,
    ...(options.isKeepGoing || run.options.isKeepGoing ? {} : { batch: { isStopped: false } }),
  });
  // A nested -jN gives everything below this call its own budget of N slots (redo's
  // sub-jobserver): `redo -j1 x` serialises x's subtree, `redo -j10 y` runs 10 at once.
  const slots = options.jobs !== undefined ? new JobSlots(options.jobs) : caller?.slots;
  if (slots !== undefined) context.slots = slots;
  if (stderrFd !== undefined) context.stderrFd = stderrFd;
  let targets: string[];
  try {
    targets = options.names.map((name) => toDependencyPath(run.root, fromDir, name));
  } catch (error) {
    writeCallStderr(run, job, stderrFd, `${isRedoError(error) ? error.render() : String(error)}\n`);
    return 2;
  }
  if (command === 'ifcreate') {
    for (const target of targets) {
      if (fs.existsSync(absolutePath(run.root, target))) {
        writeCallStderr(run, job, stderrFd, `redo-ifcreate: "${target}" already exists\n`);
        return 1;
      }
      addDependency(job.deps, { path: target, mode: 'ifcreate' });
    }
    return 0;
  }
  job.hasSlot = false;
  job.slots.release();
  const outcomes: Outcome[] = new Array<Outcome>(targets.length);
  try {
    await Promise.all(
      startOrder(targets.length, options.isShuffle || run.options.isShuffle === true).map(async (index) => {
        const target = targets[index] as string;
        const chain = [...job.chain, target];
        const outcome = requireBuilt(run, target, chain, await run.ensure(target, chain, job.target, command === 'redo', context), context.stderrFd);
        if (outcome.status === 'failed' && context.batch !== undefined) context.batch.isStopped = true;
        outcomes[index] = outcome;
      }),
    );
  } finally {
    await job.slots.acquire(JobSlots.RESUMING);
    job.hasSlot = true;
  }
  let status = 0;
  outcomes.forEach((outcome, index) => {
    const target = targets[index] as string;
    if (outcome.status === 'ok') addDependency(job.deps, dependencyRecord(target, outcome));
    else status = 1;
  });
  job.isLastRequestFailed = status !== 0;
  return status;
}

/**
 * `context` with `env` and `umask` read from `source` when asked (properties with getters,
 * not copies), so a caller context read lazily (RuleProcesses.readCaller) stays lazy
 * through the contexts a request makes. Never spread the result: a spread reads them.
 */
function inheriting(source: Pick<CallerContext, 'env' | 'umask'> | undefined, context: Omit<CallerContext, 'env' | 'umask'>): CallerContext {
  return Object.defineProperties(context as CallerContext, {
    env: { get: () => source?.env, enumerable: true },
    umask: { get: () => source?.umask, enumerable: true },
  });
}
