/** The .redo/ state: versioned per-target records in one store (a base file and per-engine append-only logs), and the state layout. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError } from '../errors.js';
import { isAlive, isRunning, selfProcess, type ProcessIdentity } from './lock.js';
import type { FileStamp, Identity } from './stamp.js';

/**
 * Layout of `.redo/` at the project root (version 2):
 *
 *   .redo/
 *     VERSION                    "redo-ts state 2\n"
 *     db/records.json            the base: {"version":2,"records":[[gen, target, record|null], ...]}
 *                                sorted by target; replaced only by rename (compaction)
 *     db/log.<pid>-<ticks>       one engine's saves since the last compaction, appended one
 *                                line [gen, target, record|null] per save, one write(2) each
 *     log/<target path>.log      stderr of the target's last build (absent when it was empty)
 *     locks/<sha256 prefix>.lock pid and start time of the process building that target (lock.ts)
 *     run/<pid>-<random>/        run directory of a running engine when /dev/shm is unusable
 *     journal/<pid>-<ticks>      targets whose rules a running engine started (journal.ts)
 *
 * A target's current record is its entry with the highest `gen` across the base and every
 * log (null: removed). A save is made under the target's lock after reading every log
 * again, so its gen is one above the last one any process wrote: concurrent engines
 * never lose a record, and their logs need no order. The order per rule run is: target
 * noted in the journal, rule writes a temporary output, output renamed over the target,
 * record appended, lock removed. A kill between the rename and the append leaves a new
 * output that matches no record; the next run finds the dead engine's journal and
 * deletes that output so the target is rebuilt (reconcile.ts). A line cut short (a full
 * disk) is truncated away by its writer, or, left by a killed writer, ignored.
 * An engine that saved records compacts when it closes, under a lock: its own log and
 * logs of dead engines are merged into a new base (tmp + rename), then removed; a
 * kill in between leaves logs whose entries the base already has (same gen, same record).
 * Readers list the logs (opening them) before reading the base, so a compaction between
 * the two loses them nothing. Version 1 (one file per record, db/<target>.json) is
 * migrated on first use.
 */
export const STATE_VERSION = 2;

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

/** The name of the compaction lock (taken through TargetLocks; never a target, which cannot lie in .redo/). */
export const COMPACTION_LOCK = '.redo/db';

const BASE_NAME = 'records.json';
/**
 * How far a file system's timestamps may lag the clock (coarse kernel clocks tick every
 * few ms): a folder changed less than this before it was listed may change again unseen.
 */
const FOLDER_CLOCK_MARGIN_MS = 100;
const LOG_PATTERN = /^log\.(\d+)-(\d+)$/;
/** A base being written by writeAtomically (`records.json.<pid>.<n>.tmp`). */
const TEMPORARY_BASE_PATTERN = /^records\.json\.(\d+)\.\d+\.tmp$/;


/** One entry of the store: a record (null: removed) with its generation and where it was read. */
interface StoreEntry {
  gen: number;
  target: string;
  record: TargetRecord | null;
  /** Root-relative file the entry came from (for error messages). */
  file: string;
  isChecked: boolean;
}

/** A log of another engine being followed: its descriptor, bytes consumed, and stat. */
interface FollowedLog {
  fd: number;
  offsetBytes: number;
  stats: fs.Stats;
}

/** Reads and writes the records under one project's `.redo/`. */
export class StateStore {
  readonly root: string;
  readonly stateDir: string;
  private readonly dbDir: string;
  private isChecked = false;
  private readonly entries = new Map<string, StoreEntry>();
  private isLoaded = false;
  /** Stat of the base file as last read (undefined: absent, or not read yet). */
  private baseStats: fs.Stats | undefined;
  private readonly logs = new Map<string, FollowedLog>();
  private dbStats: fs.Stats | undefined;
  private ownFd: number | undefined;
  private ownName: string | undefined;
  private ownSizeBytes = 0;
  /** The store folder's stat taken before its last listing, and when that was (Date.now()). */
  private listedFolder: { stats: fs.Stats; atMs: number } | undefined;

  /** `root` is the absolute project root; nothing is read or created until used. */
  constructor(root: string) {
    this.root = root;
    this.stateDir = path.join(root, '.redo');
    this.dbDir = path.join(this.stateDir, 'db');
  }

  /**
   * Checks `.redo/VERSION`, creating `.redo/` if absent, and migrates version 1 records.
   * Throws ERR_STATE_TOO_NEW for a newer version and ERR_STATE_CORRUPT for an unreadable
   * one; both say what to delete.
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
    const dbDir = this.dbDir;
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
      let isFolder: boolean;
      try {
        isFolder = fs.statSync(dbDir).isDirectory();
      } catch {
        isFolder = false;
      }
      // Without its records every output would pass for a source and never be rebuilt.
      if (!isFolder) throw lostRecords(fs.existsSync(dbDir));
      if (found === 1) this.migrateVersion1(versionFile);
      else if (found < STATE_VERSION) throw corrupt('.redo/VERSION', `version ${found} is no longer readable`);
    }
    this.isChecked = true;
  }

  /**
   * Turns version 1 state (one `db/<target>.json` per record) into a base file, then
   * writes VERSION 2 and removes the old files. A kill before VERSION leaves version 1
   * (done again next time); after it, stray old files that nothing reads.
   */
  private migrateVersion1(versionFile: string): void {
    const records: Array<[number, string, TargetRecord]> = [];
    const oldFiles: string[] = [];
    const walk = (dir: string, prefix: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
        if (entry.isDirectory()) walk(path.join(dir, entry.name), name);
        else if (entry.name.endsWith('.json') && name !== BASE_NAME) {
          const file = path.join(dir, entry.name);
          oldFiles.push(file);
          const target = name.slice(0, -'.json'.length);
          let record: TargetRecord;
          try {
            record = JSON.parse(fs.readFileSync(file, 'utf8')) as TargetRecord;
          } catch (error) {
            throw corrupt(path.relative(this.root, file), 'not valid JSON', error);
          }
          record = { ...record, version: STATE_VERSION };
          const problem = record.target === target && Array.isArray(record.deps) ? findShapeProblem(record) : 'not a target record';
          if (problem !== undefined) throw corrupt(path.relative(this.root, file), problem);
          records.push([1, target, record]);
        } else if (entry.name.endsWith('.tmp')) oldFiles.push(path.join(dir, entry.name));
      }
    };
    try {
      walk(this.dbDir, '');
      records.sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
      writeAtomically(path.join(this.dbDir, BASE_NAME), serializeBase(records));
      writeAtomically(versionFile, VERSION_TEXT);
    } catch (error) {
      if (error instanceof RedoError) throw error;
      throw writeFailed('.redo/db', 'cannot convert the records of an older redo-ts', error);
    }
    for (const file of oldFiles) fs.rmSync(file, { force: true });
    for (const entry of fs.readdirSync(this.dbDir, { withFileTypes: true })) {
      if (entry.isDirectory()) fs.rmSync(path.join(this.dbDir, entry.name), { recursive: true, force: true });
    }
    fs.rmSync(path.join(this.stateDir, 'snapshot.json'), { force: true });
  }

  /** Absolute path of the record store (`.redo/db`), for messages. */
  storePath(): string {
    return this.dbDir;
  }

  /** Absolute path of the stderr log of `target`'s last build. */
  logPath(target: string): string {
    return path.join(this.stateDir, 'log', `${target}.log`);
  }

  /**
   * Reads what other processes wrote since the last call: every log (new ones opened and
   * read from the start, known ones from where reading stopped), then the base when it
   * was replaced. Logs first: a compaction merges logs into the base before removing them.
   */
  private refresh(): void {
    // A log made or removed, or the base replaced (a rename), changes the folder's stat.
    // When it is the one seen at the last listing, and was already old then (a change
    // after that listing gets a later time, even from a coarse file system clock), only
    // the known logs can have grown: one stat instead of a listing per record read.
    const folderStats = fs.statSync(this.dbDir, { throwIfNoEntry: false });
    const listed = this.listedFolder;
    if (folderStats !== undefined && listed !== undefined && this.isLoaded && folderStats.ino === listed.stats.ino
      && folderStats.mtimeMs === listed.stats.mtimeMs && folderStats.ctimeMs === listed.stats.ctimeMs
      && Math.max(folderStats.mtimeMs, folderStats.ctimeMs) < listed.atMs - FOLDER_CLOCK_MARGIN_MS) {
      for (const [name, log] of this.logs) this.followLog(name, log);
      return;
    }
    this.listedFolder = folderStats === undefined ? undefined : { stats: folderStats, atMs: Date.now() };
    let names: string[];
    try {
      this.dbStats ??= fs.statSync(this.dbDir);
      names = fs.readdirSync(this.dbDir);
    } catch {
      names = [];
    }
    const present = new Set<string>();
    for (const name of names) {
      if (name === this.ownName || !LOG_PATTERN.test(name)) continue;
      present.add(name);
      let log = this.logs.get(name);
      if (log === undefined) {
        let fd: number;
        try {
          fd = fs.openSync(path.join(this.dbDir, name), 'r');
        } catch {
          continue; // Compacted meanwhile: the base read below has it.
        }
        log = { fd, offsetBytes: 0, stats: fs.fstatSync(fd) };
        this.logs.set(name, log);
      }
      this.followLog(name, log);
    }
    for (const [name, log] of this.logs) {
      if (present.has(name)) continue;
      // Removed by a compaction after we read it to its end: the base has it now.
      fs.closeSync(log.fd);
      this.logs.delete(name);
    }
    this.readBase();
    this.isLoaded = true;
  }

  /** Reads the complete lines appended to `log` since the last read. */
  private followLog(name: string, log: FollowedLog): void {
    const stats = fs.fstatSync(log.fd);
    if (stats.size <= log.offsetBytes) return;
    const buffer = Buffer.alloc(stats.size - log.offsetBytes);
    const readBytes = fs.readSync(log.fd, buffer, 0, buffer.length, log.offsetBytes);
    const lastNewline = buffer.lastIndexOf(10, readBytes - 1);
    // A line without its newline is being written (or was cut short by a kill): later.
    if (lastNewline === -1) return;
    const text = buffer.toString('utf8', 0, lastNewline);
    log.offsetBytes += lastNewline + 1;
    log.stats = stats;
    const file = `.redo/db/${name}`;
    for (const line of text.split('\n')) {
      const entry = parseEntry(line, file);
      if (entry !== undefined) this.merge(entry);
    }
  }

  /** Reads the base file when it differs from the one read last. */
  private readBase(): void {
    const file = path.join(this.dbDir, BASE_NAME);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw corrupt(`.redo/db/${BASE_NAME}`, String(error), error);
    }
    try {
      const stats = fs.fstatSync(fd);
      // The base is only ever replaced by a rename: the same inode is the same content.
      if (this.baseStats !== undefined && this.baseStats.ino === stats.ino && this.baseStats.ctimeMs === stats.ctimeMs) return;
      const text = fs.readFileSync(fd, 'utf8');
      let data: { version?: unknown; records?: unknown };
      try {
        data = JSON.parse(text) as typeof data;
      } catch (error) {
        throw corrupt(`.redo/db/${BASE_NAME}`, 'not valid JSON', error);
      }
      if (data === null || typeof data !== 'object' || !Array.isArray(data.records)) throw corrupt(`.redo/db/${BASE_NAME}`, 'not a record store');
      if (typeof data.version === 'number' && data.version > STATE_VERSION) throw tooNew(`.redo/db/${BASE_NAME}`, data.version);
      if (data.version !== STATE_VERSION) throw corrupt(`.redo/db/${BASE_NAME}`, `unknown store version ${String(data.version)}`);
      for (const item of data.records as unknown[]) {
        const entry = toEntry(item, `.redo/db/${BASE_NAME}`);
        if (entry === undefined) throw corrupt(`.redo/db/${BASE_NAME}`, 'an entry is not [gen, target, record]');
        this.merge(entry);
      }
      this.baseStats = stats;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Keeps `entry` when it is newer than what is known of its target. */
  private merge(entry: StoreEntry): void {
    const known = this.entries.get(entry.target);
    if (known === undefined || entry.gen > known.gen) this.entries.set(entry.target, entry);
  }

  /**
   * The record of `target`, or undefined if it was never built (or was removed). Reads
   * what other processes saved since the last call first. Throws ERR_STATE_CORRUPT
   * (naming the store file) if the record is unreadable, ERR_STATE_TOO_NEW if newer.
   */
  load(target: string): TargetRecord | undefined {
    this.checkVersion();
    this.refresh();
    const entry = this.entries.get(target);
    if (entry === undefined || entry.record === null) return undefined;
    if (!entry.isChecked) {
      const record = entry.record;
      if (record === null || typeof record !== 'object' || record.target !== target || !Array.isArray(record.deps)) {
        throw corrupt(entry.file, `the record of "${target}" is not a target record`);
      }
      if (record.version !== STATE_VERSION) {
        if (typeof record.version === 'number' && record.version > STATE_VERSION) throw tooNew(entry.file, record.version);
        throw corrupt(entry.file, `the record of "${target}" has an unknown version ${String(record.version)}`);
      }
      const problem = findShapeProblem(record);
      if (problem !== undefined) throw corrupt(entry.file, `the record of "${target}": ${problem}`);
      entry.isChecked = true;
    }
    return entry.record;
  }

  /** True when `target` has a record (redo-ts built it), as of this process's last read of the store. */
  has(target: string): boolean {
    this.checkVersion();
    if (!this.isLoaded) this.refresh();
    const entry = this.entries.get(target);
    return entry !== undefined && entry.record !== null;
  }

  /**
   * The files of the store this process read and the store folder, with their stats
   * (a log's size is what was read of it): equal stats later mean equal records, since
   * the base is only replaced by rename and logs only grow. For the no-op memo.
   */
  readFacts(): { folder: fs.Stats | undefined; files: Array<[string, { ino: number; sizeBytes: number; mtimeMs: number; ctimeMs: number } | undefined]> } {
    const files: Array<[string, { ino: number; sizeBytes: number; mtimeMs: number; ctimeMs: number } | undefined]> = [];
    const base = this.baseStats;
    files.push([path.join(this.dbDir, BASE_NAME), base === undefined ? undefined : { ino: base.ino, sizeBytes: base.size, mtimeMs: base.mtimeMs, ctimeMs: base.ctimeMs }]);
    for (const [name, log] of this.logs) {
      files.push([path.join(this.dbDir, name), { ino: log.stats.ino, sizeBytes: log.offsetBytes, mtimeMs: log.stats.mtimeMs, ctimeMs: log.stats.ctimeMs }]);
    }
    return { folder: this.dbStats, files };
  }

  /** Replaces the record of `record.target`: one line appended to this engine's log. Call it holding the target's lock. */
  save(record: TargetRecord): void {
    this.write(record.target, record);
  }

  /**
   * Like save(); resolves once the record is in the log. The caller keeps the target's
   * lock until then, so a kill before that point is seen by the next run as an
   * interrupted build.
   */
  async saveInBackground(record: TargetRecord): Promise<void> {
    this.write(record.target, record);
    return Promise.resolve();
  }

  /** Removes the record of `target` (it became a source). */
  remove(target: string): void {
    if (this.has(target)) this.write(target, null);
  }

  /** Appends `[gen, target, record]` to this engine's log, gen one above the newest known. */
  private write(target: string, record: TargetRecord | null): void {
    this.checkVersion();
    // Under the target's lock: whatever another process saved for it is in a log by now.
    this.refresh();
    const gen = (this.entries.get(target)?.gen ?? 0) + 1;
    const line = Buffer.from(`${JSON.stringify([gen, target, record])}\n`);
    if (this.ownFd === undefined) {
      const self = selfProcess();
      this.ownName = `log.${self.pid}-${self.startTicks ?? 0}`;
      const file = path.join(this.dbDir, this.ownName);
      // Appending (O_APPEND): another StateStore of this process may share the log.
      this.ownFd = fs.openSync(file, 'a');
      this.ownSizeBytes = fs.fstatSync(this.ownFd).size;
    }
    let writtenBytes = 0;
    try {
      writtenBytes = fs.writeSync(this.ownFd, line, 0, line.length);
    } finally {
      if (writtenBytes !== line.length) {
        // A full disk cut the line short: take it back so the next line starts clean.
        try {
          fs.ftruncateSync(this.ownFd, this.ownSizeBytes);
        } catch {
          // A killed-writer line: readers skip lines that do not parse.
        }
      }
    }
    if (writtenBytes !== line.length) {
      throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path.join(this.dbDir, this.ownName ?? '')}'`), { code: 'ENOSPC' });
    }
    this.ownSizeBytes += line.length;
    this.entries.set(target, { gen, target, record, file: `.redo/db/${this.ownName ?? ''}`, isChecked: true });
  }

  /**
   * Merges this engine's log and the logs of engines that no longer run into a new base
   * (tmp + rename), then removes them; other live engines' logs are left to them. Done
   * only under the compaction lock (`tryLock`; skipped when another process holds it)
   * and only when this engine saved something. Best effort: on any failure the logs
   * stay, and are read (and merged later) like the base.
   */
  compact(tryLock: () => boolean, unlock: () => void): void {
    for (const log of this.logs.values()) fs.closeSync(log.fd);
    this.logs.clear();
    if (this.ownFd === undefined) return;
    fs.closeSync(this.ownFd);
    this.ownFd = undefined;
    let isLocked = false;
    try {
      isLocked = tryLock();
      if (!isLocked) return;
      const merged = new Map<string, StoreEntry>();
      const keep = (entry: StoreEntry): void => {
        const known = merged.get(entry.target);
        if (known === undefined || entry.gen > known.gen) merged.set(entry.target, entry);
      };
      const mergeable: string[] = [];
      let hasLiveLogs = false;
      for (const name of fs.readdirSync(this.dbDir).sort()) {
        const leftover = TEMPORARY_BASE_PATTERN.exec(name);
        // A compaction killed between its write and its rename (it held this lock): never renamed, never read.
        if (leftover !== null && !isAlive(Number(leftover[1]))) fs.rmSync(path.join(this.dbDir, name), { force: true });
        const match = LOG_PATTERN.exec(name);
        if (match === null) continue;
        const owner: ProcessIdentity = { pid: Number(match[1]), startTicks: Number(match[2]) };
        if (name !== this.ownName && isRunning(owner)) {
          hasLiveLogs = true;
          continue;
        }
        mergeable.push(name);
        const text = fs.readFileSync(path.join(this.dbDir, name), 'utf8');
        for (const line of text.split('\n')) {
          const entry = parseEntry(line, name);
          if (entry !== undefined) keep(entry);
        }
      }
      const baseText = readIfPresent(path.join(this.dbDir, BASE_NAME));
      if (baseText !== undefined) {
        const data = JSON.parse(baseText) as { version?: unknown; records?: unknown[] };
        if (data.version !== STATE_VERSION || !Array.isArray(data.records)) return;
        for (const item of data.records) {
          const entry = toEntry(item, BASE_NAME);
          if (entry === undefined) return;
          keep(entry);
        }
      }
      const records: Array<[number, string, TargetRecord | null]> = [];
      for (const entry of merged.values()) {
        // A removal must outlive older entries still in a live engine's log.
        if (entry.record !== null || hasLiveLogs) records.push([entry.gen, entry.target, entry.record]);
      }
      records.sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
      writeAtomically(path.join(this.dbDir, BASE_NAME), serializeBase(records));
      for (const name of mergeable) fs.rmSync(path.join(this.dbDir, name), { force: true });
    } catch {
      // A full or read-only disk, a damaged base: the logs stay and are read as they are.
    } finally {
      if (isLocked) unlock();
    }
  }

  /** Every target that has a record, root-relative, sorted by code unit order. */
  listTargets(): string[] {
    this.checkVersion();
    this.refresh();
    return [...this.entries.values()].filter((entry) => entry.record !== null).map((entry) => entry.target).sort();
  }
}

let temporaryCounter = 0;

/** The base file's text: entries sorted by target, one per line (deterministic for equal content). */
function serializeBase(records: ReadonlyArray<[number, string, TargetRecord | null]>): string {
  return `{"version":${STATE_VERSION},"records":[\n${records.map((entry) => JSON.stringify(entry)).join(',\n')}\n]}\n`;
}

/** One log line as an entry; undefined for a blank, cut-short or malformed line (a killed writer's). */
function parseEntry(line: string, file: string): StoreEntry | undefined {
  if (line === '') return undefined;
  try {
    return toEntry(JSON.parse(line) as unknown, file);
  } catch {
    return undefined;
  }
}

function toEntry(item: unknown, file: string): StoreEntry | undefined {
  if (!Array.isArray(item) || item.length !== 3) return undefined;
  const [gen, target, record] = item as [unknown, unknown, unknown];
  if (typeof gen !== 'number' || typeof target !== 'string' || (record !== null && typeof record !== 'object')) return undefined;
  return { gen, target, record: record as TargetRecord | null, file: file.startsWith('.redo/') ? file : `.redo/db/${file}`, isChecked: false };
}

function readIfPresent(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function tooNew(file: string, version: number): RedoError {
  return new RedoError('ERR_STATE_TOO_NEW', `redo: "${file}": record was written by a newer redo-ts`, {
    details: [`found: version ${version}`, `wanted: version ${STATE_VERSION}`],
    hint: 'upgrade redo-ts, or delete .redo/ and the files it built, then run again',
  });
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
    // One file of version 1 describes one target; the store files and VERSION hold them all.
    hint: file.startsWith('.redo/db/') && file.endsWith('.json') && file !== `.redo/db/${BASE_NAME}`
      ? `delete ${file} and the target it describes, then run again`
      : 'delete .redo/ and every file redo-ts built (for instance with `git clean -X` if they are ignored), then run again',
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
