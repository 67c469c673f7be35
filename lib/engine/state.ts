/** The .redo/ state: versioned per-target records, atomic saves, and the state layout. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError } from '../errors.js';
import type { FileStamp, Identity } from './stamp.js';

/**
 * Layout of `.redo/` at the project root (version 1):
 *
 *   .redo/
 *     VERSION                    "redo-ts state 1\n"
 *     db/<target path>.json      one TargetRecord per target, replaced atomically (write tmp, rename)
 *     log/<target path>.log      stderr of the target's last build (absent when it was empty)
 *     locks/<sha256 prefix>.lock pid and start time of the process building that target (lock.ts)
 *     run/<pid>-<random>/        run directory of a running engine when /dev/shm is unusable
 *     journal/<pid>-<ticks>      targets whose rules a running engine started (journal.ts)
 *     snapshot.json              a read cache of the records: each with the stat of the record
 *                                file it was read from (see StateStore.load)
 *
 * Every write is a rename of a complete file. The order is: target noted in the
 * journal, rule writes a temporary output, output renamed over the target, record
 * saved, lock removed. A kill between the rename and the save leaves a new output that
 * matches no record; the next run finds the dead engine's journal and deletes that
 * output so the target is rebuilt (reconcile.ts). Two processes never write one
 * record at the same time because the target's lock is held while building it.
 */
export const STATE_VERSION = 1;

const VERSION_TEXT = `redo-ts state ${STATE_VERSION}\n`;

/** How a dependency was declared. */
export type DependencyMode = 'ifchange' | 'ifcreate' | 'env';

/** One recorded dependency of a target, in declaration order. */
export interface DependencyRecord {
  /** Root-relative path; for `env`, the variable's name. */
  path: string;
  mode: DependencyMode;
  /** Identity seen when the target was built (ifchange: of the file; env: of the value). */
  identity?: Identity;
  /** Stat of a source dependency, for the fast path (ifchange sources only). */
  stamp?: FileStamp;
}

/** Everything redo-ts remembers about one target. */
export interface TargetRecord {
  version: typeof STATE_VERSION;
  /** Root-relative target path. */
  target: string;
  /** Root-relative rule file used for the last build. */
  rule: string;
  /** Stamp of the output file as written, or null when the rule produced no output. */
  output: FileStamp | null;
  /** What dependents compare: output hash, redo-stamp hash, or none:<builds>. */
  identity: Identity;
  /** How many times the target was built (gives no-output targets a changing identity). */
  builds: number;
  /** Set by redo-always: the target is out of date on every run. */
  isAlways: boolean;
  /** sha256 of the data given to redo-stamp, if any. */
  stampSha256Hex: string | null;
  deps: DependencyRecord[];
}

/** Reads and writes the records under one project's `.redo/`. */
export class StateStore {
  readonly root: string;
  readonly stateDir: string;
  private isChecked = false;
  /** Record folders created (or found) by this process, so saves skip the mkdir. */
  private readonly madeFolders = new Set<string>();

  /** `root` is the absolute project root; nothing is read or created until used. */
  constructor(root: string) {
    this.root = root;
    this.stateDir = path.join(root, '.redo');
  }

  /**
   * Checks `.redo/VERSION`, creating `.redo/` if absent. Throws ERR_STATE_TOO_NEW for a
   * newer version and ERR_STATE_CORRUPT for an unreadable one; both say what to delete.
   */
  checkVersion(): void {
    if (this.isChecked) return;
    const versionFile = path.join(this.stateDir, 'VERSION');
    let text: string | undefined;
    try {
      text = fs.readFileSync(versionFile, 'utf8');
    } catch {
      text = undefined;
    }
    const dbDir = path.join(this.stateDir, 'db');
    if (text === undefined && fs.existsSync(dbDir) && !isEmptyFolder(dbDir)) {
      // Records are saved only after VERSION is written, so another redo-ts starting on a
      // fresh tree may have written both since we looked: look again before calling it corrupt.
      try {
        text = fs.readFileSync(versionFile, 'utf8');
      } catch {
        throw corrupt('.redo/VERSION', 'missing while .redo/db exists');
      }
    }
    if (text === undefined) {
      // An empty db/ without VERSION is a first run killed between the two: carry on.
      try {
        // db/ is made before VERSION, so a state that has VERSION and no db/ lost its records.
        // Not recursive: a recursive mkdir reports ENOENT, not EROFS, on a read-only file system.
        // EEXIST: another redo-ts starting on the same fresh tree made it first.
        mkdirUnlessPresent(this.stateDir);
        mkdirUnlessPresent(dbDir);
        writeAtomically(versionFile, VERSION_TEXT);
      } catch (error) {
        throw writeFailed('.redo', 'cannot create the build state folder', error);
      }
    } else {
      const match = /^redo-ts state (\d+)\n?$/.exec(text);
      if (match === null) throw corrupt('.redo/VERSION', `unexpected content ${JSON.stringify(text.slice(0, 40))}`);
      const found = Number(match[1]);
      if (found > STATE_VERSION) {
        throw new RedoError('ERR_STATE_TOO_NEW', 'redo: ".redo": state was written by a newer redo-ts', {
          details: [`found: version ${found}`, `wanted: version ${STATE_VERSION} or older`],
          hint: 'upgrade redo-ts, or delete .redo/ and the files it built, then run again',
        });
      }
      if (found < STATE_VERSION) throw corrupt('.redo/VERSION', `version ${found} is no longer readable`);
      let isFolder: boolean;
      try {
        isFolder = fs.statSync(dbDir).isDirectory();
      } catch {
        isFolder = false;
      }
      // Without its records every output would pass for a source and never be rebuilt.
      if (!isFolder) throw lostRecords(fs.existsSync(dbDir));
    }
    this.isChecked = true;
  }

  /** Absolute path of the record file of `target`. */
  recordPath(target: string): string {
    return path.join(this.stateDir, 'db', `${target}.json`);
  }

  /** Absolute path of the stderr log of `target`'s last build. */
  logPath(target: string): string {
    return path.join(this.stateDir, 'log', `${target}.log`);
  }

  /**
   * The record of `target`, or undefined if it was never built.
   * Throws ERR_STATE_CORRUPT (naming the file to delete) if the record is unreadable.
   */
  load(target: string): TargetRecord | undefined {
    this.checkVersion();
    const file = this.recordPath(target);
    // A record file is never changed in place (each save renames a new file over it), so
    // its stat identifies its content: a snapshot entry with the same stat is that
    // content, already parsed and checked. One stat instead of open, read, close, parse.
    let stats: fs.Stats | undefined;
    try {
      stats = fs.statSync(file, { throwIfNoEntry: false });
    } catch (error) {
      throw corrupt(path.relative(this.root, file), String(error), error);
    }
    if (stats === undefined) return undefined;
    const folder = path.dirname(file);
    // Taken before any record of that folder is read: a save after it changes the folder's mtime.
    if (!this.recordFolders.has(folder)) this.recordFolders.set(folder, fs.statSync(folder));
    const cached = this.readSnapshot().get(target);
    if (cached !== undefined && isSameStatKey(cached.stat, statKey(stats))) {
      this.seen.set(target, cached);
      return cached.record;
    }
    let text: string;
    let readStats: fs.Stats;
    try {
      const fd = fs.openSync(file, 'r');
      try {
        readStats = fs.fstatSync(fd);
        text = fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw corrupt(path.relative(this.root, file), String(error), error);
    }
    let record: TargetRecord;
    try {
      record = JSON.parse(text) as TargetRecord;
    } catch (error) {
      throw corrupt(path.relative(this.root, file), 'not valid JSON', error);
    }
    if (record === null || typeof record !== 'object' || record.target !== target || !Array.isArray(record.deps)) {
      throw corrupt(path.relative(this.root, file), 'not a target record');
    }
    const problem = record.version === STATE_VERSION ? findShapeProblem(record) : undefined;
    if (problem !== undefined) throw corrupt(path.relative(this.root, file), problem);
    if (record.version !== STATE_VERSION) {
      if (typeof record.version === 'number' && record.version > STATE_VERSION) {
        throw new RedoError('ERR_STATE_TOO_NEW', `redo: "${path.relative(this.root, file)}": record was written by a newer redo-ts`, {
          details: [`found: version ${record.version}`, `wanted: version ${STATE_VERSION}`],
          hint: 'upgrade redo-ts, or delete .redo/ and the files it built, then run again',
        });
      }
      throw corrupt(path.relative(this.root, file), `unknown record version ${String(record.version)}`);
    }
    this.remember(record, readStats);
    return record;
  }

  /** True when `target` has a record (redo-ts built it). One folder listing per record folder and process. */
  has(target: string): boolean {
    this.checkVersion();
    const slash = target.lastIndexOf('/');
    const folder = slash === -1 ? '' : target.slice(0, slash);
    return this.recordNames(folder).has(`${target.slice(slash + 1)}.json`);
  }

  /** Names in the record folder `folder` (root-relative target folder), listed once and kept up to date by this process's saves. */
  private recordNames(folder: string): Set<string> {
    let names = this.listings.get(folder);
    if (names === undefined) {
      try {
        names = new Set(fs.readdirSync(path.join(this.stateDir, 'db', folder)));
      } catch {
        names = new Set();
      }
      this.listings.set(folder, names);
    }
    return names;
  }

  private readonly listings = new Map<string, Set<string>>();
  private readonly recordFolders = new Map<string, fs.Stats>();

  /**
   * Each record folder this process read records from, with its stat from before the
   * first read. Records only change by a rename into their folder (or a removal), which
   * changes the folder's mtime: an unchanged folder stat means unchanged records.
   */
  recordFolderStats(): ReadonlyMap<string, fs.Stats> {
    return this.recordFolders;
  }

  /** Records read from their files or saved by this process, with the stat of their file. */
  private readonly seen = new Map<string, SnapshotEntry>();
  private snapshot: Map<string, SnapshotEntry> | undefined;
  private isSnapshotChanged = false;

  private remember(record: TargetRecord, stats: fs.Stats): void {
    this.seen.set(record.target, { stat: statKey(stats), record });
    this.isSnapshotChanged = true;
    const slash = record.target.lastIndexOf('/');
    this.listings.get(slash === -1 ? '' : record.target.slice(0, slash))?.add(`${record.target.slice(slash + 1)}.json`);
  }

  /** The snapshot read from `.redo/snapshot.json` (empty when absent or unreadable: it is only a cache). */
  private readSnapshot(): Map<string, SnapshotEntry> {
    if (this.snapshot !== undefined) return this.snapshot;
    this.snapshot = new Map();
    try {
      const data = JSON.parse(fs.readFileSync(path.join(this.stateDir, 'snapshot.json'), 'utf8')) as { version?: unknown; records?: Record<string, SnapshotEntry> };
      if (data.version === SNAPSHOT_VERSION && data.records !== null && typeof data.records === 'object') {
        for (const [target, entry] of Object.entries(data.records)) {
          const isValid = Array.isArray(entry?.stat) && entry.stat.length === 4 && entry.record?.target === target && Array.isArray(entry.record.deps)
            && entry.record.version === STATE_VERSION && findShapeProblem(entry.record) === undefined;
          if (isValid) this.snapshot.set(target, entry);
        }
      }
    } catch {
      // No snapshot yet, or a damaged one: every record is read from its file.
    }
    return this.snapshot;
  }

  /**
   * Writes `.redo/snapshot.json` when this process read or saved records the snapshot
   * lacked: every record known, each with the stat of the file it came from. Records
   * whose file changed in the last two seconds are left out: a later save within the
   * same clock tick (a second, on some file systems) could reuse the stat. Best effort
   * (it is a cache): never throws.
   */
  writeSnapshot(): void {
    if (!this.isSnapshotChanged) return;
    this.isSnapshotChanged = false;
    const records: Record<string, SnapshotEntry> = {};
    const recentMs = Date.now() - 2000;
    for (const [target, entry] of [...this.readSnapshot(), ...this.seen]) {
      if (entry.stat[3] < recentMs) records[target] = entry;
      else delete records[target];
    }
    try {
      writeAtomically(path.join(this.stateDir, 'snapshot.json'), JSON.stringify({ version: SNAPSHOT_VERSION, records }));
    } catch {
      // A read-only or full disk: the next run reads the record files.
    }
  }

  /** Replaces the record of `record.target` atomically (tmp file + rename). */
  save(record: TargetRecord): void {
    this.checkVersion();
    const file = this.recordPath(record.target);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeAtomically(file, `${JSON.stringify(record)}\n`);
    this.remember(record, fs.statSync(file));
  }

  /**
   * Like save(), but the slow file-system work runs off the main thread. Resolves once
   * the record is in place; the caller keeps the target's lock until then, so a kill
   * before that point is seen by the next run as an interrupted build.
   */
  async saveInBackground(record: TargetRecord): Promise<void> {
    this.checkVersion();
    const file = this.recordPath(record.target);
    const folder = path.dirname(file);
    if (!this.madeFolders.has(folder)) {
      fs.mkdirSync(folder, { recursive: true });
      this.madeFolders.add(folder);
    }
    temporaryCounter += 1;
    const temporary = `${file}.${process.pid}.${temporaryCounter}.tmp`;
    // Creating the file (allocating an inode) is the slow step on some file systems, so
    // only that goes to the thread pool; writing a small record and renaming it is not
    // worth a round trip each.
    const fd = await openInBackground(temporary, folder);
    try {
      try {
        fs.writeSync(fd, `${JSON.stringify(record)}\n`);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(temporary, file);
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw error;
    }
    // The caller holds the target's lock: the file is still the one just renamed.
    this.remember(record, fs.statSync(file));
  }

  /** Removes the record of `target` (it became a source). */
  remove(target: string): void {
    fs.rmSync(this.recordPath(target), { force: true });
    this.seen.delete(target);
    const slash = target.lastIndexOf('/');
    this.listings.get(slash === -1 ? '' : target.slice(0, slash))?.delete(`${target.slice(slash + 1)}.json`);
  }

  /** Every target that has a record, root-relative, sorted by code unit order. */
  listTargets(): string[] {
    this.checkVersion();
    const dbDir = path.join(this.stateDir, 'db');
    const found: string[] = [];
    const walk = (dir: string, prefix: string): void => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
        if (entry.isDirectory()) walk(path.join(dir, entry.name), name);
        else if (entry.name.endsWith('.json')) found.push(name.slice(0, -'.json'.length));
      }
    };
    walk(dbDir, '');
    return found.sort();
  }
}

let temporaryCounter = 0;

const SNAPSHOT_VERSION = 1;

/** A record as the snapshot keeps it: the stat of its file (inode, size, mtime, ctime in ms) and its content. */
interface SnapshotEntry {
  stat: [number, number, number, number];
  record: TargetRecord;
}

function statKey(stats: fs.Stats): [number, number, number, number] {
  return [stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs];
}

function isSameStatKey(a: readonly number[], b: readonly number[]): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

/** Creates `file` for writing off the main thread; makes `folder` again if it was removed meanwhile. */
async function openInBackground(file: string, folder: string): Promise<number> {
  const open = (): Promise<number> => new Promise((resolve, reject) => {
    fs.open(file, 'w', (error, fd) => (error === null ? resolve(fd) : reject(error)));
  });
  try {
    return await open();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    fs.mkdirSync(folder, { recursive: true });
    return open();
  }
}

/** Writes `data` to `file` via a unique temporary file in the same folder and a rename. */
export function writeAtomically(file: string, data: string | Uint8Array): void {
  temporaryCounter += 1;
  const temporary = `${file}.${process.pid}.${temporaryCounter}.tmp`;
  try {
    fs.writeFileSync(temporary, data);
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}

/** The first way `record` (of the current version) departs from TargetRecord, or undefined. Pure. */
function findShapeProblem(record: TargetRecord): string | undefined {
  const isStamp = (value: unknown): boolean => {
    const stamp = value as FileStamp | null;
    return stamp !== null && typeof stamp === 'object' && typeof stamp.sha256Hex === 'string' && typeof stamp.sizeBytes === 'number'
      && typeof stamp.mtimeMs === 'number';
  };
  if (typeof record.rule !== 'string') return 'field "rule" is not a path';
  if (record.output !== null && !isStamp(record.output)) return 'field "output" is not a file stamp';
  if (typeof record.identity !== 'string') return 'field "identity" is not a string';
  if (typeof record.builds !== 'number' || typeof record.isAlways !== 'boolean') return 'field "builds" or "isAlways" has the wrong type';
  if (record.stampSha256Hex !== null && typeof record.stampSha256Hex !== 'string') return 'field "stampSha256Hex" is not a string';
  for (const [index, dep] of record.deps.entries()) {
    const isValid = dep !== null && typeof dep === 'object' && typeof dep.path === 'string' && DEPENDENCY_MODES.includes(dep.mode)
      && (dep.identity === undefined || typeof dep.identity === 'string') && (dep.stamp === undefined || isStamp(dep.stamp));
    if (!isValid) return `dependency ${index + 1} is not a dependency record`;
  }
  return undefined;
}

const DEPENDENCY_MODES: readonly DependencyMode[] = ['ifchange', 'ifcreate', 'env'];

/** ERR_WRITE_FAILED for `subject` (root-relative): `what` could not be done; the errno says why. */
export function writeFailed(subject: string, what: string, cause: unknown): RedoError {
  const code = (cause as NodeJS.ErrnoException).code;
  const hints: Record<string, string> = {
    ENOSPC: 'the disk is full; free some space and run again',
    EDQUOT: 'the disk quota is used up; free some space and run again',
    EROFS: 'the project is on a read-only file system; build a writable copy',
    EACCES: 'the project is not writable by this user; build a writable copy, or fix its permissions',
    EPERM: 'the project is not writable by this user; build a writable copy, or fix its permissions',
  };
  return new RedoError('ERR_WRITE_FAILED', `redo: "${subject}": ${what}`, {
    details: [`error: ${code === undefined ? String(cause) : (cause as Error).message.split(', ')[0] ?? code}`],
    hint: (code !== undefined ? hints[code] : undefined) ?? 'check the file system the project is on',
    cause,
  });
}

/** True when `error` is a file-system error a user can cause (full disk, read-only, permissions). */
export function isWriteError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS' || code === 'EACCES' || code === 'EPERM';
}

function isEmptyFolder(folder: string): boolean {
  try {
    return fs.readdirSync(folder).length === 0;
  } catch {
    return false;
  }
}

function lostRecords(isSomethingElse: boolean): RedoError {
  return new RedoError('ERR_STATE_CORRUPT', `redo: ".redo/db": the target records folder ${isSomethingElse ? 'is not a folder' : 'is missing'}`, {
    details: [
      isSomethingElse ? 'found: .redo/db is a file (or another non-folder), where the records folder belongs' : 'found: .redo/VERSION without .redo/db',
      'without its records, every file redo-ts built would pass for a source',
    ],
    hint: 'delete .redo/ and every file redo-ts built (for instance with `git clean -X` if they are ignored), then run again',
  });
}

function corrupt(file: string, problem: string, cause?: unknown): RedoError {
  return new RedoError('ERR_STATE_CORRUPT', `redo: "${file}": state file is unreadable`, {
    details: [`found: ${problem}`, `wanted: redo-ts state version ${STATE_VERSION}`],
    hint: file === '.redo/VERSION'
      ? 'delete .redo/ and the files it built, then run again'
      : `delete ${file} and the target it describes, then run again`,
    cause,
  });
}

/** mkdir (not recursive) that accepts a folder made meanwhile by another process. */
function mkdirUnlessPresent(dir: string): void {
  if (fs.existsSync(dir)) return;
  try {
    fs.mkdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}
