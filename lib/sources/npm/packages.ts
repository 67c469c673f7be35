/** npm packages of a spec: fetched with the machine's own npm into the content cache, checked against the lock, handed to `npm ci --offline`. */

import { spawn } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { RedoError } from '../../errors.js';
import { checkFile, parseIntegrity, type Integrity } from '../integrity.js';
import { withScratchFolder } from '../scratch.js';
import type { AppDependencies, Spec } from '../spec.js';
import { damagedEntryError, dropFromStore, insertIntoStore, lookUpInStore, writeToolCacheEntry } from '../store.js';
import { npmDefaultRegistry, packagesToInstall, readNpmLock, type NpmLockedPackage } from './lock.js';

/** Options for the npm steps of a build. */
export interface NpmOptions {
  /** redo-ts's content cache. */
  cacheDir: string;
  /** The caller's environment: the machine's npm configuration (npm_config_*, HOME's .npmrc) for fetching. */
  env: NodeJS.ProcessEnv;
  /** Never fetch: a package the cache lacks is ERR_SOURCE_UNREACHABLE. */
  isOffline: boolean;
}

/** A package of the lock with its verified tarball in the content cache. */
export interface FetchedNpmPackage {
  locked: NpmLockedPackage;
  /** The cached tarball: shared, read-only. */
  path: string;
  integrity: Integrity;
  /** The cache holding `path`: prepareNpmInstall hashes the tarball as it copies it into npm's cache, and drops it there when it does not match. */
  cacheDir: string;
}

/**
 * Verified tarballs of every package `deps` installs (devDependencies only with `dev:
 * true`), in lock order. Each is looked up in the content cache by the lock's
 * integrity and re-hashed; those missing are fetched in one `npm pack` call with the
 * machine's npm configuration (registry, proxy, CA, auth; the project's .npmrc beside
 * the lock too): `NAME@VERSION` for packages of the default registry (so a configured
 * mirror serves them, as `npm ci` would), the lock's `resolved` URL otherwise. Each
 * tarball is checked against the lock's integrity BEFORE it enters the cache.
 * Throws ERR_INTEGRITY_MISMATCH naming the package (wanted/found), ERR_SOURCE_UNREACHABLE
 * (npm's last lines), ERR_NPM_LOCK_INVALID. Writes the cache and a scratch folder it removes.
 */
export async function fetchNpmPackages(spec: Spec, deps: AppDependencies, options: NpmOptions): Promise<FetchedNpmPackage[]> {
  const lock = await readNpmLock(resolve(spec.root, deps.lock), deps.lock);
  const wanted = packagesToInstall(lock, deps.isDevIncluded);
  const found = new Map<string, FetchedNpmPackage>();
  const missing: NpmLockedPackage[] = [];
  for (const locked of wanted) {
    const integrity = pinOf(locked, deps);
    // Not hashed here: prepareNpmInstall hashes it in the copy into npm's cache.
    const cached = await lookUpInStore(options.cacheDir, integrity);
    if (cached.kind === 'hit') found.set(locked.location, { locked, path: cached.path, integrity, cacheDir: options.cacheDir });
    else missing.push(locked);
  }
  if (missing.length > 0) {
    if (options.isOffline) {
      throw new RedoError('ERR_SOURCE_UNREACHABLE', `redo: "${spec.relativePath}": npm package ${label(missing[0]!)} cannot be fetched`, {
        details: ['why: offline mode, and the cache has no copy', ...(missing.length > 1 ? [`and ${missing.length - 1} more of ${deps.lock}`] : [])],
        hint: 'build once where the registry is reachable to fill the cache',
      });
    }
    await withScratchFolder('redo-ts-npm-', async (scratch) => {
      // One request per name and version: two locations may hold the same package.
      const unique = [...new Map(missing.map((locked) => [`${locked.name}@${locked.version}`, locked])).values()];
      const specs = unique.map((locked) => (isDefaultRegistry(locked) ? `${locked.name}@${locked.version}` : locked.resolved));
      const packed = await npmPack(specs, scratch, resolve(spec.root, dirname(deps.lock)), options.env, spec, deps);
      for (const locked of missing) {
        const file = packed.get(`${locked.name}@${locked.version}`);
        if (file === undefined) {
          throw new RedoError('ERR_SOURCE_UNREACHABLE', `redo: "${spec.relativePath}": npm package ${label(locked)} cannot be fetched`, {
            details: [`why: npm pack did not return ${locked.name}@${locked.version}`],
            hint: 'check that the registry has this exact version',
          });
        }
        const integrity = pinOf(locked, deps);
        const check = await checkFile(file, integrity);
        if (!check.matches) {
          throw new RedoError('ERR_INTEGRITY_MISMATCH', `redo: "${spec.relativePath}": npm package ${label(locked)}: integrity mismatch`, {
            details: [`lock: ${deps.lock}`, `wanted: ${integrity}`, `found:  ${check.found}`, 'it was not cached, and nothing was built'],
            hint: 'the registry serves other bytes than the lock pinned: check the registry; update the lock (npm install) only if the package was meant to change',
          });
        }
        const path = await insertIntoStore(options.cacheDir, integrity, file, locked.resolved);
        found.set(locked.location, { locked, path, integrity, cacheDir: options.cacheDir });
      }
    });
  }
  return wanted.map((locked) => found.get(locked.location)!);
}

/** What the install step needs: the command, its extra environment, and where it runs. */
export interface NpmInstallStep {
  what: string;
  script: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Prepares `npm ci --offline` for `deps` in the build's scratch folder: npm's cache
 * (`SCRATCH/npm/cache/_cacache`) gets each verified tarball under the request key npm
 * will use for its URL, the project's package.json and the lock (with every entry's
 * `resolved` written out, as npm needs it offline) go into `DESTDIR/PATH`, and empty
 * user and global npmrc files keep the machine's configuration out of the build.
 * Returns the step: `npm ci --offline --no-audit --no-fund` (`--omit=dev` unless `dev:
 * true`) in `$DESTDIR/PATH`, run like a build step, so node_modules, bin links and
 * lifecycle scripts are npm's own.
 */
export async function prepareNpmInstall(spec: Spec, deps: AppDependencies, fetched: FetchedNpmPackage[], scratch: string, destDir: string): Promise<NpmInstallStep> {
  const lock = await readNpmLock(resolve(spec.root, deps.lock), deps.lock);
  const npmDir = join(scratch, 'npm');
  const cache = join(npmDir, 'cache');
  await mkdir(join(cache, '_cacache'), { recursive: true });
  for (const { locked, path, integrity, cacheDir } of fetched) {
    // cacache hashes the tarball as it writes npm's copy (one read of ours): a damaged
    // entry is refused there (EINTEGRITY, nothing written), dropped from our cache, and
    // buildFragment builds again, fetching it anew (offline, the error stands).
    try {
      await writeToolCacheEntry(join(cache, '_cacache'), `make-fetch-happen:request-cache:${requestKeyOf(locked.resolved)}`, path, integrity, {
        url: locked.resolved,
        reqHeaders: {},
        resHeaders: {},
        options: { compress: true },
      });
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code !== 'EINTEGRITY' && code !== 'ENOENT') throw cause;
      await dropFromStore(cacheDir, integrity, path);
      const found = code === 'ENOENT' ? 'missing' : String((cause as { found?: unknown }).found ?? 'other bytes');
      throw damagedEntryError(`redo: "${spec.relativePath}": npm package ${label(locked)} (${deps.lock})`, integrity, { path, found: found as Integrity },
        'build once where the registry is reachable to fetch it again, or check what writes into the cache folder', [], cause);
    }
  }
  for (const locked of lock.packages) lock.json.packages[locked.location]!['resolved'] = locked.resolved;
  const into = join(destDir, deps.path);
  await mkdir(into, { recursive: true });
  await copyFile(resolve(spec.root, dirname(deps.lock), 'package.json'), join(into, 'package.json')).catch((cause: NodeJS.ErrnoException) => {
    throw new RedoError('ERR_NPM_LOCK_INVALID', `redo: "${spec.relativePath}": no package.json beside ${deps.lock}`, {
      details: [`error: ${cause.code ?? cause.message}`],
      hint: 'npm ci needs the package.json the lock was written from, in the same folder',
      cause,
    });
  });
  await writeFile(join(into, 'package-lock.json'), `${JSON.stringify(lock.json, null, 2)}\n`);
  await writeFile(join(npmDir, 'userconfig'), '');
  await writeFile(join(npmDir, 'globalconfig'), '');
  return {
    what: `npm ci (${deps.lock})`,
    script: `cd "$DESTDIR${deps.path}" && npm ci --offline --no-audit --no-fund${deps.isDevIncluded ? '' : ' --omit=dev'}`,
    env: {
      npm_config_cache: cache,
      npm_config_userconfig: join(npmDir, 'userconfig'),
      npm_config_globalconfig: join(npmDir, 'globalconfig'),
      npm_config_registry: npmDefaultRegistry(),
      npm_config_replace_registry_host: 'never',
      npm_config_update_notifier: 'false',
      npm_config_loglevel: 'warn',
    },
  };
}

/** The pin of a locked package: its lock integrity, checked as an SRI string. */
function pinOf(locked: NpmLockedPackage, deps: AppDependencies): Integrity {
  const integrity = parseIntegrity(locked.integrity);
  if (integrity === undefined) {
    throw new RedoError('ERR_NPM_LOCK_INVALID', `redo: "${deps.lock}": "${locked.location}" has an integrity that is not an SRI sha256/384/512 string`, {
      details: [`found: ${locked.integrity}`],
    });
  }
  return integrity;
}

function label(locked: NpmLockedPackage): string {
  return `${locked.name}@${locked.version}${locked.location === `node_modules/${locked.name}` ? '' : ` (${locked.location})`}`;
}

function isDefaultRegistry(locked: NpmLockedPackage): boolean {
  return !locked.hasResolved || locked.resolved.startsWith(npmDefaultRegistry());
}

/** make-fetch-happen's cache key of a URL: without credentials and fragment. */
function requestKeyOf(url: string): string {
  const parsed = new URL(url);
  parsed.username = '';
  parsed.password = '';
  parsed.hash = '';
  return parsed.href;
}

/**
 * `npm pack --json --pack-destination SCRATCH SPEC...` in `cwd` with the caller's
 * environment; returns the packed files by `NAME@VERSION`. Throws ERR_SOURCE_UNREACHABLE
 * with npm's last lines.
 */
async function npmPack(specs: string[], scratch: string, cwd: string, env: NodeJS.ProcessEnv, spec: Spec, deps: AppDependencies): Promise<Map<string, string>> {
  const { status, stdout, stderr } = await capture('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch, ...specs], cwd, env);
  if (status !== 0) {
    const tail = stderr.split('\n').filter((line) => line.trim() !== '').slice(-4).map((line) => `npm: ${line}`);
    throw new RedoError('ERR_SOURCE_UNREACHABLE', `redo: "${spec.relativePath}": the npm packages of ${deps.lock} cannot be fetched`, {
      details: [`why: npm pack (${specs.length} package${specs.length === 1 ? '' : 's'}) ${status === null ? 'could not run' : `exited with status ${status}`}`, ...tail],
      hint: 'check the machine\'s npm configuration (registry, proxy, CA: `npm config list`) and that the registry has these versions',
    });
  }
  const out = new Map<string, string>();
  for (const item of JSON.parse(stdout) as Array<{ name: string; version: string; filename: string }>) {
    out.set(`${item.name}@${item.version}`, join(scratch, item.filename.replace(/^@/, '').replace('/', '-')));
  }
  return out;
}

function capture(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => resolvePromise({ status: null, stdout: '', stderr: error.message }));
    child.on('close', (code) => resolvePromise({ status: code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}
