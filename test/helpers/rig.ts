// Test rig for end-to-end tests: copies a fixture project (test/fixtures/NNN-topic/) to a
// fresh temporary folder, runs the built redo-ts command line there, and reads the run
// log that fixture rules append to (`echo "$1" >> "$REDO_ROOT/run.log"`).
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (holding bin/redo-ts.js). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What one redo-ts invocation did. Paths of the project folder in stderr/stdout read `<dir>`. */
export interface RigResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of one run. */
export interface RigRunOptions {
  /** Extra environment (merged over a clean copy of process.env without REDO_* variables). */
  env?: NodeJS.ProcessEnv;
  /** Folder to run in, relative to the project (default: the project root). */
  cwd?: string;
  /** Data for stdin. */
  input?: string;
}

/** A temporary copy of one fixture. */
export interface Rig {
  /** Absolute folder of the copy. */
  dir: string;
  /** Runs `node bin/redo-ts.js ...args` in the copy; resolves when it exits. */
  run(args: string[], options?: RigRunOptions): Promise<RigResult>;
  /** Starts redo-ts without waiting (own process group, so `kill(-pid)` stops its rules too). */
  start(args: string[], options?: RigRunOptions): ChildProcess;
  /** Lines of run.log (one per rule run, as the fixture rules write them), then empties it. */
  takeRunLog(): string[];
  /** Absolute path of a file in the copy. */
  path(relative: string): string;
  /** Content of a file of the copy (utf8), or undefined if it does not exist. */
  read(relative: string): string | undefined;
  /** Deletes the copy. */
  remove(): void;
}

/** The environment redo-ts runs with in tests: the test's own, minus any REDO_* left from an enclosing build, LC_ALL=C, then `extra`. */
export function cliEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('REDO_')) env[name] = value;
  return { ...env, LC_ALL: 'C', ...extra };
}

/**
 * Starts `node bin/redo-ts.js ARGS` in the absolute `cwd` without waiting, in its own
 * process group (so `kill(-pid)` stops its rules too). With `umask` (octal text, e.g.
 * "077") it goes through sh, since only the child can set its own umask.
 */
export function startCli(cwd: string, args: string[], options: { env?: NodeJS.ProcessEnv; umask?: string } = {}): ChildProcess {
  const command = [process.execPath, join(repoRoot, 'bin', 'redo-ts.js'), ...args];
  if (options.umask !== undefined) command.unshift('/bin/sh', '-c', `umask ${options.umask} && exec "$@"`, 'sh');
  return spawn(command[0]!, command.slice(1), { cwd, env: cliEnvironment(options.env), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
}

/** Runs redo-ts as startCli does and resolves with its exit code (128 when killed) and output, once it exits. */
export function runCli(
  cwd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; umask?: string; input?: string } = {},
): Promise<RigResult> {
  return new Promise((resolvePromise, reject) => {
    const child = startCli(cwd, args, options);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.stdin?.end(options.input ?? '');
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code: code ?? (signal === null ? -1 : 128), stdout, stderr }));
  });
}

/**
 * Copies the folder `source` (absolute) and this repository's `rules/` into a fresh
 * temporary folder named `prefix…`, as the tutorial tells a reader to do with a chapter,
 * and returns that folder. No node_modules: rules get 'redo-ts' from the redo-ts that
 * runs them.
 */
export function copyWithRules(source: string, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(source, dir, { recursive: true });
  cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
  return dir;
}

/** Copies `test/fixtures/<fixture>` into a new temporary folder and returns the rig for it. */
export function useFixture(fixture: string): Rig {
  const dir = mkdtempSync(join(tmpdir(), `redo-ts-${fixture}-`));
  cpSync(join(repoRoot, 'test', 'fixtures', fixture), dir, { recursive: true });
  const where = (options: RigRunOptions): string => (options.cwd === undefined ? dir : join(dir, options.cwd));
  const normalise = (text: string): string => text.split(dir).join('<dir>');
  return {
    dir,
    start: (args, options = {}) => startCli(where(options), args, options.env === undefined ? {} : { env: options.env }),
    async run(args, options = {}) {
      const result = await runCli(where(options), args, options);
      return { code: result.code, stdout: normalise(result.stdout), stderr: normalise(result.stderr) };
    },
    takeRunLog() {
      const file = join(dir, 'run.log');
      if (!existsSync(file)) return [];
      const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
      rmSync(file);
      return lines;
    },
    path: (relative) => join(dir, relative),
    read(relative) {
      const file = join(dir, relative);
      return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
