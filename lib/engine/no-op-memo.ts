/**
 * The verified no-op: what a build that ran no rule found, so the next identical request
 * can be answered with stats alone, before the engine is even loaded.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { visitFolderTree } from './folder-tree.js';
import { statTuple } from './quick-stat.js';

/**
 * `.redo/no-op.json` is written by a build that checked every target it was asked for,
 * found all of them up to date, ran no rule, saved no record and printed no warning. It
 * holds the request (root, folder, targets, rule folders) and every fact that decision
 * rested on: the stat (inode, size, mtime, ctime) of the record store's files, each target output
 * and source it read, or that the file was absent; the stat of each folder whose
 * listing answered an `ifcreate` ("does it exist?") question, or that a folder
 * dependency's listing rests on (it and every folder and file below it); and the hash
 * of each environment variable a target depends on. The record store's base file changes only by a rename
 * and its logs only by appends (a new size), an output only by a rename of a new file (a
 * new inode and ctime), a source's content only with its
 * mtime/ctime, and a folder's names only with its mtime: so when every stat is the same
 * again, the engine would decide the same and run nothing. Stats taken within
 * RACY_MS (two seconds) of a change are not trusted (a change in the same clock tick could keep
 * them equal): then no memo is written. Any difference, a journal of a killed engine,
 * or an unreadable memo sends the request to the engine as usual.
 */
const MEMO_VERSION = 1;
// Two seconds: some file systems keep times to the second (or two, for FAT).
const RACY_MS = 2000;

type StatTuple = [number, number, number, number];

interface Memo {
  version: number;
  request: string;
  /** [path, ino, size, mtimeMs, ctimeMs], or [path] for an absent file; paths inside the root relative to it. */
  files: Array<[string, ...number[]]>;
  /** [absolute folder, ino, mtimeMs, ctimeMs]: its names are what they were. */
  folders: Array<[string, number, number, number]>;
  /** [variable name, identity as recorded]. */
  env: Array<[string, string]>;
}

/**
 * The request text a memo is keyed by: everything but the facts, and the version of
 * redo-ts (another version may decide otherwise). Pure.
 */
export function describeRequest(root: string, fromDir: string, targets: readonly string[], sharedRulesDir: string | undefined, version: string): string {
  return JSON.stringify([root, fromDir, targets, sharedRulesDir ?? null, version]);
}

function memoPath(root: string): string {
  return path.join(root, '.redo', 'no-op.json');
}

/**
 * True when `.redo/no-op.json` was written for exactly `request` and every fact in it
 * still holds (and no killed engine left a journal): a build would run nothing and
 * print nothing. Reads only stats, the memo and folder names; never throws.
 */
export async function isVerifiedNoOp(root: string, request: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  let memo: Memo;
  try {
    memo = JSON.parse(fs.readFileSync(memoPath(root), 'utf8')) as Memo;
  } catch {
    return false;
  }
  if (memo.version !== MEMO_VERSION || memo.request !== request || !Array.isArray(memo.files) || !Array.isArray(memo.folders) || !Array.isArray(memo.env)) return false;
  try {
    if (fs.readdirSync(path.join(root, '.redo', 'journal')).length > 0) return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  const prefix = `${root}/`;
  const probe = memoPath(root);
  try {
    for (const [file, ...tuple] of memo.files) {
      const now = statTuple(file.startsWith('/') ? file : prefix + file, probe);
      if (tuple.length === 0) {
        if (now !== undefined) return false;
      } else if (now === undefined || now[0] !== tuple[0] || now[1] !== tuple[1] || now[2] !== tuple[2] || now[3] !== tuple[3]) {
        return false;
      }
    }
    for (const [folder, ino, mtimeMs, ctimeMs] of memo.folders) {
      const now = statTuple(folder, probe);
      if (now === undefined || now[0] !== ino || now[2] !== mtimeMs || now[3] !== ctimeMs) return false;
    }
  } catch {
    return false;
  }
  if (memo.env.length > 0) {
    const { createHash } = await import('node:crypto');
    for (const [name, identity] of memo.env) {
      const value = env[name];
      const now = value === undefined ? 'missing' : `sha256:${createHash('sha256').update(value).digest('hex')}`;
      if (now !== identity) return false;
    }
  }
  return true;
}

/** Removes the memo (a build that does anything makes it stale anyway; this saves the next run the stats). */
export function forgetNoOp(root: string): void {
  try {
    fs.rmSync(memoPath(root), { force: true });
  } catch {
    // Not ours to fix: the stats would not match.
  }
}

/** Collects the facts of one build's decisions; `write` saves them when they can be trusted. */
export class NoOpRecorder {
  private readonly files = new Map<string, StatTuple | undefined>();
  private readonly folders = new Map<string, [number, number, number]>();
  private readonly env = new Map<string, string>();
  private isRacy = false;
  private readonly startMs = Date.now();

  /** A file read, with its stat then (undefined: it was absent). */
  addFile(absolute: string, stat: { ino: number; sizeBytes: number; mtimeMs: number; ctimeMs: number; sha256Hex?: string } | undefined): void {
    if (stat === undefined) {
      this.files.set(absolute, undefined);
      return;
    }
    // A folder's stamp carries no stat (its listing is what a dependency compares).
    if (stat.sha256Hex === 'dir' || stat.sha256Hex?.startsWith('listing:') === true) {
      this.addFolderTree(absolute);
      return;
    }
    if (this.startMs - Math.max(stat.mtimeMs, stat.ctimeMs) < RACY_MS) this.isRacy = true;
    this.files.set(absolute, [stat.ino, stat.sizeBytes, stat.mtimeMs, stat.ctimeMs]);
  }

  /**
   * A folder whose listing (stamp.ts hashFolderListing) a decision compared: the stat of
   * it and of every folder below (names come and go only with their folder's mtime) and
   * of every file below (a chmod changes its ctime). Symlinks are covered by their folder
   * (pointing one elsewhere replaces it). Stats taken now, after the decision: any change
   * since the engine started is too recent to trust, so no memo is written.
   */
  private addFolderTree(absolute: string): void {
    try {
      const stats = fs.statSync(absolute);
      if (!stats.isDirectory()) {
        this.isRacy = true;
        return;
      }
      this.addFolder(absolute, stats);
      visitFolderTree(absolute, (_relative, member, memberStats) => {
        if (memberStats === undefined) this.isRacy = true;
        else if (memberStats.isDirectory()) this.addFolder(member, memberStats);
        else if (memberStats.isFile()) this.addFile(member, { ino: memberStats.ino, sizeBytes: memberStats.size, mtimeMs: memberStats.mtimeMs, ctimeMs: memberStats.ctimeMs });
      });
    } catch {
      this.isRacy = true;
    }
  }

  /** A folder whose listing answered existence questions, with its stat taken before the listing. */
  addFolder(absolute: string, stats: fs.Stats): void {
    if (this.startMs - Math.max(stats.mtimeMs, stats.ctimeMs) < RACY_MS) this.isRacy = true;
    this.folders.set(absolute, [stats.ino, stats.mtimeMs, stats.ctimeMs]);
  }

  /** Something was decided from a fact this memo cannot check again by stat (a folder's content): no memo. */
  markUnsure(): void {
    this.isRacy = true;
  }

  addEnv(name: string, identity: string): void {
    this.env.set(name, identity);
  }

  /** Writes `.redo/no-op.json` for `request`, unless a stat was too recent to trust. Best effort; never throws. */
  write(root: string, request: string): void {
    if (this.isRacy) {
      forgetNoOp(root);
      return;
    }
    const memo: Memo = {
      version: MEMO_VERSION,
      request,
      // Paths inside the project are kept relative to it (a smaller file to read).
      files: [...this.files].map(([file, tuple]) => {
        const name = file.startsWith(`${root}/`) ? file.slice(root.length + 1) : file;
        return tuple === undefined ? [name] : [name, ...tuple];
      }),
      folders: [...this.folders].map(([folder, tuple]) => [folder, ...tuple]),
      env: [...this.env],
    };
    const file = memoPath(root);
    const temporary = `${file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(temporary, JSON.stringify(memo));
      fs.renameSync(temporary, file);
    } catch {
      fs.rmSync(temporary, { force: true });
    }
  }
}
