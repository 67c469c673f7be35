/** Runs one rule (sh or TypeScript) with $1 $2 $3, checks the output contract, renames into place. */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError, isRedoError } from '../errors.js';
import { removeFile, removeIfPresent } from './lock.js';
import type { FoundRule } from './lookup.js';
import type { RuleSpawner } from './spawner.js';
import { hashFile, isSameStat, readStamp, type FileStamp } from './stamp.js';

/**
 * What a TypeScript rule (`NAME.do.ts`) receives. `Shell` is zx's `$` type; the engine
 * does not import zx, so `lib/index.ts` exports this with the shell type filled in.
 */
export interface RuleContext<Shell = unknown> {
  /** $1: the target relative to `dir`. */
  target: string;
  /** $2: $1 without the extension the rule matched. */
  base: string;
  /** $3: absolute temporary output path; write the result here. Renamed into place on success. */
  output: string;
  /** Absolute folder the rule runs in (the rule's folder, or the target's for rules from rules/). */
  dir: string;
  /** Absolute project root. */
  root: string;
  /** Absolute final path of the target. */
  targetPath: string;
  /** Absolute path of this rule file. */
  ruleFile: string;
  /** Environment for commands the rule runs (redo commands on PATH, REDO_* set). */
  env: NodeJS.ProcessEnv;
  /** Brings `paths` (relative to `dir`) up to date and records them as dependencies; throws if one fails. */
  ifchange(...paths: string[]): Promise<void>;
  /** Records that the target must be rebuilt if `paths` (relative to `dir`) come to exist; throws if one exists. */
  ifcreate(...paths: string[]): Promise<void>;
  /** Marks the target out of date on every run. */
  always(): void;
  /** Sets the identity dependents compare: they rebuild only when `data` changes. */
  stamp(data: string | Uint8Array): void;
  /**
   * Tells redo-ts the sha256 (lowercase hex) of the file now at `output`, as its writer
   * computed it while writing, so the engine does not read the file back to stamp it.
   * The file is stat'ed now; the hash is used only if, when the rule ends, the target's
   * size, mtime and inode are still these (else the file is read as usual).
   */
  outputSha256(sha256Hex: string): void;
  /**
   * Records environment variables the output depends on (e.g. SOURCE_DATE_EPOCH): the
   * target is rebuilt when one's value (as redo-ts sees it) changes, appears or goes.
   * Returns the current values (undefined when unset). Throws for a bad variable name.
   */
  ifchangeEnv(...names: string[]): Array<string | undefined>;
  /**
   * Hands the rule the target's previous output to rewrite in place: when the file at
   * `targetPath` is still the one the engine recorded when it was last written (same
   * size, mtime, ctime and inode; its sha256 is the recorded one), it is renamed to
   * `output` and its path, sha256 and size are returned; otherwise (none, edited since,
   * a folder, already taken) undefined and nothing moves. From then on the target is
   * missing until the rule succeeds: a rule that fails or is killed leaves no target, so
   * the next run builds it again, never a stale output with exit 0.
   */
  takePreviousOutput(): PreviousOutput | undefined;
  /** zx's `$` with cwd = `dir` and `env` as above. */
  $: Shell;
  /** Appends a line to the rule's captured stderr (shown live and kept for `redo-ts log`). */
  log(message: string): void;
}

/** The previous output a rule took (RuleContext.takePreviousOutput): now at `path` (the rule's `output`). */
export interface PreviousOutput {
  /** Absolute path the file now has: the rule's temporary output. */
  path: string;
  /** The sha256 (lowercase hex) the engine recorded for it. */
  sha256Hex: string;
  sizeBytes: number;
}

/** A TypeScript rule module's default export. */
export type RuleFunction = (context: RuleContext<any>) => Promise<void> | void;

/** Loader and shell factory injected by the CLI, so the engine imports neither tsx nor zx. */
export interface TypeScriptRuleSupport {
  /** Imports the `.do.ts` file at the absolute path and returns its default export; throws if it has none. */
  loadRule(absolutePath: string): Promise<RuleFunction>;
  /** A zx `$` bound to the absolute `cwd` and `env`. */
  makeShell(cwd: string, env: NodeJS.ProcessEnv): unknown;
}

/** The dependency operations a running rule may call (implemented by the build). */
export interface RuleOperations {
  ifchange(paths: string[]): Promise<void>;
  ifcreate(paths: string[]): Promise<void>;
  always(): void;
  stamp(data: string | Uint8Array): void;
  /** Records environment variables as dependencies; returns 0, or 2 for a bad name. */
  ifchangeEnv(names: string[]): number;
}

/** Everything needed to run one rule. */
export interface RuleRunRequest {
  root: string;
  /** Root-relative target path. */
  target: string;
  found: FoundRule;
  /** The environment of a TypeScript rule (unused for sh rules: see ruleEnv). */
  env: NodeJS.ProcessEnv;
  isXtrace: boolean;
  isVerbose: boolean;
  /** Absolute log file for the rule's stderr: replaced when there is some, removed when none. */
  logFile: string;
  /** Absolute scratch folder (the run directory) for the rule's stdout and stderr files. */
  scratchDir: string;
  /** Receives each chunk of stderr as it arrives. */
  onStderr(text: string): void;
  typeScript: TypeScriptRuleSupport | undefined;
  /** Starts sh rules; the rule's variables beyond the spawner's own go in `ruleEnv`. */
  spawner: Pick<RuleSpawner, 'run'>;
  /** Per-rule variables for sh rules (REDO_PARENT, and what the caller set). */
  ruleEnv: Record<string, string>;
  /** Variables the caller unset, removed for sh rules. */
  unsetEnv?: string[];
  /** The caller's octal umask for sh rules. */
  umask?: string;
  operations: RuleOperations;
  /** The rule file's content identity (sha256), so its `#!` line is read once per content. */
  ruleIdentity?: string;
  /** The target's output stamp as the engine last recorded it (takePreviousOutput checks the file against it). */
  previousOutput?: FileStamp | null;
  /** Told the exit status of an sh rule once it ends. */
  onExit?(status: number): void;
  /** Human chain for messages, top-level target first. */
  chain: string[];
}

/** The result of a successful rule run: the output now in place, or none. */
export interface RuleRunResult {
  /** Stamp of the new target file, or null when the rule produced no output (any old file removed). */
  output: FileStamp | null;
  /** For a folder target: sha256 of its tree (names, types, executable bits, contents, link targets). */
  treeSha256Hex?: string;
}

const STDERR_TAIL_LINES = 10;

/** The temporary output ($3) of the target at `targetAbsolute` for the engine `pid`. Pure. */
export function temporaryOutputPath(targetAbsolute: string, pid: number): string {
  return path.join(path.dirname(targetAbsolute), `${path.basename(targetAbsolute)}.redo.${pid}.tmp`);
}
let temporaryCounter = 0;
/** The buffer rules' stderr files are read through (each read is synchronous, so one serves every rule). */
let logChunk: Buffer | undefined;

/**
 * Runs the rule for `request.target`: sh rules as `sh -e [-x] [-v] RULE $1 $2 $3` (a plain one sourced by
 * libexec/redo-rule.sh, see spawner.ts) in the
 * rule's folder (the target's folder for rules from rules/), TypeScript rules in this
 * process. Output goes to a temporary `$3` or to stdout (a temporary file), both in the
 * target's folder; exactly one may be written, then it is renamed over the target.
 * Throws ERR_RULE_FAILED, ERR_RULE_BOTH_OUTPUTS or ERR_RULE_WROTE_TARGET, leaving the old
 * target untouched. Side effects: creates the target's folder, writes the log file.
 */
export async function runRule(request: RuleRunRequest): Promise<RuleRunResult> {
  const { root, target, found } = request;
  const targetAbsolute = path.join(root, target);
  const targetDir = path.dirname(targetAbsolute);
  const cwd = path.resolve(root, found.cwd);
  const ruleAbsolute = path.resolve(root, found.rule);
  // A stat first: the folder is there for nearly every target, and mkdir of an existing
  // name costs a failing mkdir (under the folder's lock) and a stat.
  if (fs.statSync(targetDir, { throwIfNoEntry: false })?.isDirectory() !== true) fs.mkdirSync(targetDir, { recursive: true });
  temporaryCounter += 1;
  const before = statOrUndefined(targetAbsolute);
  // Stat before the rule starts, to catch a rule that writes $1 itself.
  // One engine builds a target at most once, so pid alone makes the name unique; a
  // killed engine's leftover is found again by its pid (see Engine.rebuild).
  const outputTemporary = temporaryOutputPath(targetAbsolute, process.pid);
  // sh rules get their stdout/stderr files from the spawner; TypeScript rules use these.
  let stdoutTemporary = path.join(request.scratchDir, `o.ts${temporaryCounter}`);
  let stderrTemporary = path.join(request.scratchDir, `e.ts${temporaryCounter}`);
  let spawned: ReturnType<RuleSpawner['run']> | undefined;
  /** What a TypeScript rule's writer said of its output (ctx.outputSha256), if anything. */
  let written: FileStamp | undefined;
  if (found.kind === 'sh') {
    removeIfPresent(outputTemporary);
    spawned = request.spawner.run({
      cwd,
      shellFlags: [...(request.isXtrace ? ['-x'] : []), ...(request.isVerbose ? ['-v'] : [])],
      rule: path.dirname(ruleAbsolute) === cwd ? `./${path.basename(ruleAbsolute)}` : ruleAbsolute,
      args: [found.targetArg, found.baseArg, path.relative(cwd, outputTemporary)],
      env: request.ruleEnv,
      ...(request.unsetEnv === undefined ? {} : { unsetEnv: request.unsetEnv }),
      ...(request.umask === undefined ? {} : { umask: request.umask }),
      ...interpreterOf(ruleAbsolute, request),
      ...sourcing(ruleShell(ruleAbsolute, request.ruleIdentity)),
    });
    stdoutTemporary = spawned.stdoutFile;
    stderrTemporary = spawned.stderrFile;
  }

  // The spawner may not have created the file yet: open without truncating.
  const logFd = fs.openSync(stderrTemporary, fs.constants.O_RDWR | fs.constants.O_CREAT);
  let tail = '';
  let logOffset = 0;
  const show = (text: string): void => {
    if (text === '') return;
    tail = (tail + text).slice(-8192);
    request.onStderr(text);
  };
  // sh rules write their stderr straight to the log file; it is shown as it grows.
  const readLog = (): void => {
    logChunk ??= Buffer.allocUnsafe(65536);
    const buffer = logChunk;
    for (;;) {
      const count = fs.readSync(logFd, buffer, 0, buffer.length, logOffset);
      if (count <= 0) break;
      logOffset += count;
      show(buffer.toString('utf8', 0, count));
    }
  };
  const writeStderr = (text: string): void => {
    fs.writeSync(logFd, text, logOffset);
    logOffset += Buffer.byteLength(text);
    show(text);
  };
  const cleanUp = (): void => {
    removeIfPresent(outputTemporary);
    removeIfPresent(stdoutTemporary);
  };
  // The log is kept in .redo/log only when the rule said something. It was shown live,
  // so a full or read-only disk costs only the copy for `redo-ts log`, not the build.
  const keepLog = (): void => {
    try {
      if (logOffset > 0) {
        fs.mkdirSync(path.dirname(request.logFile), { recursive: true });
        fs.copyFileSync(stderrTemporary, request.logFile);
      } else {
        removeIfPresent(request.logFile);
      }
    } catch {
      // Shown already; `redo-ts log` will miss it (or show an older one).
    }
    removeFile(stderrTemporary);
  };

  try {
    if (spawned !== undefined) {
      const timer = setInterval(readLog, 250);
      let status: number;
      try {
        status = await spawned.status;
      } finally {
        clearInterval(timer);
        readLog();
      }
      request.onExit?.(status);
      if (status !== 0) throw ruleFailed(request, status, tail);
    } else {
      await runTypeScript(request, cwd, ruleAbsolute, outputTemporary, targetAbsolute, writeStderr, () => tail, (stamp) => void (written = stamp));
    }
  } catch (error) {
    cleanUp();
    fs.closeSync(logFd);
    keepLog();
    if (isRedoError(error)) throw error;
    throw ruleFailed(request, error instanceof Error ? error.message : String(error), tail, error);
  }
  fs.closeSync(logFd);
  keepLog();

  const after = statOrUndefined(targetAbsolute);
  // Removing the old $1 is allowed, and so is a folder made (or kept) at $1, as
  // apenwarr's redo allows (`rm -rf "$1"; mkdir "$1"`); writing a file at $1 is the
  // contract violation.
  const isFolderAtTarget = after?.isDirectory() === true;
  if (after !== undefined && !isFolderAtTarget && !isSameFile(before, after)) {
    cleanUp();
    // What the rule wrote there is no build result: removed, so the next run builds (and
    // fails) again instead of taking it for a source or a hand edit.
    fs.rmSync(targetAbsolute, { force: true, recursive: true });
    throw new RedoError('ERR_RULE_WROTE_TARGET', `redo: "${target}": rule "${found.rule}" modified $1 directly`, {
      details: [`chain: ${request.chain.join(' → ')}`, `"${target}" was removed: it is rebuilt on the next run`],
      hint: found.kind === 'sh'
        ? 'write the result to "$3" (or to stdout), never to "$1"; redo-ts renames it into place'
        : 'write the result to ctx.output, never to ctx.targetPath; redo-ts renames it into place',
    });
  }
  // lstat: a symlink written at $3 is an output even when it dangles.
  const outputStats = statOrUndefined(outputTemporary);
  const hasOutputFile = outputStats !== undefined;
  const stdoutSize = statOrUndefined(stdoutTemporary)?.size ?? 0;
  if (hasOutputFile && stdoutSize > 0) {
    cleanUp();
    throw new RedoError('ERR_RULE_BOTH_OUTPUTS', `redo: "${target}": rule "${found.rule}" wrote both $3 and stdout`, {
      details: [`chain: ${request.chain.join(' → ')}`, `stdout: ${stdoutSize} bytes`],
      hint: 'write the result to exactly one of them; send messages to stderr (>&2)',
    });
  }
  let output: FileStamp | null = null;
  let treeSha256Hex: string | undefined;
  if (isFolderAtTarget && !hasOutputFile && stdoutSize === 0) {
    // A folder at $1 (made by the rule, or kept from before) and nothing at $3 or on
    // stdout: that folder is the output, as with apenwarr's redo.
    removeFile(stdoutTemporary);
    return { output: readStamp(targetAbsolute) ?? null, treeSha256Hex: hashTree(targetAbsolute) };
  }
  try {
    if (hasOutputFile) {
      if (outputStats.isDirectory()) treeSha256Hex = hashTree(outputTemporary);
      replaceTarget(outputTemporary, targetAbsolute);
    } else if (stdoutSize > 0) {
      // stdout was captured in the scratch folder, maybe another file system: copy, then rename.
      fs.copyFileSync(stdoutTemporary, outputTemporary);
      // The capture file was made by the spawner, under the engine's umask: give the
      // output the mode the rule's own umask gives a new file, as `> "$3"` would.
      fs.chmodSync(outputTemporary, 0o666 & ~ruleUmask(request.umask));
      fs.renameSync(outputTemporary, targetAbsolute);
    } else {
      // No output at all: like apenwarr/redo, the target then has no file (e.g. `all`).
      fs.rmSync(targetAbsolute, { force: true, recursive: true });
    }
  } catch (error) {
    cleanUp();
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new RedoError('ERR_WRITE_FAILED', `redo: "${target}": cannot put the output of rule "${found.rule}" in place`, {
      details: [`chain: ${request.chain.join(' → ')}`, `error: ${code}`],
      hint: code === 'ENOSPC' ? 'the disk is full; free some space and run again (the previous output, if any, is untouched)' : 'check that the target\'s folder is writable',
      cause: error,
    });
  }
  removeFile(stdoutTemporary);
  if (hasOutputFile || stdoutSize > 0) output = writtenStamp(targetAbsolute, written) ?? readStamp(targetAbsolute) ?? null;
  return treeSha256Hex === undefined ? { output } : { output, treeSha256Hex };
}

/** The umask a rule runs with: its caller's (octal text), else this process's. */
function ruleUmask(umask: string | undefined): number {
  if (umask !== undefined && /^[0-7]{1,4}$/.test(umask)) return Number.parseInt(umask, 8);
  return process.umask();
}

/**
 * Renames `temporary` over `target`. A folder cannot be renamed over a file or a
 * non-empty folder, so then the old target is first renamed aside, and removed after.
 */
function replaceTarget(temporary: string, target: string): void {
  try {
    fs.renameSync(temporary, target);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR' && code !== 'ENOTDIR') throw error;
  }
  const aside = `${temporary}.old`;
  fs.rmSync(aside, { recursive: true, force: true });
  fs.renameSync(target, aside);
  fs.renameSync(temporary, target);
  fs.rmSync(aside, { recursive: true, force: true });
}

/** sha256 over a folder's tree: sorted names, types, executable bits, file contents, link targets. */
function hashTree(folder: string): string {
  const hash = crypto.createHash('sha256');
  const walk = (dir: string, prefix: string): void => {
    const names = fs.readdirSync(dir).sort();
    for (const name of names) {
      const absolute = path.join(dir, name);
      const relative = `${prefix}${name}`;
      const stats = fs.lstatSync(absolute);
      if (stats.isDirectory()) {
        hash.update(`d ${relative}\0`);
        walk(absolute, `${relative}/`);
      } else if (stats.isSymbolicLink()) {
        hash.update(`l ${relative}\0${fs.readlinkSync(absolute)}\0`);
      } else if (stats.isFile()) {
        hash.update(`f ${relative} ${(stats.mode & 0o111) !== 0 ? 'x' : '-'}\0${hashFile(absolute)}\0`);
      } else {
        hash.update(`o ${relative}\0`);
      }
    }
  };
  walk(folder, '');
  return hash.digest('hex');
}

/**
 * The interpreter of an sh rule whose first line is `#!` (FAQSemantics.md): its words,
 * with -x/-v kept only for a shell; none (so `sh -e`) without `#!`.
 */
function interpreterOf(ruleAbsolute: string, request: RuleRunRequest): { interpreter?: string[]; shellFlags?: string[] } {
  const words = interpreterWords(ruleAbsolute, request.ruleIdentity);
  if (words === undefined) return {};
  const isShell = /^(ba|da|k|z|mk|)sh$/.test(path.basename(words[0]!));
  return { interpreter: words, shellFlags: isShell ? [...(request.isXtrace ? ['-x'] : []), ...(request.isVerbose ? ['-v'] : [])] : [] };
}

/** How a plain sh rule's shell may run (see ruleShell), read once per content identity and process. */
const ruleShells = new Map<string, RuleShell>();

/**
 * How the plain sh rule at `ruleAbsolute` runs: `'own-process'` when it names `$0`, `$$` or
 * `$PPID` (or cannot be read), in a shell process of its own (`sh -e RULE`), where they are the
 * rule's own; `'subshell'` when it names `trap` or `exec`, sourced by a subshell of the
 * spawner's background job, which reports its status whatever the rule does to its own
 * shell; else `'job'`, sourced by the background job itself, whose EXIT trap reports the
 * status (a fork fewer per rule). Sourcing saves an exec of sh per rule.
 */
function ruleShell(ruleAbsolute: string, identity: string | undefined): RuleShell {
  const key = `${ruleAbsolute}\0${identity ?? ''}`;
  let shell = identity === undefined ? undefined : ruleShells.get(key);
  if (shell === undefined) {
    try {
      const text = fs.readFileSync(ruleAbsolute, 'latin1');
      shell = /\$\{?(?:0|\$|PPID)/.test(text) ? 'own-process' : /\b(?:trap|exec)\b/.test(text) ? 'subshell' : 'job';
    } catch {
      shell = 'own-process';
    }
    if (identity !== undefined) ruleShells.set(key, shell);
  }
  return shell;
}

type RuleShell = 'own-process' | 'subshell' | 'job';

function sourcing(shell: RuleShell): { isSourced: boolean; isSourcedByJob?: boolean } {
  return shell === 'own-process' ? { isSourced: false } : shell === 'subshell' ? { isSourced: true } : { isSourced: true, isSourcedByJob: true };
}

/** The words of the `#!` line of a rule file, read once per content identity and process. */
const interpreters = new Map<string, string[] | undefined>();

function interpreterWords(ruleAbsolute: string, identity: string | undefined): string[] | undefined {
  if (identity === undefined) return readInterpreterWords(ruleAbsolute);
  const key = `${ruleAbsolute}\0${identity}`;
  if (interpreters.has(key)) return interpreters.get(key);
  const words = readInterpreterWords(ruleAbsolute);
  interpreters.set(key, words);
  return words;
}

function readInterpreterWords(ruleAbsolute: string): string[] | undefined {
  const buffer = Buffer.alloc(256);
  let count = 0;
  try {
    const fd = fs.openSync(ruleAbsolute, 'r');
    try {
      count = fs.readSync(fd, buffer, 0, buffer.length, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const head = buffer.toString('utf8', 0, count);
  if (!head.startsWith('#!')) return undefined;
  const words = head.slice(2).split('\n')[0]!.trim().split(/\s+/).filter((word) => word !== '');
  return words.length === 0 ? undefined : words;
}

/**
 * The stamp of the output at `targetAbsolute` from what its writer said (`written`: the
 * file's stat fields when the rule called ctx.outputSha256, and the hash), or undefined
 * when nothing was said or the file is no longer that one (size, mtime or inode differ:
 * renaming it into place changes only its ctime).
 */
function writtenStamp(targetAbsolute: string, written: FileStamp | undefined): FileStamp | undefined {
  if (written === undefined) return undefined;
  const stats = statOrUndefined(targetAbsolute);
  if (stats === undefined || !stats.isFile() || stats.size !== written.sizeBytes || stats.mtimeMs !== written.mtimeMs || stats.ino !== written.ino) return undefined;
  return { sizeBytes: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, sha256Hex: written.sha256Hex };
}

async function runTypeScript(
  request: RuleRunRequest,
  cwd: string,
  ruleAbsolute: string,
  outputTemporary: string,
  targetAbsolute: string,
  writeStderr: (text: string) => void,
  getTail: () => string,
  onOutputSha256: (stamp: FileStamp) => void,
): Promise<void> {
  const support = request.typeScript;
  if (support === undefined) {
    throw new RedoError('ERR_RULE_FAILED', `redo: "${request.target}": TypeScript rules are not available here`, {
      details: [`rule: ${request.found.rule}`],
    });
  }
  const rule = await support.loadRule(ruleAbsolute);
  let isPreviousTaken = false;
  const context: RuleContext = {
    target: request.found.targetArg,
    base: request.found.baseArg,
    output: outputTemporary,
    dir: cwd,
    root: request.root,
    targetPath: targetAbsolute,
    ruleFile: ruleAbsolute,
    env: request.env,
    ifchange: (...paths) => request.operations.ifchange(paths),
    ifcreate: (...paths) => request.operations.ifcreate(paths),
    always: () => request.operations.always(),
    stamp: (data) => request.operations.stamp(data),
    outputSha256: (sha256Hex) => {
      if (!/^[0-9a-f]{64}$/.test(sha256Hex)) throw new RedoError('ERR_USAGE', `redo: "${request.target}": ctx.outputSha256: ${JSON.stringify(sha256Hex)} is not 64 lowercase hex digits`);
      const stats = fs.statSync(outputTemporary);
      onOutputSha256({ sizeBytes: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, sha256Hex });
    },
    ifchangeEnv: (...names) => {
      if (request.operations.ifchangeEnv(names) !== 0) {
        throw new RedoError('ERR_USAGE', `redo: "${request.target}": ctx.ifchangeEnv: not a variable name among ${names.map((name) => JSON.stringify(name)).join(', ')}`);
      }
      return names.map((name) => request.env[name]);
    },
    takePreviousOutput: () => {
      const previous = request.previousOutput;
      if (isPreviousTaken || previous === undefined || previous === null || !/^[0-9a-f]{64}$/.test(previous.sha256Hex)) return undefined;
      const stats = statOrUndefined(targetAbsolute);
      if (stats === undefined || !stats.isFile() || !isSameStat(previous, stats)) return undefined;
      isPreviousTaken = true;
      fs.rmSync(outputTemporary, { force: true, recursive: true });
      // A rename: the bytes stay where they are, and the target is missing until the rule succeeds.
      fs.renameSync(targetAbsolute, outputTemporary);
      return { path: outputTemporary, sha256Hex: previous.sha256Hex, sizeBytes: stats.size };
    },
    $: support.makeShell(cwd, request.env),
    log: (message) => writeStderr(message.endsWith('\n') ? message : `${message}\n`),
  };
  try {
    await rule(context);
  } catch (error) {
    if (isRedoError(error)) throw error;
    const message = error instanceof Error ? error.message : String(error);
    // Keep the stack frames inside the rule file: the engine's own frames do not help.
    const frames = (error instanceof Error && error.stack !== undefined ? error.stack.split('\n') : [])
      .filter((line) => line.trimStart().startsWith('at ') && line.includes(ruleAbsolute))
      .map((line) => `${line.trim().replace(request.root + '/', '')}\n`);
    // A failed command run with ctx.$ (zx's ProcessOutput) carries its exit status and
    // stderr: report those, as for an sh rule.
    const processOutput = error as { exitCode?: unknown; stderr?: unknown };
    if (typeof processOutput.exitCode === 'number' && typeof processOutput.stderr === 'string') {
      const how = `ran a command (ctx.$) that exited with status ${processOutput.exitCode}`;
      throw ruleFailed(request, how, getTail() + processOutput.stderr + frames.join(''), error);
    }
    const headline = message.split('\n').find((line) => line.trim() !== '') ?? message;
    throw ruleFailed(request, `threw: ${headline.trim()}`, getTail() + frames.join(''), error);
  }
}

function ruleFailed(request: RuleRunRequest, status: number | string, tail: string, cause?: unknown): RedoError {
  const how = typeof status === 'number'
    ? status > 128 && status < 160 ? `exited with status ${status} (killed by signal ${status - 128}?)` : `exited with status ${status}`
    : status.startsWith('SIG') ? `was killed by ${status}` : status;
  const lines = tail.split('\n').filter((line) => line !== '').slice(-STDERR_TAIL_LINES);
  return new RedoError('ERR_RULE_FAILED', `redo: "${request.target}": rule "${request.found.rule}" ${how}`, {
    details: [
      `chain: ${request.chain.join(' → ')}`,
      ...(lines.length === 0 ? [] : [`stderr (last ${lines.length === 1 ? 'line' : `${lines.length} lines`}):`, ...lines.map((line) => `  ${line}`)]),
    ],
    hint: `the previous "${request.target}" (if any) is untouched; full stderr: redo-ts log ${request.target}`,
    cause,
  });
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    // Without an exception for a missing file: its stack costs more than the stat.
    return fs.lstatSync(p, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

function isSameFile(before: fs.Stats | undefined, after: fs.Stats | undefined): boolean {
  if (before === undefined || after === undefined) return before === after;
  return isSameStat({ sizeBytes: before.size, mtimeMs: before.mtimeMs, ctimeMs: before.ctimeMs, ino: before.ino }, after);
}
