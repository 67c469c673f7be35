/** How one run treats sources: stamped at most once, never rebuilt by `redo`, and a warning when a rule could build one. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError } from '../errors.js';
import type { EngineRun } from './engine-run.js';
import { findRule } from './lookup.js';
import type { Outcome } from './outcome.js';
import { absolutePath } from './paths.js';
import { reportFailure, reportWarning } from './report.js';
import { identityOf, readStamp, type FileStamp } from './stamp.js';

/**
 * `redo X` / `-f X` for an X without a record: a failure when X exists (redo-ts never
 * overwrites or deletes a file it did not make, a source), else undefined (build it).
 */
export function refuseSource(run: EngineRun, target: string, chain: string[], stderrFd: number | undefined): Outcome | undefined {
  // A target this run built may not have its record saved yet (saves run in the background).
  if (run.builtTargets.has(target) || !fs.existsSync(absolutePath(run.root, target))) return undefined;
  const rule = path.isAbsolute(target) ? undefined : findRule(run.root, target, run.options.sharedRulesDir, run.isRuleFileOutside).found;
  const error = new RedoError('ERR_SOURCE_FORCED', `redo: "${target}": exists and was not built by redo-ts; not rebuilding a source`, {
    details: [
      ...(chain.length > 1 ? [`chain: ${chain.join(' → ')}`] : []),
      rule === undefined ? 'no rule builds it' : `rule that would build it: ${rule.rule}`,
    ],
    hint: rule === undefined
      ? 'redo (-f) rebuilds only targets redo-ts built; a source needs no building'
      : `to make it a target, delete it (or move it aside), then run \`redo-ts ${target}\``,
  });
  reportFailure(run, target, error, true, stderrFd);
  return { status: 'failed', error };
}

/**
 * Says once per run that a file a rule could build, but that redo-ts never built, is
 * used as a source (redo's rule): outputs copied in with a project must not pass
 * silently for fresh. Rule files, files only a catch-all `default.do` matches (every
 * source would) and files only a default rule of a `rules/` folder matches (every
 * `X.tar` would match the image rule, a vendored `file:src/X.tar` included) are left
 * alone.
 */
export function warnIfBuildable(run: EngineRun, target: string, stderrFd: number | undefined): void {
  if (run.warnedSources.has(target) || target.endsWith('.do') || target.endsWith('.do.ts')) return;
  run.warnedSources.add(target);
  let found;
  try {
    // Rules of rules/ and beyond the project are left alone below, and are searched after
    // the project's own folders: only those need looking at.
    found = findRule(run.root, target, run.options.sharedRulesDir, run.isRuleFileOutside, true).found;
  } catch {
    return;
  }
  const rule = found?.rule;
  if (rule === undefined || /(^|\/)default\.do(\.ts)?$/.test(rule) || found!.isFromRulesFolder || path.isAbsolute(rule)) return;
  reportWarning(run, target, new RedoError('ERR_SOURCE_HAS_RULE', `redo: "${target}": exists and was not built by redo-ts; treating it as a source`, {
    details: [`rule that could build it: ${rule}`],
    hint: `delete it (or move it aside), then run \`redo-ts ${target}\`, to build it from its rule`,
  }), stderrFd);
}

/** Stamp of a source file, hashed at most once per engine (stat fast path against `hint`). */
export function stampSource(run: EngineRun, target: string, hint?: FileStamp): FileStamp | undefined {
  if (run.sourceStamps.has(target)) return run.sourceStamps.get(target);
  const stamp = readStamp(absolutePath(run.root, target), hint);
  run.sourceStamps.set(target, stamp);
  return stamp;
}

/** The outcome of `target` as a source: its stamp, or `missing` with where a rule was looked for. */
export function sourceOutcome(run: EngineRun, target: string, hint?: FileStamp): Outcome {
  const stamp = stampSource(run, target, hint);
  if (stamp === undefined) return { status: 'missing', lookup: path.isAbsolute(target) ? { found: undefined, misses: [] } : findRule(run.root, target, run.options.sharedRulesDir, run.isRuleFileOutside) };
  return { status: 'ok', identity: identityOf(stamp), stamp };
}
