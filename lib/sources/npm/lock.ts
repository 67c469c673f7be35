/** npm's package-lock.json (lockfileVersion 2 and 3): the packages it pins, each with the lock's own integrity. */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedoError } from '../../errors.js';

/** One package the lock pins: an entry of its `packages` map other than the root. */
export interface NpmLockedPackage {
  /** The entry's key: where npm puts it (`node_modules/a/node_modules/b`). */
  location: string;
  /** The package's real name (an alias entry's `name`, else the last `node_modules/` part of the location). */
  name: string;
  version: string;
  /** The lock's SRI integrity (sha512, as the registry gave it). */
  integrity: string;
  /**
   * The tarball URL npm ci requests: the lock's `resolved`, or, when the lock leaves it
   * out (`omit-lockfile-registry-resolved`), the default registry's URL npm itself derives.
   */
  resolved: string;
  /** Whether the lock wrote `resolved` itself. */
  hasResolved: boolean;
  /** `dev: true`: only a devDependency needs it. */
  isDev: boolean;
  isOptional: boolean;
  /** The lock's `license` field, when npm wrote one. */
  license?: string;
  /** The names it depends on (dependencies and optionalDependencies). */
  dependencies: string[];
}

/** A parsed lock: its packages in the lock's (sorted) order, and its JSON for rewriting. */
export interface NpmLock {
  lockfileVersion: number;
  packages: NpmLockedPackage[];
  json: { packages: Record<string, Record<string, unknown>> } & Record<string, unknown>;
}

let builtInRegistry: string | undefined;

/**
 * npm's own default registry (what a lock without `resolved` fields is fetched from by
 * `npm ci` with no configuration), asked of npm itself with empty user and global
 * configuration and no `npm_config_*` variables, so it never depends on this machine's
 * settings and redo-ts names no registry of its own. Runs `npm config get registry`
 * once per process; throws ERR_NPM_LOCK_INVALID when npm cannot answer.
 */
export function npmDefaultRegistry(): string {
  if (builtInRegistry !== undefined) return builtInRegistry;
  const empty = mkdtempSync(join(tmpdir(), 'redo-ts-npmrc-'));
  try {
    writeFileSync(join(empty, 'userconfig'), '');
    writeFileSync(join(empty, 'globalconfig'), '');
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_config_/i.test(key)));
    const result = spawnSync('npm', ['config', 'get', 'registry', '--userconfig', join(empty, 'userconfig'), '--globalconfig', join(empty, 'globalconfig')], {
      encoding: 'utf8', env: { ...env, HOME: empty },
    });
    const url = result.stdout?.trim() ?? '';
    if (result.status !== 0 || !/^https?:\/\//.test(url)) {
      throw new RedoError('ERR_NPM_LOCK_INVALID', 'redo: npm\'s default registry cannot be read (`npm config get registry`)', {
        details: [`status: ${result.status ?? result.signal ?? result.error?.message}`, ...(result.stderr ?? '').trim().split('\n').slice(-3).map((line) => `npm: ${line}`)],
        hint: 'a lock whose packages have no `resolved` field needs npm on PATH; run `npm install` once to write them',
      });
    }
    builtInRegistry = url.endsWith('/') ? url : `${url}/`;
    return builtInRegistry;
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}

/**
 * Reads the package-lock.json at `path` (`label`: its project-relative path for
 * messages). Every entry of `packages` but the root (`""`), workspace folders and
 * bundled dependencies (`inBundle`, shipped inside their parent's tarball) is a package; each must have a `version` and an `integrity` (SRI). Throws
 * ERR_NPM_LOCK_INVALID naming the file and the entry: not JSON, lockfileVersion 1 (no
 * `packages` map), a git/file/link dependency (not from a registry), an entry without
 * integrity. Reads only.
 */
export async function readNpmLock(path: string, label: string): Promise<NpmLock> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new RedoError('ERR_NPM_LOCK_INVALID', `redo: "${label}": cannot be read`, {
      details: [`error: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`],
      hint: 'run `npm install` in the app folder to write package-lock.json, and commit it',
      cause,
    });
  }
  let json: NpmLock['json'];
  try {
    json = JSON.parse(text) as NpmLock['json'];
  } catch (cause) {
    throw new RedoError('ERR_NPM_LOCK_INVALID', `redo: "${label}": is not JSON`, { details: [`error: ${(cause as Error).message}`], cause });
  }
  const version = Number(json['lockfileVersion']);
  if ((version !== 2 && version !== 3) || typeof json.packages !== 'object' || json.packages === null) {
    throw new RedoError('ERR_NPM_LOCK_INVALID', `redo: "${label}": lockfileVersion ${String(json['lockfileVersion'])} is not read`, {
      details: ['wanted: lockfileVersion 2 or 3 (a `packages` map, npm 7 and later)'],
      hint: 'upgrade the lock with npm 7 or later: `npm install --package-lock-only`',
    });
  }
  const packages: NpmLockedPackage[] = [];
  for (const [location, entry] of Object.entries(json.packages)) {
    if (location === '' || !location.includes('node_modules/')) continue;
    // A bundled dependency comes inside its parent's tarball: no source of its own.
    if (entry['inBundle'] === true) continue;
    if (entry['link'] === true) {
      throw new RedoError('ERR_NPM_LOCK_INVALID', `redo: "${label}": "${location}" is a link to ${String(entry['resolved'])}`, {
        details: ['workspaces and `file:` folder dependencies are not fetched from a registry'],
        hint: 'install them from the project instead: a `file:` folder source and a build step',
      });
    }
    const name = typeof entry['name'] === 'string' ? entry['name'] : location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const packageVersion = entry['version'];
    const integrity = entry['integrity'];
    const resolved = typeof entry['resolved'] === 'string' ? entry['resolved'] : undefined;
    if (resolved !== undefined && !/^https?:\/\//.test(resolved)) {
      throw new RedoError('ERR_NPM_LOCK_INVALID', `redo: "${label}": "${location}" comes from ${resolved}`, {
        details: ['only packages from a registry (an http(s) tarball with an integrity) are fetched and pinned'],
        hint: 'publish the package to your registry, or vendor it as a folder source',
      });
    }
    if (typeof packageVersion !== 'string' || typeof integrity !== 'string' || !/^sha(256|384|512)-/.test(integrity.split(/\s+/).pop() ?? '')) {
      throw new RedoError('ERR_NPM_LOCK_INVALID', `redo: "${label}": "${location}" has no ${typeof packageVersion !== 'string' ? 'version' : 'sha256/384/512 integrity'}`, {
        details: [`found: ${JSON.stringify({ version: packageVersion, integrity })}`],
        hint: 'refresh the lock with `npm install` (an old sha1-only integrity is too weak to pin)',
      });
    }
    const item: NpmLockedPackage = {
      location,
      name,
      version: packageVersion,
      integrity: strongestHash(integrity),
      resolved: resolved ?? `${npmDefaultRegistry()}${name}/-/${name.split('/').pop()}-${packageVersion}.tgz`,
      hasResolved: resolved !== undefined,
      isDev: entry['dev'] === true,
      isOptional: entry['optional'] === true,
      dependencies: [
        ...Object.keys((entry['dependencies'] as Record<string, string> | undefined) ?? {}),
        ...Object.keys((entry['optionalDependencies'] as Record<string, string> | undefined) ?? {}),
      ],
    };
    if (typeof entry['license'] === 'string') item.license = entry['license'];
    packages.push(item);
  }
  return { lockfileVersion: version, packages, json };
}

/** The sha512 (else sha384, sha256) hash of a possibly multi-hash SRI string. */
function strongestHash(integrity: string): string {
  const hashes = integrity.split(/\s+/).filter((hash) => hash !== '');
  for (const algorithm of ['sha512', 'sha384', 'sha256']) {
    const found = hashes.find((hash) => hash.startsWith(`${algorithm}-`));
    if (found !== undefined) return found;
  }
  return hashes[0]!;
}

/** The packages `npm ci` installs: every one, or without `isDevIncluded` those not only for development. */
export function packagesToInstall(lock: NpmLock, isDevIncluded: boolean): NpmLockedPackage[] {
  return lock.packages.filter((item) => isDevIncluded || !item.isDev);
}
