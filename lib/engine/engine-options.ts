/** How an engine builds: the options of one run, everything but the targets. */

import type { BuildEventListener } from './events.js';
import type { TypeScriptRuleSupport } from './runner.js';
import type { TargetCache } from './target-cache.js';

/** How an engine builds: everything but the targets. */
export interface EngineOptions {
  /** Absolute project root. */
  root: string;
  /** Job slots shared by all rules (-j). */
  jobs: number;
  /** -k: keep building other targets after a failure. */
  isKeepGoing: boolean;
  /** -x: run sh rules with `sh -x`. */
  isXtrace: boolean;
  /** -v: run sh rules with `sh -v`. */
  isVerbose: boolean;
  /** --shuffle: start independent targets in random order (finds undeclared dependencies). */
  isShuffle?: boolean;
  /** --strict: a target that is out of date and whose rule is gone fails instead of being used with a warning. */
  isStrict?: boolean;
  /** The redo-ts version, part of the key of `.redo/no-op.json`. */
  version?: string;
  /** Base environment for rules. */
  env: NodeJS.ProcessEnv;
  /** Absolute directory holding the sh client scripts (redo-ifchange, ...). */
  libexecDir: string;
  /** Absolute path of the node binary (for client fallbacks). */
  nodePath: string;
  onEvent: BuildEventListener;
  /** Loader for `.do.ts` rules; without it TypeScript rules fail. */
  typeScript?: TypeScriptRuleSupport;
  /** A shared build cache consulted before a rule runs and offered what it built (--remote-cache). */
  cache?: TargetCache;
  /** Absolute `rules/` folder of the installed redo-ts package, searched after the project's own `rules/`. */
  sharedRulesDir?: string;
}
