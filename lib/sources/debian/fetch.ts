/** Getting the .deb files a lock names: the content-addressed cache first, else one `apt-get download` (or a mirror), each checked against the lock. */

import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { RedoError } from '../../errors.js';
import { runCommand } from '../fetch.js';
import { checkFile, integrityOfFile, parseIntegrity, type Integrity } from '../integrity.js';
import { damagedEntryError, findInStore, insertIntoStore, lookUpInStore } from '../store.js';
import { parseParagraphs, readDebControl } from './control.js';
import type { LockedPackage } from './lock.js';

/** Options for fetchLockedPackages. */
export interface FetchPackagesOptions {
  cacheDir: string;
  /** The lock file, relative to the project root, for messages. */
  lockLabel: string;
  isOffline?: boolean;
  /** Archive root URL to fetch `filename`s from instead of apt (the lock's `mirror`, or REDO_TS_DEBIAN_MIRROR). */
  mirror?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Return cached packages without hashing them: the caller proves each in the pass
   * that unpacks it (readDebEntries with a check, as the rootfs assembly does).
   * Default: each cached .deb is hashed before its path is returned.
   */
  shouldDeferCheck?: boolean;
}

/** The Package, Version and Architecture a .deb's own control file declares. */
export interface DebIdentity {
  name: string;
  version: string;
  architecture: string;
}

/** Reads a .deb's identity from its control file. Throws ERR_DEB_FORMAT. */
export async function identityOfDeb(path: string, label: string): Promise<DebIdentity> {
  const control = parseParagraphs((await readDebControl(path, label)).get('control')!.toString('utf8'))[0] ?? new Map<string, string>();
  return { name: control.get('Package') ?? '', version: control.get('Version') ?? '', architecture: control.get('Architecture') ?? '' };
}

/**
 * Throws ERR_DEB_CONTROL_MISMATCH when the .deb's control fields are not the package
 * `wanted` names: provenance must never claim a package the bytes are not.
 */
export function checkDebIdentity(found: DebIdentity, wanted: DebIdentity, subject: string, integrity: string): void {
  const differing = (['name', 'version', 'architecture'] as const).filter((field) => found[field] !== wanted[field]);
  if (differing.length === 0) return;
  const label = { name: 'Package', version: 'Version', architecture: 'Architecture' };
  throw new RedoError('ERR_DEB_CONTROL_MISMATCH', `redo: ${subject}: the .deb is not the package it is pinned as`, {
    details: [
      ...differing.map((field) => `${label[field]}: wanted ${wanted[field]}, the .deb says ${found[field]}`),
      `integrity: ${integrity} is ${found.name} ${found.version} (${found.architecture})`,
    ],
    hint: 'the pin (integrity) belongs to another package: fix it with `redo-ts pin --update` or `redo-ts lock --update`',
  });
}

/**
 * Returns the cached path of every package of `packages` (by name), fetching the ones
 * the cache lacks (a cached one is hashed first, or with `shouldDeferCheck` left for
 * the caller to prove as it unpacks it): from `mirror`/FILENAME when set, else with one `apt-get download
 * NAME:ARCH=VERSION…` in a scratch folder through the machine's apt (its package cache
 * files are not written). Every file is checked against the lock's integrity before it
 * is cached, and against its own control fields. Throws ERR_SOURCE_UNREACHABLE naming
 * the packages neither the indexes nor the cache have, ERR_INTEGRITY_MISMATCH,
 * ERR_DEB_CONTROL_MISMATCH. Writes only into the cache and a scratch folder it removes.
 */
export async function fetchLockedPackages(packages: readonly LockedPackage[], options: FetchPackagesOptions): Promise<Map<string, string>> {
  const paths = new Map<string, string>();
  const missing: LockedPackage[] = [];
  const damaged: { locked: LockedPackage; lookup: { path: string; found: Integrity } }[] = [];
  for (const locked of packages) {
    const integrity = parseIntegrity(locked.integrity)!;
    const cached = options.shouldDeferCheck === true ? await lookUpInStore(options.cacheDir, integrity) : await findInStore(options.cacheDir, integrity);
    if (cached.kind === 'hit') paths.set(locked.name, cached.path);
    else {
      // A damaged copy was dropped by findInStore: it is fetched again like a missing one.
      if (cached.kind === 'damaged') damaged.push({ locked, lookup: cached });
      missing.push(locked);
    }
  }
  if (missing.length === 0) return paths;
  if (options.isOffline === true) {
    const first = damaged[0];
    if (first !== undefined) {
      throw damagedEntryError(`redo: "${options.lockLabel}": package ${first.locked.name} ${first.locked.version}`, first.locked.integrity as Integrity, first.lookup,
        'run once online to fetch the locked package again, or import it with `redo-ts cache add FILE.deb`');
    }
    throw unreachable(missing, options, 'offline mode', []);
  }
  const scratch = await mkdtemp(join(tmpdir(), 'redo-ts-debs-'));
  try {
    const files = options.mirror !== undefined ? await downloadFromMirror(missing, options, scratch) : await downloadWithApt(missing, options, scratch);
    for (const locked of missing) {
      const file = files.get(locked.name);
      if (file === undefined) throw unreachable([locked], options, 'the download did not produce it', []);
      const wanted = locked.integrity as Integrity;
      const check = await checkFile(file, wanted);
      if (!check.matches) {
        throw new RedoError('ERR_INTEGRITY_MISMATCH', `redo: "${options.lockLabel}": package ${locked.name} ${locked.version}: integrity mismatch`, {
          details: [`wanted: ${wanted}`, `found:  ${check.found}`, 'nothing was cached and nothing was built'],
          hint: 'the archive serves other bytes under this version than the lock recorded; lock again only if that was meant',
        });
      }
      paths.set(locked.name, await insertIntoStore(options.cacheDir, wanted, file, `deb:${locked.name}=${locked.version}?arch=${locked.architecture}`));
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return paths;
}

function unreachable(packages: readonly LockedPackage[], options: FetchPackagesOptions, why: string, more: string[]): RedoError {
  const names = packages.map((p) => `${p.name}=${p.version}`);
  return new RedoError('ERR_SOURCE_UNREACHABLE', `redo: "${options.lockLabel}": ${packages.length === 1 ? `package ${names[0]} cannot` : `${packages.length} packages cannot`} be fetched`, {
    details: [`why: ${why}`, ...more, ...(packages.length > 1 ? [`packages: ${names.join(', ')}`] : []), 'cache: no copy of these pins'],
    hint: 'old versions leave the archive: `redo-ts lock` moves just the ones it no longer has (after `apt-get update`), or import the .deb files with `redo-ts cache add FILE.deb...`, or fetch from a snapshot mirror',
  });
}

/** One package apt said it could not fetch, with apt's line saying so. */
export interface AptRefusal {
  locked: LockedPackage;
  /** apt's line (`E: ...`) naming it, its `[IP: ...]` suffix dropped. */
  evidence: string;
}

/**
 * The packages of `requested` that apt-get's stderr (LC_ALL=C) says it could not fetch,
 * in the order of `requested`, each with the first line naming it. apt names a package
 * as `'NAME'` or `'NAME:ARCH'` ("Can't find a source to download version 'V' of
 * 'NAME:ARCH'", "Version 'V' for 'NAME' was not found"), as `package NAME:ARCH`
 * ("Unable to locate package ..."), or by the URL of its file ("Failed to fetch
 * URL  404  Not Found"). Warnings (`W:`) and lines naming no requested package are
 * ignored: a package apt did not name is not reported.
 */
export function packagesAptCouldNotFetch(stderr: string, requested: readonly LockedPackage[]): AptRefusal[] {
  const byName = new Map(requested.map((locked) => [locked.name, locked]));
  const byFile = new Map(requested.filter((locked) => locked.filename !== '').map((locked) => [basename(locked.filename), locked]));
  const found = new Map<LockedPackage, string>();
  for (const raw of stderr.split('\n')) {
    const line = raw.trim().replace(/\s*\[IP: [^\]]*\]$/, '');
    if (!/^(E|Err):/.test(line)) continue;
    const named = new Set<LockedPackage>();
    for (const match of line.matchAll(/'([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?'|\bpackage ([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?(?=\s|$)/g)) {
      const locked = byName.get(match[1] ?? match[2]!);
      if (locked !== undefined) named.add(locked);
    }
    for (const match of line.matchAll(/\b[a-z][a-z0-9+.-]*:\/\/\S+\.deb\b/g)) {
      const locked = byFile.get(decodeURIComponentSafely(basename(match[0])));
      if (locked !== undefined) named.add(locked);
    }
    for (const locked of named) if (!found.has(locked)) found.set(locked, line);
  }
  return requested.filter((locked) => found.has(locked)).map((locked) => ({ locked, evidence: found.get(locked)! }));
}

function decodeURIComponentSafely(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** One `apt-get download` for every missing package; returns name → file, matched by the files' control fields. */
async function downloadWithApt(missing: readonly LockedPackage[], options: FetchPackagesOptions, scratch: string): Promise<Map<string, string>> {
  const folder = join(scratch, 'apt');
  await mkdir(folder);
  const requests = missing.map((p) => `${p.name}:${p.architecture}=${p.version}`);
  // The pkgcache options keep apt from writing its binary caches under /var/cache/apt.
  const args = ['download', '--quiet', '-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache=', ...requests];
  const { status, stderr } = await runCommand('apt-get', args, folder, { ...(options.env ?? process.env), LC_ALL: 'C' });
  if (status !== 0) {
    const how = `apt-get download ${status === null ? 'could not run' : `exited with status ${status}`}`;
    const refused = packagesAptCouldNotFetch(stderr, missing);
    if (refused.length > 0) {
      throw unreachable(refused.map((refusal) => refusal.locked), options, how, refused.map((refusal) => `apt-get: ${refusal.evidence}`));
    }
    // apt named no package (a lock held, a broken configuration): its last words, and every request.
    const lines = stderr.trim().split('\n').filter((line) => line !== '');
    throw unreachable(missing, options, `${how}, naming no package`, lines.slice(-3).map((line) => `apt-get: ${line}`));
  }
  return filesByPackage(folder, missing);
}

async function filesByPackage(folder: string, missing: readonly LockedPackage[]): Promise<Map<string, string>> {
  const byName = new Map<string, string>();
  const wanted = new Set(missing.map((p) => p.name));
  for (const file of (await readdir(folder)).filter((name) => name.endsWith('.deb')).sort()) {
    const identity = await identityOfDeb(join(folder, file), file);
    if (wanted.has(identity.name)) byName.set(identity.name, join(folder, file));
  }
  return byName;
}

/** Fetches every missing package from the mirror; throws naming every one it could not get, each with its URL and why. */
async function downloadFromMirror(missing: readonly LockedPackage[], options: FetchPackagesOptions, scratch: string): Promise<Map<string, string>> {
  const base = options.mirror!.replace(/\/+$/, '');
  const files = new Map<string, string>();
  const failed: Array<{ locked: LockedPackage; evidence: string }> = [];
  for (const [index, locked] of missing.entries()) {
    const url = `${base}/${locked.filename}`;
    let response: Response;
    try {
      response = await fetch(url);
    } catch (cause) {
      failed.push({ locked, evidence: `${url}: ${(cause as Error & { cause?: Error }).cause?.message ?? (cause as Error).message}` });
      continue;
    }
    if (!response.ok || response.body === null) {
      await response.body?.cancel();
      failed.push({ locked, evidence: `${url}: HTTP status ${response.status}` });
      continue;
    }
    const target = join(scratch, `${index}.deb`);
    await pipeline(Readable.fromWeb(response.body as WebReadableStream), createWriteStream(target));
    files.set(locked.name, target);
  }
  if (failed.length === 1) throw unreachable([failed[0]!.locked], options, failed[0]!.evidence, []);
  if (failed.length > 1) throw unreachable(failed.map((f) => f.locked), options, 'the mirror did not serve them', failed.map((f) => `${f.locked.name}: ${f.evidence}`));
  return files;
}

/**
 * Imports .deb files into the cache (for offline and air-gapped builds): each is keyed
 * by its sha256 SRI, which is what a lock names, so a build finds it without a
 * download. Returns each file's identity and integrity. Throws ERR_DEB_FORMAT for a
 * file that is not a package.
 */
export async function addDebsToCache(files: readonly string[], cacheDir: string): Promise<Array<DebIdentity & { integrity: Integrity; path: string }>> {
  const added = [];
  for (const path of files) {
    const isFile = await stat(path).then((stats) => stats.isFile(), () => false);
    if (!isFile) throw new RedoError('ERR_USAGE', `redo: "${path}": no such file`, { hint: 'name .deb files to import' });
    const identity = await identityOfDeb(path, path);
    const integrity = await integrityOfFile(path);
    await insertIntoStore(cacheDir, integrity, path, `deb:${identity.name}=${identity.version}?arch=${identity.architecture}`);
    added.push({ ...identity, integrity, path });
  }
  return added;
}

