/** The sole reader and writer of the REDO_* environment variables redo-ts uses. */

/**
 * What a redo-ts process learns from its environment.
 * - `REDO_TS_ROOT`: override of the project root (absolute or relative to cwd).
 * - `REDO_RUN_DIR`: set inside a build: the directory holding the engine's request FIFO.
 * - `REDO_PARENT`: set inside a build: the job token of the rule that is running.
 * - `REDO_ROOT`: set inside a build: the absolute project root.
 * - `REDO_TS_REMOTE_CACHE`: registry repository of the remote build cache (as --remote-cache).
 * - `REDO_TS_REMOTE_CACHE_READONLY`: "1" or "true": look up only (as --remote-cache-readonly).
 */
export interface RedoEnvironment {
  rootOverride: string | undefined;
  runDir: string | undefined;
  parentToken: string | undefined;
  root: string | undefined;
  remoteCache: string | undefined;
  isRemoteCacheReadOnly: boolean;
}

/** Reads the REDO_* variables redo-ts understands from `env`; never throws. */
export function readRedoEnvironment(env: NodeJS.ProcessEnv): RedoEnvironment {
  const nonEmpty = (value: string | undefined): string | undefined =>
    value === undefined || value === '' ? undefined : value;
  return {
    rootOverride: nonEmpty(env.REDO_TS_ROOT),
    runDir: nonEmpty(env.REDO_RUN_DIR),
    parentToken: nonEmpty(env.REDO_PARENT),
    root: nonEmpty(env.REDO_ROOT),
    remoteCache: nonEmpty(env.REDO_TS_REMOTE_CACHE),
    isRemoteCacheReadOnly: env.REDO_TS_REMOTE_CACHE_READONLY === '1' || env.REDO_TS_REMOTE_CACHE_READONLY === 'true',
  };
}

/** What a running rule needs in its environment to reach the engine that started it. */
export interface RuleEnvironmentOptions {
  /** Absolute project root (REDO_ROOT). */
  root: string;
  /** Absolute run directory of the engine (REDO_RUN_DIR). */
  runDir: string;
  /** The job token identifying the running rule to the engine (REDO_PARENT). */
  parentToken: string;
  /** Absolute directory of the sh client scripts, put first on PATH. */
  libexecDir: string;
  /** Absolute path of the node binary, for client fallbacks (REDO_NODE). */
  nodePath: string;
}

/**
 * Returns a copy of `base` with the variables a rule sees: REDO_ROOT, REDO_RUN_DIR,
 * REDO_PARENT, REDO_NODE, and PATH prefixed with the libexec directory. Pure.
 */
export function makeRuleEnvironment(
  base: NodeJS.ProcessEnv,
  options: RuleEnvironmentOptions,
): NodeJS.ProcessEnv {
  const path = base.PATH === undefined || base.PATH === '' ? options.libexecDir : `${options.libexecDir}:${base.PATH}`;
  return {
    ...base,
    PATH: path,
    REDO_ROOT: options.root,
    REDO_RUN_DIR: options.runDir,
    REDO_PARENT: options.parentToken,
    REDO_NODE: options.nodePath,
  };
}
