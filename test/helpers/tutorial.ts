// Runs a tutorial chapter the way a reader would: a temporary copy of the chapter folder
// plus the repository's shared rules/, driven through the built redo-ts command line.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { refreshVanishedLocks, type LockRefresh } from './deb-locks.js';
import { refreshVanishedDebPins, type DebPinRefresh } from './deb-pins.js';
import { copyWithRules, repoRoot, runCli } from './rig.js';

export { repoRoot };

/** What one redo-ts invocation did. */
export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A temporary copy of one chapter, ready to build. */
export interface ChapterCopy {
  /** Absolute folder of the copy: the chapter's files, `rules/`, and `node_modules/redo-ts`. */
  dir: string;
  /** `deb:` pins of the chapter that have left the archive, and what the copy uses instead (empty on most days; see deb-pins.ts). */
  refreshedPins: DebPinRefresh[];
  /** The chapter's Debian locks that named versions that have left the archive, locked again in the copy (empty on most days; see deb-locks.ts). */
  refreshedLocks: LockRefresh[];
  /** Runs `node bin/redo-ts.js ARGS` in `dir` (or `cwd` below it). */
  redo(args: string[], options?: { env?: NodeJS.ProcessEnv; cwd?: string; umask?: string }): Promise<RunResult>;
  /** Targets whose rules ran since the last call, sorted (rules append `$1` to runs.log). */
  takeRuns(): string[];
  /** Reads a file of the copy as text. */
  read(path: string): string;
  /** Writes a file of the copy. */
  write(path: string, text: string): void;
  /** Removes the copy. */
  remove(): void;
}

/**
 * Copies `tutorial/CHAPTER/` and `rules/` into a fresh temporary folder, as the
 * tutorial tells a reader to. Nothing else is copied, not even node_modules: the
 * chapter must build from what it has in git plus the shared rules (TypeScript rules
 * get `'redo-ts'` from the redo-ts that runs them). A `deb:` pin the archive no longer
 * holds is moved, in the copy, to the version apt offers now (refreshVanishedDebPins),
 * and a lock naming such a version is locked again (refreshVanishedLocks).
 */
export function copyChapter(chapter: string): ChapterCopy {
  const dir = copyWithRules(join(repoRoot, 'tutorial', chapter), `redo-tutorial-${chapter.slice(0, 2)}-`);
  const refreshedPins = refreshVanishedDebPins(dir, process.env, `tutorial/${chapter}`);
  const refreshedLocks = refreshVanishedLocks(dir, `tutorial/${chapter}`);
  const runsLog = join(dir, 'runs.log');
  return {
    dir,
    refreshedPins,
    refreshedLocks,
    redo: (args, options = {}) => runRedo(args, options.cwd ?? dir, options.env, options.umask),
    takeRuns() {
      let text = '';
      try {
        text = readFileSync(runsLog, 'utf8');
      } catch {
        return [];
      }
      writeFileSync(runsLog, '');
      return text.split('\n').filter((line) => line !== '').sort();
    },
    read: (path) => readFileSync(join(dir, path), 'utf8'),
    write: (path, text) => writeFileSync(join(dir, path), text),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function runRedo(args: string[], cwd: string, extraEnv?: NodeJS.ProcessEnv, umask?: string): Promise<RunResult> {
  const options = { ...(extraEnv === undefined ? {} : { env: extraEnv }), ...(umask === undefined ? {} : { umask }) };
  return runCli(cwd, args, options).then(({ code, stdout, stderr }) => ({ status: code, stdout, stderr }));
}

/**
 * The files a chapter's README shows: each fenced block right after a line
 * `<!-- file: PATH -->` must equal the file PATH of the chapter byte for byte, so the
 * prose can never drift from what the reader runs. Returns [path, shown, actual] for
 * every such block.
 */
export function shownFiles(chapter: string): Array<[string, string, string]> {
  const folder = join(repoRoot, 'tutorial', chapter);
  const readme = readFileSync(join(folder, 'README.md'), 'utf8');
  const found: Array<[string, string, string]> = [];
  const pattern = /<!-- file: (\S+) -->\n```[a-z]*\n([\s\S]*?)```\n/g;
  for (const match of readme.matchAll(pattern)) {
    found.push([match[1]!, match[2]!, readFileSync(join(folder, match[1]!), 'utf8')]);
  }
  return found;
}

/** Targets redo-ts reports rebuilding on stderr (`redo  TARGET  (why)` lines), sorted. */
export function rebuiltTargets(stderr: string): string[] {
  const targets: string[] = [];
  for (const line of stderr.split('\n')) {
    const match = /^redo {2}(\S+) {2}/.exec(line);
    if (match !== null) targets.push(match[1]!);
  }
  return targets.sort();
}

/** sha256 of a file of a copy, as `sha256:<hex>`. */
export function sha256Of(path: string): string {
  return `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
}
