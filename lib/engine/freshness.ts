/** The one out-of-date decision over a target's record, shared by the build and by ood/explain. */

import type { RebuildReason } from './events.js';
import { MISSING, isFolderStamp, sha256Hex, type FileStamp, type Identity } from './stamp.js';
import type { DependencyRecord, TargetRecord } from './state.js';

/** What the driver found for one `ifchange` dependency the decision asked about. */
export type DependencyAnswer =
  /** Its identity now (after bringing it up to date, for the build); `stamp` for a source. */
  | { status: 'ok'; identity: Identity; stamp?: FileStamp }
  /** Neither a file nor a target any rule builds. */
  | { status: 'missing' }
  /** It failed to build (the build only). */
  | { status: 'failed' }
  /** A target that would be rebuilt (explain only: it cannot build, so it cannot know the new identity). */
  | { status: 'would-rebuild'; because: unknown };

/** The verdict over a record's dependencies. */
export type DependencyVerdict =
  /** Up to date; `isRestamped` when a source's stat was refreshed in the record (worth saving). */
  | { status: 'fresh'; isRestamped: boolean }
  | { status: 'stale'; reason: RebuildReason }
  | { status: 'failed'; dependency: string }
  | { status: 'stale-dependency'; dependency: string; because: unknown };

/** How a target's file stands against its record. */
export type OutputState = 'matches' | 'missing' | 'edited';

/**
 * Compares the target's file now (`current`: its stamp, undefined when absent) with
 * what its record says was built: `missing` (the rule made output that is gone),
 * `edited` (a file other than the one built: a hand edit, or a killed build's output),
 * or `matches`. Pure.
 */
export function compareOutput(record: TargetRecord, current: FileStamp | undefined): OutputState {
  if (record.output !== null && current === undefined) return 'missing';
  if (current !== undefined && (record.output === null || !isSameOutput(current, record.output))) return 'edited';
  return 'matches';
}

/**
 * True when the output now (`current`) is the one built: the same hash, or both folders
 * (a folder target's own check is that it is one; its tree's hash is its identity, taken
 * when it was built, and a folder's listing is only what a folder *dependency* compares).
 * Pure.
 */
export function isSameOutput(current: FileStamp, built: FileStamp): boolean {
  return current.sha256Hex === built.sha256Hex || (isFolderStamp(current) && isFolderStamp(built));
}

/**
 * True when a recorded `ifchange` dependency may be answered from its file alone (its
 * recorded stat as the fast path): it was a source when recorded (it has a stat) and
 * it is still not a target (`hasRecord`: redo-ts has built it since). A dependency that
 * became a target must be checked as one, or a change below it is never seen. Pure.
 */
export function isSourceDependency(dep: DependencyRecord, hasRecord: boolean): boolean {
  return dep.stamp !== undefined && !hasRecord;
}

/** The identity an `env` dependency compares: a hash of the value (it may be a secret), or missing. Pure. */
export function envIdentity(value: string | undefined): Identity {
  return value === undefined ? MISSING : `sha256:${sha256Hex(value)}`;
}

/**
 * Walks `record`'s dependencies in recorded order and decides whether the target is
 * out of date, stopping at the first change (later ones may be obsolete). `env` is the
 * environment a build sees; `exists(path)` tells whether a root-relative (or absolute)
 * path exists. For each `ifchange` dependency it yields the record and expects the
 * driver's answer: the build brings the dependency up to date first (early cutoff),
 * explain predicts. A source's refreshed stat is written back into `record.deps`.
 */
export function* decideFreshness(
  record: TargetRecord,
  env: NodeJS.ProcessEnv,
  exists: (depPath: string) => boolean,
): Generator<DependencyRecord, DependencyVerdict, DependencyAnswer> {
  if (record.isAlways) return { status: 'stale', reason: { kind: 'always' } };
  let isRestamped = false;
  for (const dep of record.deps) {
    if (dep.mode === 'env') {
      const identity = envIdentity(env[dep.path]);
      if (identity !== dep.identity) {
        return { status: 'stale', reason: { kind: 'changed', path: `$${dep.path}`, oldIdentity: dep.identity ?? MISSING, newIdentity: identity } };
      }
      continue;
    }
    if (dep.mode === 'ifcreate') {
      if (exists(dep.path)) {
        const isRule = dep.path.endsWith('.do') || dep.path.endsWith('.do.ts');
        return { status: 'stale', reason: { kind: isRule ? 'rule-appeared' : 'created', path: dep.path } };
      }
      continue;
    }
    const answer = yield dep;
    if (answer.status === 'failed') return { status: 'failed', dependency: dep.path };
    if (answer.status === 'would-rebuild') return { status: 'stale-dependency', dependency: dep.path, because: answer.because };
    const identity = answer.status === 'missing' ? MISSING : answer.identity;
    if (identity !== (dep.identity ?? MISSING)) {
      return { status: 'stale', reason: { kind: 'changed', path: dep.path, oldIdentity: dep.identity ?? MISSING, newIdentity: identity } };
    }
    if (answer.status === 'ok' && answer.stamp !== undefined && dep.stamp !== undefined && !isSameStamp(dep.stamp, answer.stamp)) {
      dep.stamp = answer.stamp;
      isRestamped = true;
    }
  }
  return { status: 'fresh', isRestamped };
}

/** True when two stamps have the same stat tuple and hash. Pure. */
export function isSameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.sizeBytes === b.sizeBytes && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.sha256Hex === b.sha256Hex;
}
