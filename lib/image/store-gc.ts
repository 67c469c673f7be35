/** Garbage collection of the image store (.redo/store): keeps what the image records reach and what builds used lately, removes the rest. */

import { closeSync, lstatSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { RedoError } from '../errors.js';
import { readAssembledImage, type AssembledImage } from './assemble.js';
import type { BlobStore } from './blob-store.js';
import { isProcessAlive } from '../processes.js';

/** Options of collectStoreGarbage. */
export interface StoreGcOptions {
  /**
   * Anything written or used (its mtime: BlobStore freshens a blob it reuses) less than
   * this many seconds before the collection started is kept, reached or not, so a build
   * running at the same time, whose record is not written yet, loses nothing. Default 3600.
   */
  graceSeconds?: number;
  /** Count what would go, remove nothing. */
  isDryRun?: boolean;
  /**
   * The sha256 (hex) of every target output that is still the file the engine recorded
   * (the CLI gives listOutputSha256s of the project): the states file of an archive that is
   * none of them, and not fresh, is removed. Without it, every states file is kept.
   */
  currentOutputs?: ReadonlySet<string>;
  /** The clock, in ms since the epoch (tests); default Date.now(). */
  nowMs?: number;
}

/** What a collection found and removed (or would remove, in a dry run). */
export interface StoreGcReport {
  /** The image records whose blobs were kept, relative to the project root, sorted. */
  records: string[];
  keptBlobs: number;
  keptBytes: number;
  removedBlobs: number;
  removedBytes: number;
  /** Fact files (facts/sha256/<hex>.KIND.json) removed. */
  removedFacts: number;
  /** Path records (files/*.json) removed: they named a removed blob. */
  removedPathRecords: number;
  /** Abandoned temporary files (tmp/) removed. */
  removedTemporary: number;
  /**
   * States files of archives (archives/<sha256>.json, what lets a view rewrite its archive
   * in place) removed: no target's recorded output has that sha256 any more (the archive was
   * deleted, or its rule removed), and they were not written within the grace period.
   */
  removedArchiveStates: number;
}

/** Folders never searched for image records. */
const skippedFolders = new Set(['.redo', '.git', 'node_modules']);

/**
 * Every `*.image.json` record under `root` (not in .redo, .git or node_modules),
 * relative paths sorted. Symlinks are not followed.
 */
export function findImageRecords(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const path = join(dir, name);
      const stat = lstatSync(path, { throwIfNoEntry: false });
      if (stat === undefined) continue;
      if (stat.isDirectory()) {
        if (!skippedFolders.has(name)) walk(path);
      } else if (stat.isFile() && name.endsWith('.image.json')) {
        found.push(relative(root, path));
      }
    }
  };
  walk(root);
  return found;
}

/** Every digest a record reaches: layout blobs, index.json, each layer's blob and its uncompressed diffID (which keys its facts). */
export function reachableDigests(record: AssembledImage): Set<string> {
  const reached = new Set<string>([record.top.digest, record.layoutIndex.digest, ...record.blobs.map((blob) => blob.digest), ...Object.keys(record.inline)]);
  for (const image of record.images) {
    reached.add(image.config.digest);
    reached.add(image.manifest.digest);
    for (const layer of image.layers) {
      reached.add(layer.digest);
      reached.add(layer.diffId);
    }
  }
  return reached;
}

/**
 * Collects the garbage of `store`, the image store of the project at `root`:
 * 1. takes the store's collection lock (`gc.lock`, created exclusively; a lock whose
 *    process is gone is taken over), so two collections never run at once;
 * 2. reads every `*.image.json` record of the project (an unreadable one stops the
 *    collection: ERR_IMAGE_STORE, nothing removed) and marks what they reach;
 * 3. removes every blob neither reached nor touched within the grace period, the facts
 *    of digests it does not keep (unless fresh), the path records naming a removed
 *    blob, the states files of archives that are none of `currentOutputs` (when given),
 *    and temporary files older than the grace period. Registry memories
 *    (registries/) are kept: a push reads them to mount instead of uploading.
 * Each removal is one unlink, so a reader never sees half a file; a blob removed under a
 * view that needs it again is restored from its record (ensureImageStored).
 * Returns what it kept and removed.
 */
export function collectStoreGarbage(store: BlobStore, root: string, options: StoreGcOptions = {}): StoreGcReport {
  const nowMs = options.nowMs ?? Date.now();
  const freshAfterMs = nowMs - (options.graceSeconds ?? 3600) * 1000;
  const release = takeGcLock(store);
  try {
    const records = findImageRecords(root);
    const reached = new Set<string>();
    for (const path of records) for (const digest of reachableDigests(readAssembledImage(join(root, path), path))) reached.add(digest);

    const report: StoreGcReport = { records, keptBlobs: 0, keptBytes: 0, removedBlobs: 0, removedBytes: 0, removedFacts: 0, removedPathRecords: 0, removedTemporary: 0, removedArchiveStates: 0 };
    const remove = (path: string): void => {
      if (options.isDryRun !== true) rmSync(path, { force: true });
    };
    const kept = new Set<string>();
    const blobDir = join(store.dir, 'blobs', 'sha256');
    for (const hex of listNames(blobDir)) {
      const path = join(blobDir, hex);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat === undefined) continue;
      if (reached.has(`sha256:${hex}`) || stat.mtimeMs >= freshAfterMs) {
        kept.add(hex);
        report.keptBlobs += 1;
        report.keptBytes += stat.size;
      } else {
        remove(path);
        report.removedBlobs += 1;
        report.removedBytes += stat.size;
      }
    }
    // Facts are keyed by a layer's uncompressed digest: kept with it, or when fresh.
    const factsDir = join(store.dir, 'facts', 'sha256');
    for (const name of listNames(factsDir)) {
      const hex = name.slice(0, name.indexOf('.'));
      const path = join(factsDir, name);
      if (kept.has(hex) || reached.has(`sha256:${hex}`) || isFresh(path, freshAfterMs)) continue;
      remove(path);
      report.removedFacts += 1;
    }
    const filesDir = join(store.dir, 'files');
    for (const name of listNames(filesDir)) {
      const path = join(filesDir, name);
      let digest: string | undefined;
      try {
        digest = (JSON.parse(readFileSync(path, 'utf8')) as { digest?: string }).digest;
      } catch {
        digest = undefined;
      }
      if ((digest !== undefined && kept.has(digest.replace(/^sha256:/, ''))) || isFresh(path, freshAfterMs)) continue;
      remove(path);
      report.removedPathRecords += 1;
    }
    // An archive's states file is named by the archive's sha256: kept while a target's
    // recorded output has those bytes (a rewrite of it reads the file), or when fresh.
    const archivesDir = join(store.dir, 'archives');
    const outputs = options.currentOutputs;
    if (outputs !== undefined) {
      for (const name of listNames(archivesDir)) {
        const path = join(archivesDir, name);
        const hex = /^([0-9a-f]{64})\.json$/.exec(name)?.[1];
        if ((hex !== undefined && outputs.has(hex)) || isFresh(path, freshAfterMs)) continue;
        remove(path);
        report.removedArchiveStates += 1;
      }
    }
    const temporaryDir = join(store.dir, 'tmp');
    for (const name of listNames(temporaryDir)) {
      const path = join(temporaryDir, name);
      if (isFresh(path, freshAfterMs)) continue;
      remove(path);
      report.removedTemporary += 1;
    }
    return report;
  } finally {
    release();
  }
}

function listNames(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function isFresh(path: string, freshAfterMs: number): boolean {
  const stat = statSync(path, { throwIfNoEntry: false });
  return stat === undefined || stat.mtimeMs >= freshAfterMs;
}

/** Takes `gc.lock` in the store (O_EXCL), taking over one whose process is gone; returns its release. */
function takeGcLock(store: BlobStore): () => void {
  const path = join(store.dir, 'gc.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      statSync(store.dir);
      fd = openSync(path, 'wx', 0o644);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return () => undefined; // no store: nothing to collect
      if (code !== 'EEXIST') throw cause;
      const owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
      if (Number.isInteger(owner) && owner > 0 && isProcessAlive(owner)) {
        throw new RedoError('ERR_IMAGE_STORE', `redo: "${path}": another store collection is running`, { details: [`process: ${owner}`], hint: 'wait for it to finish, then run redo-ts store gc again' });
      }
      unlinkSync(path);
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return () => rmSync(path, { force: true });
  }
  throw new RedoError('ERR_IMAGE_STORE', `redo: "${path}": cannot take the store collection lock`, { hint: 'remove the file if no redo-ts store gc is running' });
}

