/** A shared target cache around a rule run: asked for the output before the rule runs, offered what the rule built. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineRun } from './engine-run.js';
import type { RebuildReason } from './events.js';
import { envIdentity } from './freshness.js';
import { addDependency, type Job } from './job.js';
import { findRule } from './lookup.js';
import { toDependencyPath } from './paths.js';
import { temporaryOutputPath } from './runner.js';
import { JobSlots } from './scheduler.js';
import { MISSING, readStamp, type FileStamp } from './stamp.js';
import type { DependencyRecord } from './state.js';

/**
 * Asks the cache for the target's output before its rule runs. On a hit the output is
 * renamed into place and the entry's dependencies become the job's, as if the rule had
 * run; a miss (or no cache, or -f: the user asked for the rule to run) gives
 * undefined. Errors from the cache fail the target.
 */
export async function fetchFromCache(run: EngineRun, job: Job, rule: string, reason: RebuildReason, recorded: readonly DependencyRecord[] | undefined): Promise<{ output: FileStamp | null; treeSha256Hex?: string } | undefined> {
  const cache = run.options.cache;
  if (cache === undefined || reason.kind === 'forced') return undefined;
  const targetAbsolute = path.join(run.root, job.target);
  const outputPath = temporaryOutputPath(targetAbsolute, process.pid);
  fs.mkdirSync(path.dirname(targetAbsolute), { recursive: true });
  let hit;
  try {
    hit = await cache.lookUp({
      target: job.target,
      rule,
      outputPath,
      // What this machine recorded, in the order it was recorded (environment ones as $NAME).
      ...(recorded === undefined ? {} : {
        recordedDeps: recorded.map((dep) => (dep.mode === 'env' ? { path: `$${dep.path}`, mode: 'ifchange' as const } : { path: dep.path, mode: dep.mode })),
      }),
      ruleFor: (dependency) => {
        try {
          const target = toDependencyPath(run.root, run.root, dependency);
          // A file redo-ts never built is a source: bringing it up to date runs no rule.
          if (fs.existsSync(path.join(run.root, target)) && run.state.load(target) === undefined) return undefined;
          return findRule(run.root, target, run.options.sharedRulesDir, run.isRuleFileOutside).found?.rule;
        } catch {
          return undefined;
        }
      },
      identify: (deps) => identifyForCache(run, job, deps),
    });
  } finally {
    if (hit === undefined) fs.rmSync(outputPath, { force: true });
  }
  if (hit === undefined) return undefined;
  for (const dep of hit.deps) {
    if (dep.path.startsWith('$')) addDependency(job.deps, { path: dep.path.slice(1), mode: 'env', identity: dep.identity ?? MISSING });
    else addDependency(job.deps, dep.identity === null ? { path: dep.path, mode: 'ifcreate' } : { path: dep.path, mode: 'ifchange', identity: dep.identity });
  }
  fs.renameSync(outputPath, targetAbsolute);
  return { output: readStamp(targetAbsolute) ?? null };
}

/** Current identities of a cache entry's dependencies, building them first (the job's slot is lent meanwhile). */
async function identifyForCache(run: EngineRun, job: Job, deps: readonly { path: string; mode: 'ifchange' | 'ifcreate' }[]): Promise<(string | null)[] | undefined> {
  // An entry names environment dependencies `$NAME` (see offerToCache).
  let targets: string[];
  try {
    targets = deps.map((dep) => (dep.path.startsWith('$') ? dep.path : toDependencyPath(run.root, run.root, dep.path)));
  } catch {
    return undefined;
  }
  job.hasSlot = false;
  job.slots.release();
  try {
    const identities = await Promise.all(
      targets.map(async (target, i): Promise<string | null | undefined> => {
        if (target.startsWith('$')) return envIdentity(run.options.env[target.slice(1)]);
        if (deps[i]!.mode === 'ifcreate') return fs.existsSync(path.resolve(run.root, target)) ? 'present' : null;
        const outcome = await run.ensure(target, [...job.chain, target], job.target, false);
        return outcome.status === 'ok' ? outcome.identity : outcome.status === 'missing' ? null : undefined;
      }),
    );
    return identities.includes(undefined) ? undefined : (identities as (string | null)[]);
  } finally {
    await job.slots.acquire(JobSlots.RESUMING);
    job.hasSlot = true;
  }
}

/** Offers a rule's fresh output to the cache (not for always-rebuilt, stamped or output-less targets). */
export function offerToCache(run: EngineRun, job: Job, rule: string, result: { output: FileStamp | null }): void {
  const cache = run.options.cache;
  if (cache === undefined || result.output === null || job.isAlways || job.stampSha256Hex !== null) return;
  cache.offer({
    target: job.target,
    rule,
    outputPath: path.join(run.root, job.target),
    outputSha256Hex: result.output.sha256Hex,
    deps: job.deps.map((dep) =>
      dep.mode === 'env'
        ? { path: `$${dep.path}`, identity: dep.identity ?? MISSING }
        : { path: dep.path, identity: dep.mode === 'ifcreate' ? null : dep.identity ?? null },
    ),
  });
}
