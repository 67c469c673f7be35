/** Lets a running engine act before its process starts any child: node:child_process's functions, wrapped once per process. */

import { createRequire, syncBuiltinESMExports } from 'node:module';
import { promisify } from 'node:util';

/** An engine that must be told before its process starts a child. */
export interface ChildWatcher {
  /**
   * Called synchronously before any child process starts (a child started meanwhile
   * does not call it again) with the environment it is given (undefined: it inherits
   * this process's); returns the run folder the child's environment must name
   * (REDO_RUN_DIR), so the engine's watchdog can find it if the engine is killed.
   */
  beforeChild(env: NodeJS.ProcessEnv | undefined): string;
}

type ChildProcessModule = typeof import('node:child_process');
type Launcher = (...args: unknown[]) => unknown;

/** Where each wrapped function takes its options: after the command (exec) or after the argument list. */
const launchers: Record<string, 'command' | 'arguments'> = {
  spawn: 'arguments',
  spawnSync: 'arguments',
  execFile: 'arguments',
  execFileSync: 'arguments',
  fork: 'arguments',
  exec: 'command',
  execSync: 'command',
};

const watchers = new Set<ChildWatcher>();
let isInstalled = false;
/** True while watchers run: the children they start themselves (mkfifo, the spawner) pass through. */
let isInWatcher = false;

/**
 * Calls `watcher.beforeChild()` before every child this process starts until the
 * returned function is called. The first call wraps node:child_process's spawn,
 * spawnSync, execFile, execFileSync, exec, execSync and fork on its module object and
 * updates the ES module bindings (`syncBuiltinESMExports`), so `import { spawnSync }
 * from 'node:child_process'`, `require('node:child_process').spawn` and promisified
 * exec/execFile all pass through it; a function copied out of the module before that
 * (`const { spawn } = require(...)` in a package loaded earlier) does not. With exactly
 * one watcher, a child that would inherit this process's environment (no `env`
 * option) gets it with REDO_RUN_DIR added; an explicit `env` is passed as given.
 */
export function watchChildren(watcher: ChildWatcher): () => void {
  if (!isInstalled) install();
  watchers.add(watcher);
  return () => void watchers.delete(watcher);
}

/** Runs `start` with the watch off: the children it starts (a watcher's own) tell no watcher. */
export function unwatched<T>(start: () => T): T {
  if (isInWatcher) return start();
  isInWatcher = true;
  try {
    return start();
  } finally {
    isInWatcher = false;
  }
}

function install(): void {
  const childProcess = createRequire(import.meta.url)('node:child_process') as ChildProcessModule & Record<string, unknown>;
  for (const [name, kind] of Object.entries(launchers)) {
    const original = childProcess[name] as Launcher & { [promisify.custom]?: Launcher };
    const wrapped = function (this: unknown, ...args: unknown[]): unknown {
      return original.apply(this, beforeChild(args, kind));
    };
    // exec and execFile carry their own promisified form ({ stdout, stderr }).
    const custom = original[promisify.custom];
    if (custom !== undefined) {
      Object.defineProperty(wrapped, promisify.custom, {
        value: function (this: unknown, ...args: unknown[]): unknown {
          return custom.apply(this, beforeChild(args, kind));
        },
        enumerable: false,
        configurable: true,
        writable: true,
      });
    }
    Object.defineProperty(wrapped, 'name', { value: original.name });
    childProcess[name] = wrapped;
  }
  syncBuiltinESMExports();
  isInstalled = true;
}

/** Tells every watcher a child is about to start; returns the arguments to start it with. */
function beforeChild(args: unknown[], kind: 'command' | 'arguments'): unknown[] {
  if (watchers.size === 0 || isInWatcher) return args;
  const options = args[optionsAt(args, kind)];
  const env = isOptions(options) ? (options.env as NodeJS.ProcessEnv | undefined) : undefined;
  const runDirs = unwatched(() => [...watchers].map((watcher) => watcher.beforeChild(env)));
  return runDirs.length === 1 ? withRunDir(args, kind, runDirs[0] as string) : args;
}

/** Where a launcher's options are in `args`: after the command (exec), else after the argument list when there is one. Pure. */
function optionsAt(args: unknown[], kind: 'command' | 'arguments'): number {
  return kind === 'command' || (args[1] !== undefined && args[1] !== null && !Array.isArray(args[1])) ? 1 : 2;
}

/**
 * `args` with REDO_RUN_DIR=`runDir` added to the environment when the child would
 * inherit this process's (no options, or options without `env`). Pure but for reading
 * process.env.
 */
function withRunDir(args: unknown[], kind: 'command' | 'arguments', runDir: string): unknown[] {
  const at = optionsAt(args, kind);
  const options = args[at];
  if (isOptions(options) && options.env !== undefined) return args;
  const env = { ...process.env, REDO_RUN_DIR: runDir };
  const copy = [...args];
  if (at === 2 && (copy[1] === undefined || copy[1] === null)) copy[1] = [];
  if (isOptions(options)) copy[at] = { ...options, env };
  else if (options === undefined && copy.length <= at) copy[at] = { env };
  // A callback (or undefined) in the options' place: the options go before it.
  else copy.splice(at, options === undefined ? 1 : 0, { env });
  return copy;
}

/** Whether a launcher argument is its options object (not the argument list, a callback or nothing). Pure. */
function isOptions(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
