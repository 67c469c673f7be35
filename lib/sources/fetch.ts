/** Getting a source's bytes: cache, else download (file:, http(s):, deb: via apt), verify against the pin, store. */

import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { RedoError } from '../errors.js';
import { checkFile, defaultPinAlgorithm, integrityOfFile, type Integrity } from './integrity.js';
import type { SourceSpec } from './spec.js';
import { withScratchFolder } from './scratch.js';
import { integrityOfFolder, isFolder } from './folder.js';
import { copyOutOfStore, damagedEntryError, findInStore, insertIntoStore, lookUpInStore } from './store.js';

/** Options for fetchSource and pinSource. */
export interface FetchOptions {
  /** The cache folder (see cacheDirFrom). */
  cacheDir: string;
  /** Project root: `file:` sources are relative to it. */
  root: string;
  /** Never download: a source the cache lacks is ERR_SOURCE_UNREACHABLE. */
  isOffline?: boolean;
  /** The spec the source belongs to, relative to the root, for error messages. */
  specPath?: string;
  /** Environment for apt-get and REDO_TS_DOWNLOAD_LIMIT (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /**
   * Called with a progress line (no newline) every few seconds while a download that
   * has run for more than PROGRESS_AFTER_MS goes on, and once when it ends; short
   * downloads say nothing. Default: no progress.
   */
  onProgress?: (line: string) => void;
  /**
   * Return a cache hit without hashing it (`isUnproved`): the caller copies it with
   * copyFetched, which hashes it in that same pass. Default: a hit is hashed first.
   */
  shouldDeferCheck?: boolean;
}

/** The download limit when a source has no `size` and REDO_TS_DOWNLOAD_LIMIT is unset: 4 GiB. */
export const DEFAULT_DOWNLOAD_LIMIT_BYTES = 4 * 1024 ** 3;
/** A download reports progress once it has run this long, and then at this interval. */
export const PROGRESS_AFTER_MS = 2000;

/**
 * The most bytes one download may bring when its source has no `size`:
 * `REDO_TS_DOWNLOAD_LIMIT` from `env` (bytes, or a number with K, M or G for KiB, MiB,
 * GiB), else DEFAULT_DOWNLOAD_LIMIT_BYTES. Throws ERR_USAGE for a value that is not
 * such a number. Pure: reads only the `env` it is given.
 */
export function downloadLimitFrom(env: NodeJS.ProcessEnv): number {
  const text = env.REDO_TS_DOWNLOAD_LIMIT;
  if (text === undefined || text.trim() === '') return DEFAULT_DOWNLOAD_LIMIT_BYTES;
  const match = /^([0-9]+)\s*([KMG]?)i?B?$/i.exec(text.trim());
  if (match === null) {
    throw new RedoError('ERR_USAGE', `redo: "REDO_TS_DOWNLOAD_LIMIT": not a size`, {
      details: [`found: ${JSON.stringify(text)}`, 'wanted: bytes, or a number with K, M or G (1024-based), e.g. 512M'],
    });
  }
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[match[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(match[1]) * unit;
}

function sizeText(bytes: number): string {
  return bytes < 1024 * 1024 ? `${bytes} bytes` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Verified bytes of a source. */
export interface FetchedSource {
  /** A file holding exactly the pinned bytes. Shared cache content: read it, never modify it. */
  path: string;
  integrity: Integrity;
  /** True when the bytes came from the cache without any download. */
  wasCached: boolean;
  /**
   * True for a cache entry returned unhashed (FetchOptions.shouldDeferCheck): nothing
   * may read `path` but copyFetched, which proves the bytes as it copies them.
   */
  isUnproved?: boolean;
}

function subjectOf(source: SourceSpec, options: FetchOptions): string {
  return options.specPath !== undefined ? `redo: "${options.specPath}": source "${source.url}"` : `redo: source "${source.url}"`;
}

/**
 * Returns verified bytes for `source`. A project file (`integrity: project`) is returned
 * in place with its current sha256, uncached. A pinned `file:` source is always read
 * from the project and checked, so an edited file is a mismatch. With a warm cache: no network and no apt call,
 * the cached copy is hashed against the pin (findInStore) and returned (with
 * `shouldDeferCheck`, returned unhashed for copyFetched to prove as it copies); a copy
 * that does not match is dropped and fetched again, or, offline, is ERR_CACHE_DAMAGED. Otherwise the source is
 * downloaded into a scratch folder, hashed with ssri and compared with the pin BEFORE
 * anything else sees it, then inserted into the cache atomically.
 * Throws ERR_INTEGRITY_MISSING (no pin; nothing fetched), ERR_INTEGRITY_MISMATCH
 * (wanted/found; nothing cached), ERR_SOURCE_UNREACHABLE (which source, why, and that
 * the cache has no copy). Writes only into `cacheDir` and a scratch folder it removes.
 */
export async function fetchSource(source: SourceSpec, options: FetchOptions): Promise<FetchedSource> {
  if (source.isProjectFile) {
    const path = resolve(options.root, source.url.slice('file:'.length));
    try {
      // A folder of the project: the digest of every file in it (folder.ts).
      if (isFolder(path)) return { path, integrity: integrityOfFolder(path), wasCached: false };
      return { path, integrity: await integrityOfFile(path), wasCached: false };
    } catch (cause) {
      throw unreachable(source, options, `cannot read ${source.url.slice('file:'.length)}: ${(cause as NodeJS.ErrnoException).code ?? cause}`, [], cause);
    }
  }
  const wanted = source.integrity;
  if (wanted === undefined) {
    throw new RedoError('ERR_INTEGRITY_MISSING', `${subjectOf(source, options)}: no integrity pin`, {
      details: [`line: ${source.location.line}`],
      hint: `run \`redo-ts pin${options.specPath !== undefined ? ` ${options.specPath}` : ''}\` to compute it, then review and commit the change`,
    });
  }
  if (source.kind === 'file' && isFolder(resolve(options.root, source.url.slice('file:'.length)))) {
    throw new RedoError('ERR_SPEC_INVALID', `${subjectOf(source, options)}: is a folder, and a folder cannot have a pin`, {
      details: [`line: ${source.location.line}`, `found: integrity: ${wanted}`],
      hint: 'a folder of the project is tracked by the content of every file in it: write `integrity: project` for it',
    });
  }
  // A file: source is read from the project every time: the cache must not hide an edit.
  if (source.kind !== 'file' && options.shouldDeferCheck === true) {
    const entry = await lookUpInStore(options.cacheDir, wanted);
    if (entry.kind === 'hit') return { path: entry.path, integrity: wanted, wasCached: true, isUnproved: true };
  }
  const cached = source.kind === 'file' ? undefined : await findInStore(options.cacheDir, wanted);
  if (cached?.kind === 'hit') return { path: cached.path, integrity: wanted, wasCached: true };
  // A damaged cache entry (dropped by findInStore) is not the source's fault: fetch it again below.
  if (options.isOffline === true) {
    if (cached?.kind === 'damaged') {
      throw damagedEntryError(subjectOf(source, options), wanted, cached, 'run once online to fetch the pinned bytes again, or check what writes into the cache folder');
    }
    throw unreachable(source, options, 'offline mode, and the cache has no copy', []);
  }
  return withScratch(async (scratch) => {
    const downloaded = await download(source, options, scratch);
    const check = await checkFile(downloaded, wanted);
    if (!check.matches) {
      throw new RedoError('ERR_INTEGRITY_MISMATCH', `${subjectOf(source, options)}: integrity mismatch`, {
        details: [`wanted: ${wanted}`, `found:  ${check.found}`, 'nothing was cached and nothing was built'],
        hint: 'change the pin (redo-ts pin --update) only if the upstream file was meant to change',
      });
    }
    const path = await insertIntoStore(options.cacheDir, wanted, downloaded, source.url);
    return { path, integrity: wanted, wasCached: false };
  });
}

/**
 * Copies the bytes of `fetched` (fetchSource's answer for `source`) to `destination` and
 * returns what was copied. An unproved cache entry is hashed in the copy itself (one read
 * of it): when it does not match its pin, the copy is removed, the entry dropped, and the
 * source fetched again and copied, or, offline, ERR_CACHE_DAMAGED names the entry, the
 * wanted and the found hash. Bytes already proved (a download, a project file) are
 * copied as they are. Throws what fetchSource throws.
 */
export async function copyFetched(source: SourceSpec, fetched: FetchedSource, options: FetchOptions, destination: string): Promise<FetchedSource> {
  if (fetched.isUnproved !== true) {
    await copyFile(fetched.path, destination);
    return fetched;
  }
  const copied = await copyOutOfStore(options.cacheDir, fetched.integrity, fetched.path, destination);
  if (copied.kind === 'hit') return { ...fetched, isUnproved: false };
  if (copied.kind === 'damaged' && options.isOffline === true) {
    throw damagedEntryError(subjectOf(source, options), fetched.integrity, copied, 'run once online to fetch the pinned bytes again, or check what writes into the cache folder');
  }
  // Dropped (damaged) or gone: fetchSource finds no entry now and downloads the bytes again.
  const again = await fetchSource(source, { ...options, shouldDeferCheck: false });
  await copyFile(again.path, destination);
  return again;
}

/**
 * Downloads `source` (ignoring any pin and the cache) and returns its SRI with
 * `algorithm` (default sha256), inserting the bytes into the cache under that SRI.
 * Used by `redo-ts pin`. Throws ERR_SOURCE_UNREACHABLE.
 */
export async function pinSource(source: SourceSpec, options: FetchOptions, algorithm: string = defaultPinAlgorithm): Promise<Integrity> {
  return withScratch(async (scratch) => {
    const downloaded = await download(source, options, scratch);
    const integrity = await integrityOfFile(downloaded, algorithm);
    await insertIntoStore(options.cacheDir, integrity, downloaded, source.url);
    return integrity;
  });
}

/** A scratch folder for one download, removed on every exit path (see withScratchFolder). */
function withScratch<T>(work: (scratch: string) => Promise<T>): Promise<T> {
  return withScratchFolder('redo-ts-fetch-', work);
}

function unreachable(source: SourceSpec, options: FetchOptions, why: string, more: string[], cause?: unknown): RedoError {
  return new RedoError('ERR_SOURCE_UNREACHABLE', `${subjectOf(source, options)}: cannot be fetched`, {
    details: [`why: ${why}`, ...more, 'cache: no copy of this pin'],
    hint: source.kind === 'deb'
      ? `old versions leave the archive: \`apt-cache policy ${source.deb!.package}\` shows what apt offers; put that version in the url and run \`redo-ts pin --update\`, or import the pinned .deb with \`redo-ts cache add FILE.deb\``
      : 'check the URL, or put the file in the cache by running once where it is reachable',
    cause,
  });
}

/** Puts the source's bytes in `scratch` and returns their path. */
async function download(source: SourceSpec, options: FetchOptions, scratch: string): Promise<string> {
  const target = join(scratch, 'download');
  switch (source.kind) {
    case 'file': {
      const from = resolve(options.root, source.url.slice('file:'.length));
      try {
        await copyFile(from, target);
      } catch (cause) {
        throw unreachable(source, options, `cannot read ${source.url.slice('file:'.length)}: ${(cause as NodeJS.ErrnoException).code ?? cause}`, [], cause);
      }
      return target;
    }
    case 'http': {
      let response: Response;
      try {
        response = await fetch(source.url, { redirect: 'follow' });
      } catch (cause) {
        const reason = (cause as Error & { cause?: Error }).cause?.message ?? (cause as Error).message;
        throw unreachable(source, options, reason, [], cause);
      }
      if (!response.ok || response.body === null) {
        await response.body?.cancel();
        throw unreachable(source, options, `HTTP status ${response.status} ${response.statusText}`.trim(), []);
      }
      await receive(source, options, response, target);
      return target;
    }
    case 'deb':
      return downloadDeb(source, options, scratch);
    default: {
      const impossible: never = source.kind;
      throw new Error(`unknown source kind ${String(impossible)}`);
    }
  }
}

/**
 * Streams `response`'s body into `target`, never past the source's `size` or the
 * download limit: a declared Content-Length over it fails before any byte is read, and
 * the byte after it ends the download (ERR_SOURCE_SIZE). A download with a `size` must
 * also end exactly there. Reports progress when the download is long.
 */
async function receive(source: SourceSpec, options: FetchOptions, response: Response, target: string): Promise<void> {
  const limitBytes = source.sizeBytes ?? downloadLimitFrom(options.env ?? process.env);
  const limitOrigin = source.sizeBytes !== undefined
    ? `the source's size: ${source.sizeBytes} bytes`
    : `the download limit: ${limitBytes} bytes (REDO_TS_DOWNLOAD_LIMIT, default 4G)`;
  const tooLarge = (found: string): RedoError =>
    new RedoError('ERR_SOURCE_SIZE', `${subjectOf(source, options)}: download is larger than allowed`, {
      details: [`wanted: at most ${limitOrigin}`, `found:  ${found}`, 'the partial download was removed; nothing was cached'],
      hint: source.sizeBytes !== undefined
        ? 'check the URL; change `size` only if the upstream file was meant to change'
        : 'give the source its `size` in the spec (exact bytes), or raise REDO_TS_DOWNLOAD_LIMIT',
    });
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limitBytes) {
    await response.body?.cancel();
    throw tooLarge(`Content-Length: ${declared} bytes`);
  }
  const startedMs = Date.now();
  let reportedMs = startedMs;
  let hasReported = false;
  let receivedBytes = 0;
  const total = Number.isFinite(declared) ? ` of ${sizeText(declared)}` : '';
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      receivedBytes += chunk.length;
      if (receivedBytes > limitBytes) {
        done(tooLarge(`more than ${limitBytes} bytes, and still coming`));
        return;
      }
      const nowMs = Date.now();
      if (options.onProgress !== undefined && nowMs - reportedMs >= PROGRESS_AFTER_MS) {
        reportedMs = nowMs;
        hasReported = true;
        options.onProgress(`${subjectOf(source, options)}: ${sizeText(receivedBytes)}${total} downloaded (${Math.round((nowMs - startedMs) / 1000)} s)`);
      }
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(response.body as WebReadableStream), counter, createWriteStream(target));
  } catch (cause) {
    if (cause instanceof RedoError) throw cause;
    throw unreachable(source, options, `download interrupted: ${(cause as Error).message}`, [], cause);
  }
  if (hasReported) {
    options.onProgress!(`${subjectOf(source, options)}: ${sizeText(receivedBytes)} downloaded in ${Math.round((Date.now() - startedMs) / 1000)} s`);
  }
  if (source.sizeBytes !== undefined && receivedBytes !== source.sizeBytes) {
    throw new RedoError('ERR_SOURCE_SIZE', `${subjectOf(source, options)}: download is shorter than its size`, {
      details: [`wanted: ${source.sizeBytes} bytes (the source's size)`, `found:  ${receivedBytes} bytes`, 'nothing was cached'],
      hint: 'check the URL; change `size` only if the upstream file was meant to change',
    });
  }
}

/**
 * `apt-get download PACKAGE[:ARCH]=VERSION` in a scratch folder, using the machine's own
 * apt configuration (no mirror is named by the project).
 */
async function downloadDeb(source: SourceSpec, options: FetchOptions, scratch: string): Promise<string> {
  const deb = source.deb!;
  const folder = join(scratch, 'apt');
  await mkdir(folder);
  const request = `${deb.package}${deb.arch !== undefined ? `:${deb.arch}` : ''}=${deb.version}`;
  const { status, stderr } = await runCommand('apt-get', ['download', '--quiet', request], folder, {
    ...(options.env ?? process.env),
    LC_ALL: 'C',
  });
  if (status !== 0) {
    const tail = stderr.trim().split('\n').filter((line) => line !== '').slice(-3).map((line) => `apt-get: ${line}`);
    throw unreachable(source, options, `apt-get download ${request} ${status === null ? 'could not run' : `exited with status ${status}`}`, tail);
  }
  const debs = (await readdir(folder)).filter((name) => name.endsWith('.deb')).sort();
  if (debs.length !== 1) {
    throw unreachable(source, options, `apt-get download ${request} left ${debs.length} .deb files`, debs.map((name) => `file: ${name}`));
  }
  return join(folder, debs[0]!);
}

/**
 * Runs `command` in `cwd` with stdout discarded and resolves with its exit status (null
 * when it could not start) and its stderr, for the error message. Never rejects.
 */
export function runCommand(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', (error) => resolvePromise({ status: null, stderr: error.message }));
    child.on('close', (code) => resolvePromise({ status: code, stderr: Buffer.concat(chunks).toString('utf8') }));
  });
}
