/** What a redo client passes on from the rule that called it: exported environment, umask, stderr. */

import * as fs from 'node:fs';
import type { JobSlots } from './scheduler.js';

/** The context a rule started for a client's request inherits, as a Unix child would. */
export interface CallerContext {
  /** The caller's exported environment (every variable), or undefined for the engine's own. */
  env: Record<string, string> | undefined;
  /** The caller's umask in octal (e.g. "0022"), or undefined for the engine's own. */
  umask: string | undefined;
  /** Pid of the waiting client, whose stderr the rule writes to; undefined for the engine's. */
  clientPid: number | undefined;
  /** -x / -v given to this call or an enclosing one: sh rules below run traced. */
  isXtrace?: boolean;
  isVerbose?: boolean;
  /** One redo call without -k: set when one of its targets failed, so rules not started yet don't start. */
  batch?: { isStopped: boolean };
  /** The job budget of a nested `redo -jN` and everything below it; absent: the engine's. */
  slots?: JobSlots;
  /**
   * Where rules and messages below this call write their stderr: the descriptor of the
   * client's own redirected stderr, or the one its calling rule inherited; absent: the
   * engine's (events). Owned by the call that opened it (open while it runs).
   */
  stderrFd?: number;
}

/**
 * Parses what libexec/redo-call.sh writes with `{ export -p; umask; }`: dash's
 * `export NAME='v'` lines (values single-quoted, `'"'"'` for a quote, newlines kept),
 * bash's `export NAME="v"` or `declare -x NAME="v"` forms, `export NAME` for a variable
 * exported without a value (skipped), and a last line with the octal umask. Pure;
 * unparseable lines are skipped.
 */
export function parseExportedEnvironment(text: string): { env: Record<string, string>; umask: string | undefined } {
  const env: Record<string, string> = {};
  let umask: string | undefined;
  let i = 0;
  while (i < text.length) {
    const lineEnd = text.indexOf('\n', i) === -1 ? text.length : text.indexOf('\n', i);
    const head = /^(?:export|declare -x) ([A-Za-z_][A-Za-z0-9_]*)(=?)/.exec(text.slice(i, lineEnd));
    if (head === null) {
      const line = text.slice(i, lineEnd).trim();
      if (/^[0-7]{3,4}$/.test(line)) umask = line;
      i = lineEnd + 1;
      continue;
    }
    i += head[0].length;
    if (head[2] === '') {
      i = lineEnd + 1;
      continue;
    }
    // A shell word: quoted and unquoted parts, up to an unquoted newline.
    let value = '';
    while (i < text.length && text[i] !== '\n') {
      const c = text[i] as string;
      if (c === "'") {
        const close = text.indexOf("'", i + 1);
        const end = close === -1 ? text.length : close;
        value += text.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        i += 1;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length && '$`"\\\n'.includes(text[i + 1] as string)) i += 1;
          value += text[i];
          i += 1;
        }
        i += 1;
      } else if (c === '\\' && i + 1 < text.length) {
        value += text[i + 1];
        i += 2;
      } else {
        value += c;
        i += 1;
      }
    }
    env[head[1] as string] = value;
    i += 1;
  }
  return { env, umask };
}

/** Variables a shell sets by itself: never treated as a difference the caller made. */
const SHELL_OWN = new Set(['PWD', 'OLDPWD', 'SHLVL', '_', 'REDO_PARENT']);

/**
 * The differences of `env` from `base`: variables to set and variables to unset, leaving
 * out those a shell sets by itself (PWD, OLDPWD, SHLVL, _) and REDO_PARENT. Pure.
 */
export function environmentChanges(base: NodeJS.ProcessEnv, env: Record<string, string>): { set: Record<string, string>; unset: string[] } {
  const set: Record<string, string> = {};
  const unset: string[] = [];
  for (const [name, value] of Object.entries(env)) if (!SHELL_OWN.has(name) && base[name] !== value) set[name] = value;
  for (const name of Object.keys(base)) {
    if (!SHELL_OWN.has(name) && !(name in env) && base[name] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) unset.push(name);
  }
  return { set, unset };
}

/**
 * Opens the stderr of the waiting client `pid` for appending when the caller redirected
 * it somewhere of its own (`redo x 2>log`): returns the fd, or undefined when that stderr
 * is a rule's captured stderr under `runDir` (shown by the engine already), cannot be
 * opened (a socket), or the process is gone. Linux /proc only; elsewhere undefined.
 */
export function openCallerStderr(pid: number, runDir: string): number | undefined {
  const link = `/proc/${pid}/fd/2`;
  try {
    const where = fs.readlinkSync(link);
    if (where.startsWith(`${runDir}/`)) return undefined;
    return fs.openSync(link, fs.constants.O_WRONLY | fs.constants.O_APPEND);
  } catch {
    return undefined;
  }
}

/** Options a redo command inside a rule may give (`redo -j4 -k -x a b`). */
export interface CallOptions {
  names: string[];
  /** -j N: rules below this call share a budget of N slots of their own. */
  jobs: number | undefined;
  isKeepGoing: boolean;
  isXtrace: boolean;
  isVerbose: boolean;
  isShuffle: boolean;
}

/**
 * Splits the arguments of a nested redo call into options and names: `-j N`, `-jN`,
 * `--jobs N`, `--jobs=N`, `-k`/`--keep-going`, `-x`, `-v`, `--shuffle`, combined short
 * flags (`-kx`), and `--` ending the options. Returns a message for an unknown option
 * or a bad job count. Pure.
 */
export function parseCallOptions(args: string[]): CallOptions | { problem: string } {
  const options: CallOptions = { names: [], jobs: undefined, isKeepGoing: false, isXtrace: false, isVerbose: false, isShuffle: false };
  const jobsOf = (value: string | undefined): number | undefined => {
    const jobs = Number(value);
    return value !== undefined && Number.isInteger(jobs) && jobs >= 1 ? jobs : undefined;
  };
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    if (arg === '--') {
      options.names.push(...args.slice(i + 1));
      break;
    }
    if (arg === '--keep-going') options.isKeepGoing = true;
    else if (arg === '--shuffle') options.isShuffle = true;
    else if (arg === '--jobs' || arg.startsWith('--jobs=')) {
      const value = arg === '--jobs' ? args[(i += 1)] : arg.slice('--jobs='.length);
      options.jobs = jobsOf(value);
      if (options.jobs === undefined) return { problem: `"--jobs": wants a whole number of jobs ≥ 1, found ${JSON.stringify(value ?? '')}` };
    } else if (arg.startsWith('--')) return { problem: `"${arg}": unknown option` };
    else if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j += 1) {
        const flag = arg[j];
        if (flag === 'k') options.isKeepGoing = true;
        else if (flag === 'x') options.isXtrace = true;
        else if (flag === 'v') options.isVerbose = true;
        else if (flag === 'j') {
          const value = j + 1 < arg.length ? arg.slice(j + 1) : args[(i += 1)];
          options.jobs = jobsOf(value);
          if (options.jobs === undefined) return { problem: `"-j": wants a whole number of jobs ≥ 1, found ${JSON.stringify(value ?? '')}` };
          break;
        } else return { problem: `"-${flag ?? ''}": unknown option` };
      }
    } else options.names.push(arg);
  }
  return options;
}

/** The order in which to start `count` independent requests: 0..count-1, shuffled when asked. */
export function startOrder(count: number, isShuffle: boolean): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  if (!isShuffle) return order;
  for (let i = count - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}
