/** What ensuring one target gives (an outcome), what the freshness check of a recorded target says (a verdict), and the records and errors made from them. */

import { RedoError } from '../errors.js';
import type { RebuildReason } from './events.js';
import type { RuleLookup } from './lookup.js';
import { MISSING, type FileStamp, type Identity } from './stamp.js';
import type { DependencyRecord } from './state.js';

/** The result of ensuring one target or source is up to date. */
export type Outcome =
  | { status: 'ok'; identity: Identity; stamp?: FileStamp }
  | { status: 'missing'; lookup: RuleLookup }
  | { status: 'failed'; error: RedoError };

/** The verdict of the freshness check of a target that has a record. */
export type Verdict =
  | { status: 'fresh'; identity: Identity; stamp?: FileStamp }
  | { status: 'stale'; reason: RebuildReason }
  | { status: 'failed'; error: RedoError };

/** The dependency record of root-relative `target` as a rule's redo-ifchange of it left it (a failure records it as missing). */
export function dependencyRecord(target: string, outcome: Outcome): DependencyRecord {
  if (outcome.status !== 'ok') return { path: target, mode: 'ifchange', identity: MISSING };
  return { path: target, mode: 'ifchange', identity: outcome.identity, ...(outcome.stamp === undefined ? {} : { stamp: outcome.stamp }) };
}

/** The ERR_DEPENDENCY_FAILED error of `target` whose `dependency` failed, with the chain down to it. */
export function dependencyFailed(target: string, dependency: string, chain: string[]): RedoError {
  return new RedoError('ERR_DEPENDENCY_FAILED', `redo: "${target}": dependency "${dependency}" failed`, {
    details: [`chain: ${[...chain, dependency].join(' → ')}`],
  });
}
