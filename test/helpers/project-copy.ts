// Copies this repository's tracked files into a temporary folder, as a fresh clone after
// `npm ci` would look, and runs the built redo-ts command line there.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { refreshVanishedLocks, type LockRefresh } from './deb-locks.js';
import { refreshVanishedDebPins, type DebPinRefresh } from './deb-pins.js';
import { copyWithRules, repoRoot, runCli } from './rig.js';

/** What one redo-ts invocation did. */
export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A temporary copy of the project. */
export interface ProjectCopy {
  dir: string;
  /** `deb:` pins of the copy that have left the archive, and what the copy uses instead (empty on most days; see deb-pins.ts). */
  refreshedPins: DebPinRefresh[];
  /** Debian locks of the copy that named versions that have left the archive, locked again (empty on most days; see deb-locks.ts). */
  refreshedLocks: LockRefresh[];
  /** Runs `node bin/redo-ts.js ARGS` in the copy with `umask` (octal) and extra env. */
  redo(args: string[], options?: { env?: NodeJS.ProcessEnv; umask?: number }): Promise<RunResult>;
  /** sha256 hex of a file of the copy. */
  sha256(path: string): string;
  remove(): void;
}

/**
 * Copies every file `git ls-files` lists into a fresh folder whose name starts with
 * `prefix`, and links `node_modules` and `dist` to this repository's, so the copy is
 * what `git clone` plus `npm ci` gives, minus the time to install. A `deb:` pin the
 * archive no longer holds is moved, in the copy, to what apt offers now (deb-pins.ts),
 * and a lock naming such a version is locked again (deb-locks.ts).
 */
export function copyProject(prefix: string): ProjectCopy {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const listed = spawnSync('git', ['ls-files', '-z'], { cwd: repoRoot, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of listed.stdout.split('\0').filter((f) => f !== '')) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(repoRoot, file), join(dir, file), { verbatimSymlinks: true });
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  symlinkSync(join(repoRoot, 'dist'), join(dir, 'dist'));
  return projectCopyAt(dir, '');
}

/**
 * Copies the fixture folder `test/fixtures/NAME` and this repository's `rules/` into a
 * fresh folder (no node_modules: rules get 'redo-ts' from the redo-ts that runs them);
 * `deb:` pins and locks as copyProject.
 */
export function copyFixture(name: string): ProjectCopy {
  const dir = copyWithRules(join(repoRoot, 'test', 'fixtures', name), `redo-ts-${name.slice(0, 3)}-`);
  return projectCopyAt(dir, `test/fixtures/${name}`);
}

/** `from`: the repository folder the copy was taken from, for the warnings. */
function projectCopyAt(dir: string, from: string): ProjectCopy {
  return {
    dir,
    refreshedPins: refreshVanishedDebPins(dir, process.env, from),
    refreshedLocks: refreshVanishedLocks(dir, from),
    redo: (args, options = {}) => runRedo(dir, args, options),
    sha256: (path) => createHash('sha256').update(readFileSync(join(dir, path))).digest('hex'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function runRedo(cwd: string, args: string[], options: { env?: NodeJS.ProcessEnv; umask?: number }): Promise<RunResult> {
  const umask = (options.umask ?? 0o022).toString(8).padStart(3, '0');
  return runCli(cwd, args, { env: options.env ?? {}, umask }).then(({ code, stdout, stderr }) => ({ status: code, stdout, stderr }));
}
