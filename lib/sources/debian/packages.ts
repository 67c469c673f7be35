/** A spec's package list at build time: read and check its lock, fetch the locked .debs, assemble a Debian-looking rootfs. */

import { relative } from 'node:path';
import type { TarEntry } from '../../image/tar.js';
import { checkDebIdentity, fetchLockedPackages, identityOfDeb, type FetchPackagesOptions } from './fetch.js';
import { hostArchitecture } from './indexes.js';
import { checkLockCurrent, lockPathOf, mirrorsOfPackages, readDebianLock, type DebianLock, type LockedPackage } from './lock.js';
import type { PackageList } from './package-list.js';
import { assembleDebianRootfs } from './rootfs.js';
import type { MaintainerScriptReport } from './effects.js';
import type { HostTools } from './host-tools.js';

/** Options for buildDebianPackages. */
export interface DebianPackagesOptions {
  specPath: string;
  /** The spec relative to the project root, for messages. */
  specLabel: string;
  root: string;
  list: PackageList;
  cacheDir: string;
  env: NodeJS.ProcessEnv;
  isOffline: boolean;
  /** An empty scratch folder the caller removes after writing the entries. */
  scratch: string;
  mtimeSeconds: number;
  /** For an image of another architecture: the static busybox its postinsts run with (assembleDebianRootfs). */
  hostTools?: HostTools;
}

/** The packages' rootfs entries and what was done to make them. */
export interface DebianPackagesResult {
  /**
   * Entries with the package (or `dpkg`, `redo-ts`) they came from, and their layer when
   * the package list puts the package in one (undefined: the spec's layer).
   */
  entries: Array<{ entry: TarEntry; origin: string; layer?: string }>;
  packages: LockedPackage[];
  scripts: MaintainerScriptReport[];
  effects: string[];
  /** The lock file read, relative to the root. */
  lockPath: string;
}

/**
 * Reads only the lock beside the spec (never the indexes): ERR_DEBIAN_LOCK_MISSING,
 * ERR_DEBIAN_LOCK_STALE when the list changed since it was locked (the build never
 * changes a lock). Fetches each locked .deb by exact version (cache, else apt or the
 * lock's mirror; `REDO_TS_DEBIAN_MIRROR` overrides), checks it against the lock's
 * integrity and control fields, and assembles the rootfs (assembleDebianRootfs).
 */
export async function buildDebianPackages(options: DebianPackagesOptions): Promise<DebianPackagesResult> {
  const lockPath = lockPathOf(options.specPath);
  const lockLabel = relative(options.root, lockPath);
  const lock = await readDebianLock(lockPath, lockLabel);
  const architecture = options.list.architecture ?? await hostArchitecture(options.env);
  checkLockCurrent(lock, options.list, architecture, lockLabel, options.specLabel);
  // Cached packages are hashed as assembleDebianRootfs unpacks them, not in a pass before.
  const debs = await fetchLockPackages(lock, lock.packages, { cacheDir: options.cacheDir, lockLabel, isOffline: options.isOffline, env: options.env, shouldDeferCheck: true });
  const assembled = await assembleDebianRootfs({ lock, list: options.list, debs, scratch: options.scratch, mtimeSeconds: options.mtimeSeconds, env: options.env, lockLabel, cacheDir: options.cacheDir,
    ...(options.hostTools !== undefined ? { hostTools: options.hostTools } : {}),
  });
  const layers = packageLayers(lock, options.list);
  return {
    entries: assembled.entries.map((entry) => {
      const origin = assembled.origins.get(entry.path.toString('latin1')) ?? 'redo-ts';
      const layer = layers.get(origin);
      return layer === undefined ? { entry, origin } : { entry, origin, layer };
    }),
    packages: lock.packages,
    scripts: assembled.scripts,
    effects: assembled.effects,
    lockPath: lockLabel,
  };
}

/**
 * fetchLockedPackages for `packages` of `lock`, each from the mirror of the suite that
 * listed it (mirrorsOfPackages; `REDO_TS_DEBIAN_MIRROR` in `options.env` overrides), or
 * through apt when the lock has no mirror: one fetch per mirror, in the lock's order.
 */
export async function fetchLockPackages(lock: DebianLock, packages: readonly LockedPackage[], options: Omit<FetchPackagesOptions, 'mirror'>): Promise<Map<string, string>> {
  const mirrors = mirrorsOfPackages(lock, options.env?.REDO_TS_DEBIAN_MIRROR);
  const groups = new Map<string | undefined, LockedPackage[]>();
  for (const locked of packages) {
    const mirror = mirrors.get(locked.name);
    groups.set(mirror, [...(groups.get(mirror) ?? []), locked]);
  }
  const paths = new Map<string, string>();
  for (const [mirror, group] of groups) {
    for (const [name, path] of await fetchLockedPackages(group, { ...options, ...(mirror !== undefined ? { mirror } : {}) })) paths.set(name, path);
  }
  return paths;
}

/**
 * The layer of each locked package, for package lists that name layers: each listed
 * package with a `layer`, taken in list order, claims itself and every package its
 * dependencies pulled in (per the lock's pulled-by) that no earlier entry claimed.
 * Unclaimed packages, dpkg's database and generated files stay in the spec's layer.
 * Stable: a new version of a package changes only its own layer's files (and the
 * database in the spec's layer), as long as the dependency graph keeps its shape. Pure.
 */
export function packageLayers(lock: DebianLock, list: PackageList): Map<string, string> {
  const pulled = new Map<string, string[]>();
  for (const locked of lock.packages) {
    for (const by of locked.pulledBy) pulled.set(by, [...(pulled.get(by) ?? []), locked.name]);
  }
  const layers = new Map<string, string>();
  for (const entry of list.entries) {
    if (entry.layer === undefined || layers.has(entry.relation.name)) continue;
    const queue = lock.packages.some((p) => p.name === entry.relation.name) ? [entry.relation.name] : [];
    while (queue.length > 0) {
      const name = queue.shift()!;
      if (layers.has(name)) continue;
      layers.set(name, entry.layer);
      queue.push(...(pulled.get(name) ?? []).filter((next) => !layers.has(next)));
    }
  }
  return layers;
}

/**
 * Checks a `deb:` source's bytes against the package its url names (Package, Version,
 * and Architecture when the url gives one). Throws ERR_DEB_CONTROL_MISMATCH.
 */
export async function checkDebSourceIdentity(path: string, deb: { package: string; version: string; arch?: string }, subject: string, integrity: string): Promise<void> {
  const found = await identityOfDeb(path, `${deb.package}=${deb.version}`);
  checkDebIdentity(found, { name: deb.package, version: deb.version, architecture: deb.arch ?? found.architecture }, subject, integrity);
}
