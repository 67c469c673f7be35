/** The build-event union the engine emits and the CLI renders. */

import type { RedoError } from '../errors.js';

/** Why a target is (or would be) rebuilt. */
export type RebuildReason =
  | { kind: 'no-previous-build' }
  | { kind: 'forced' }
  | { kind: 'always' }
  | { kind: 'interrupted' }
  | { kind: 'output-missing' }
  | { kind: 'changed'; path: string; oldIdentity: string; newIdentity: string }
  | { kind: 'rule-appeared'; path: string }
  | { kind: 'created'; path: string };

/** Renders a reason in a few words, e.g. `changed: app/greet.sh`. Pure. */
export function describeReason(reason: RebuildReason): string {
  switch (reason.kind) {
    case 'no-previous-build':
      return 'no previous build';
    case 'forced':
      return 'forced';
    case 'always':
      return 'always';
    case 'interrupted':
      return 'previous build was interrupted';
    case 'output-missing':
      return 'output was deleted';
    case 'changed':
      return `changed: ${reason.path}`;
    case 'rule-appeared':
      return `rule appeared: ${reason.path}`;
    case 'created':
      return `created: ${reason.path}`;
    default: {
      const impossible: never = reason;
      return String(impossible);
    }
  }
}

/** Something that happened during a build, in the order it happened. Paths are root-relative. */
export type BuildEvent =
  /** A rule is about to run. `chain` runs from the top-level target to this one. */
  | { kind: 'started'; target: string; chain: string[]; reason: RebuildReason }
  /** A rule succeeded (or its output came from the build cache: `isFromCache`); `isOutputChanged` is false when early cutoff applies. */
  | { kind: 'built'; target: string; reason: RebuildReason; hasOutput: boolean; isOutputChanged: boolean; durationMs: number; isFromCache?: boolean }
  /** A target was checked and is up to date. */
  | { kind: 'fresh'; target: string }
  /** A target failed; `error` carries code, chain and evidence. `isRootCause` is false for "dependency failed". */
  | { kind: 'failed'; target: string; error: RedoError; isRootCause: boolean }
  /** A warning about a target that does not stop the build (e.g. edited by hand). */
  | { kind: 'warning'; target: string; error: RedoError }
  /** A chunk of a running rule's stderr. */
  | { kind: 'rule-stderr'; target: string; text: string };

/** Receives build events; must not throw. */
export type BuildEventListener = (event: BuildEvent) => void;
