/** The platforms of a multi-arch image get the same Debian package versions: differences found from the locks, reported by `lock`, refused by a build unless allowed by name. */

import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { RedoError } from '../../errors.js';
import { lockPathOf, readDebianLock, type DebianLock } from './lock.js';

/** One package whose version is not the same on every platform that has it. */
export interface VersionDifference {
  name: string;
  /** `version (ARCH)` per platform that has the package, in the order given. */
  versions: Array<{ architecture: string; version: string }>;
}

/**
 * The packages locked with different versions for different architectures, by name
 * (sorted). Packages only one platform has (its loader, libmvec) are not differences.
 * `locks` are the locks of one image's platforms (or of one spec family). Pure.
 */
export function versionDifferences(locks: ReadonlyArray<{ architecture: string; lock: DebianLock }>): VersionDifference[] {
  const byName = new Map<string, Array<{ architecture: string; version: string }>>();
  for (const { architecture, lock } of locks) {
    for (const locked of lock.packages) byName.set(locked.name, [...(byName.get(locked.name) ?? []), { architecture, version: locked.version }]);
  }
  return [...byName.entries()]
    .filter(([, versions]) => new Set(versions.map((v) => v.version)).size > 1)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, versions]) => ({ name, versions }));
}

/** `libssl3: 3.0.17-1~deb12u2 (amd64), 3.0.16-1~deb12u1 (arm64)`. */
export function formatVersionDifference(difference: VersionDifference): string {
  return `${difference.name}: ${difference.versions.map((v) => `${v.version} (${v.architecture})`).join(', ')}`;
}

/**
 * Checks the Debian packages of a multi-platform image: for each platform, the locks of
 * the specs whose fragments are its layers (`folder`-relative paths; NAME@LAYER counts as
 * NAME); a package whose version differs between platforms fails the build with
 * ERR_DEBIAN_PLATFORM_VERSIONS unless `allowed` names it. Reads the locks only.
 */
export async function checkPlatformVersions(platforms: ReadonlyArray<{ architecture: string; layers: readonly string[] }>, folder: string, root: string, allowed: readonly string[], subject: string): Promise<void> {
  if (platforms.length < 2) return;
  const locks: Array<{ architecture: string; lock: DebianLock }> = [];
  for (const platform of platforms) {
    const merged: DebianLock['packages'] = [];
    for (const layer of platform.layers) {
      if (!layer.endsWith('.fragment.tar')) continue;
      const lockPath = lockPathOf(join(folder, layer.replace(/(@[^/]*)?\.fragment\.tar$/, '.spec.yaml')));
      if (!existsSync(lockPath)) continue;
      merged.push(...(await readDebianLock(lockPath, relative(root, lockPath))).packages);
    }
    locks.push({ architecture: platform.architecture, lock: { packages: merged } as DebianLock });
  }
  const refused = versionDifferences(locks).filter((difference) => !allowed.includes(difference.name));
  if (refused.length === 0) return;
  throw new RedoError('ERR_DEBIAN_PLATFORM_VERSIONS', `redo: ${subject}: ${refused.length === 1 ? 'a package has' : `${refused.length} packages have`} different versions on the image's platforms`, {
    details: refused.map(formatVersionDifference),
    hint: 'lock every architecture from the same suites (redo-ts lock reads them all), or accept the difference with `allowVersionDifferences: [NAME]` in the image description',
  });
}
