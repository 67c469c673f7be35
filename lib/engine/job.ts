/** A rule being run (a job): what it has asked for so far, and where its messages go. */

import type { CallerContext } from './caller.js';
import type { JobSlots } from './scheduler.js';
import type { DependencyRecord } from './state.js';

/** A rule being run: collects its dependencies, reached by clients through its token. */
export interface Job {
  token: string;
  target: string;
  chain: string[];
  /** Root-relative folder the rule runs in. */
  cwd: string;
  deps: DependencyRecord[];
  isAlways: boolean;
  stampSha256Hex: string | null;
  hasSlot: boolean;
  /** The budget the rule's slot comes from: the engine's, or a nested `redo -jN`'s. */
  slots: JobSlots;
  /** True while the rule's latest redo/redo-ifchange call failed: its own failure then is that one's. */
  isLastRequestFailed: boolean;
  /** Exit status of the sh rule, once it ended. */
  exitStatus?: number;
  /** Where the rule's stderr goes when its caller redirected it (a descriptor of the caller's call), else undefined. */
  stderrFd?: number | undefined;
  /** What the rule inherited (environment, umask); passed on by its TypeScript ctx.ifchange(). */
  caller: CallerContext | undefined;
  writeStderr(text: string): void;
}

/** Adds `dep` to `deps`, replacing an earlier record of the same path and mode. */
export function addDependency(deps: DependencyRecord[], dep: DependencyRecord): void {
  const index = deps.findIndex((d) => d.path === dep.path && d.mode === dep.mode);
  if (index === -1) deps.push(dep);
  else deps[index] = dep;
}
