/** Stat tuples (inode, size, mtime, ctime) read without building a Stats object, for checks that stat thousands of files in a fresh process. */

import * as fs from 'node:fs';

/** What the no-op check compares of a file: inode, size in bytes, mtime and ctime in ms (as fs.Stats gives them). */
export type StatTuple = [ino: number, sizeBytes: number, mtimeMs: number, ctimeMs: number];

/** Node's internal stat: (path, bigint, request, throwIfNoEntry) → the raw stat array, or undefined when absent. */
type RawStat = (file: string, isBigint: false, request: undefined, shouldThrowIfNoEntry: false) => Float64Array | undefined;

// Offsets into the raw array Node fills for fs.Stats (lib/internal/fs/utils.js, Node 20-24).
const INO = 7;
const SIZE = 8;
const MTIME_SEC = 12;
const MTIME_NSEC = 13;
const CTIME_SEC = 14;
const CTIME_NSEC = 15;

let rawStat: RawStat | null | undefined;

/**
 * The stat tuple of `file`, or undefined when it does not exist (ENOENT). Throws as
 * fs.statSync does for other errors (ENOTDIR, EACCES, ELOOP...).
 *
 * fs.statSync makes an fs.Stats with four Date objects per call, which costs a fresh
 * process (no JIT yet) about 6 µs a file: 12 ms of a no-op over 2,000 files. When
 * Node's internal stat binding is there and answers exactly as fs.statSync does (checked
 * once per process on `probe`, an existing file), it is used instead; otherwise, and
 * whenever deprecation warnings were asked for (process.binding is deprecated, DEP0111),
 * this is fs.statSync.
 */
export function statTuple(file: string, probe: string): StatTuple | undefined {
  if (rawStat === undefined) rawStat = findRawStat(probe);
  if (rawStat === null) {
    const stats = fs.statSync(file, { throwIfNoEntry: false });
    return stats === undefined ? undefined : [stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs];
  }
  const raw = rawStat(file, false, undefined, false);
  return raw === undefined ? undefined : tupleOf(raw);
}

/** Node computes mtimeMs and ctimeMs this way (msFromTimeSpec); the same arithmetic gives the same doubles. */
function tupleOf(raw: Float64Array): StatTuple {
  return [raw[INO]!, raw[SIZE]!, raw[MTIME_SEC]! * 1e3 + raw[MTIME_NSEC]! / 1e6, raw[CTIME_SEC]! * 1e3 + raw[CTIME_NSEC]! / 1e6];
}

/** Node's internal stat when it is present and agrees with fs.statSync on `probe` and on an absent file, else null. */
function findRawStat(probe: string): RawStat | null {
  const options = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
  if (/--(pending-deprecation|throw-deprecation|trace-deprecation)/.test(options) || process.env.NODE_PENDING_DEPRECATION === '1') return null;
  try {
    const binding = (process as unknown as { binding(name: string): { stat?: unknown } }).binding('fs');
    if (typeof binding.stat !== 'function') return null;
    const candidate = binding.stat.bind(binding) as RawStat;
    const raw = candidate(probe, false, undefined, false);
    const stats = fs.statSync(probe, { throwIfNoEntry: false });
    if (!(raw instanceof Float64Array) || raw.length < 16 || stats === undefined) return null;
    const tuple = tupleOf(raw);
    if (tuple[0] !== stats.ino || tuple[1] !== stats.size || tuple[2] !== stats.mtimeMs || tuple[3] !== stats.ctimeMs) return null;
    if (candidate(`${probe}.absent-${process.pid}`, false, undefined, false) !== undefined) return null;
    return candidate;
  } catch {
    return null;
  }
}
