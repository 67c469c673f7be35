/** The packages of a spec with a Debian package list: its lock file, and dpkg's database in the fragment it built. */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { BlobStore } from '../image/blob-store.js';
import { entriesOfTar, readEntryBytes, type TarEntry } from '../image/tar.js';
import { fetchLockPackages } from '../sources/debian/packages.js';
import { lockPathOf, readDebianLock, type LockedPackage } from '../sources/debian/lock.js';
import type { Spec } from '../sources/spec.js';
import { basename, dirname, join, relative } from 'node:path';
import { cacheDirFrom } from '../sources/store.js';
import { licenceOfCopyright, parseDeb822 } from './licence.js';
import { summaryOfDeb, type DebPackage, type PackageProvider } from './packages.js';

/** Options for debianLockProvider. */
export interface DebianLockProviderOptions {
  /** Source cache (the .debs and the package summaries); default cacheDirFrom(env). */
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Never download a .deb missing from the cache (ERR_SOURCE_UNREACHABLE). */
  isOffline?: boolean;
}

/** Debian 12's and its neighbours' codenames, for the purl's `distro`. */
const releaseOfCodename: Record<string, string> = { buster: '10', bullseye: '11', bookworm: '12', trixie: '13', forky: '14' };

/**
 * A PackageProvider for specs with a `packages` list (docs/debian.md). Every package of
 * the spec's lock (`NAME.lock.yaml`, read with readDebianLock) is one package: name,
 * version, architecture, source package, pin (the .deb's sha256) and `pulled-by` come
 * from the lock. What the image holds comes from dpkg's database in the spec's fragments
 * the image holds, then in its others as built (`NAME.fragment.tar`, else its
 * `NAME@LAYER.fragment.tar`s): `var/lib/dpkg/status` gives
 * the control fields, `info/PKG.list` (or `PKG:ARCH.list`) the package's paths, mapped
 * through the fragments' merged-/usr symlinks (`/bin/ls` → `usr/bin/ls`). The licence is
 * read from `/usr/share/doc/NAME/copyright` in the fragments, else from the .deb (cached, or
 * fetched unless offline) through the package summaries of `CACHE/inventory-v1/`. A
 * package is delivered when the fragment's status file lists it; without a fragment (a
 * spec never built), nothing is delivered and the control fields come from the .debs.
 * Specs without a package list give no packages. Throws ERR_DEBIAN_LOCK_MISSING /
 * ERR_DEBIAN_LOCK_INVALID, ERR_SOURCE_UNREACHABLE, ERR_INTEGRITY_MISMATCH, ERR_DEB_*.
 * Writes package summaries into the cache and removes its scratch folders.
 *
 * The answer is kept in `CACHE/inventory-v1/lock-packages/KEY.json`, KEY the sha256 of
 * the spec's path and text, the lock's bytes and the digest of each fragment read (as
 * the project's blob store remembers it from the fragment's rule, so the fragment is not
 * read for it); an image built again over the same build environment (whose packages
 * its SBOM lists), in this tree or a fresh one, does not parse the lock and read dpkg's
 * database again.
 */
export function debianLockProvider(options: DebianLockProviderOptions = {}): PackageProvider {
  const env = options.env ?? process.env;
  const cacheDir = options.cacheDir ?? cacheDirFrom(env);
  return {
    async packagesOf(spec: Spec, fragments: readonly string[] = []): Promise<DebPackage[]> {
      if (spec.packages === undefined) return [];
      const lockPath = lockPathOf(spec.path);
      const lockLabel = relative(spec.root, lockPath);
      // The image's own fragments first; then the spec's others as built (a database layer the image leaves out).
      const tars = [...new Set([...fragments, ...builtFragmentsOf(spec.path)])];
      const keptPath = keptAnswerPath(cacheDir, spec, lockPath, tars);
      const kept = keptPath === undefined ? undefined : readKeptAnswer(keptPath);
      if (kept !== undefined) return kept;
      const lock = await readDebianLock(lockPath, lockLabel);
      const database = tars.length > 0 ? readDpkgDatabase(tars) : undefined;
      const installedOf = new Map(lock.packages.map((locked) => [locked.name, database?.packageOf(locked)]));
      const copyrightPathOf = (locked: LockedPackage): string => `usr/share/doc/${locked.name}/copyright`;
      const copyrightOf = (locked: LockedPackage): string | undefined =>
        installedOf.get(locked.name) === undefined ? undefined : database!.textOf(copyrightPathOf(locked));
      const needingDeb = lock.packages.filter((locked) => copyrightOf(locked) === undefined);
      // One fetch for every .deb needed (a single `apt-get download` for those not cached), made only when a summary is missing.
      let fetched: Promise<Map<string, string>> | undefined;
      const debPathOf = (locked: LockedPackage) => async (): Promise<string> => {
        fetched ??= fetchLockPackages(lock, needingDeb, { cacheDir, lockLabel, env, isOffline: options.isOffline === true });
        return (await fetched).get(locked.name)!;
      };
      const out: DebPackage[] = [];
      for (const locked of lock.packages) {
        const installed = installedOf.get(locked.name);
        const copyrightPath = copyrightPathOf(locked);
        const copyright = copyrightOf(locked);
        const summary = copyright === undefined
          ? await summaryOfDeb({ cacheDir, integrity: locked.integrity, name: locked.name, label: `${locked.name}=${locked.version}`, debPath: debPathOf(locked) })
          : undefined;
        const control = new Map(installed?.control ?? summary!.control);
        // The lock names the source package even where the control file leaves it out (source = binary name).
        if (!control.has('source')) control.set('source', locked.source);
        const item: DebPackage = {
          name: locked.name,
          version: locked.version,
          architecture: locked.architecture,
          integrity: locked.integrity as DebPackage['integrity'],
          url: `deb:${locked.name}=${locked.version}?arch=${locked.architecture}`,
          spec: spec.relativePath,
          isDelivered: installed !== undefined,
          deliveredPaths: installed?.paths ?? new Set(),
          control,
          licence: copyright !== undefined ? licenceOfCopyright(copyright, `/${copyrightPath}`) : summary!.licence,
          pulledBy: locked.pulledBy.filter((name) => name !== 'requested'),
        };
        const release = releaseOfCodename[locked.suite.split('-')[0]!];
        if (release !== undefined) item.distro = `debian-${release}`;
        out.push(item);
      }
      if (keptPath !== undefined) keepAnswer(keptPath, out);
      return out;
    },
  };
}

/** Bumped when what packagesOf returns changes shape, so older answers are never misread. */
const keptAnswerFormat = 1;

/** Where packagesOf's answer for these inputs is kept, or undefined when one cannot be read (then nothing is kept). */
function keptAnswerPath(cacheDir: string, spec: Spec, lockPath: string, tars: readonly string[]): string | undefined {
  try {
    const hash = createHash('sha256').update(`redo-ts lock packages ${keptAnswerFormat}\0${spec.relativePath}\0${spec.text}\0`).update(readFileSync(lockPath));
    // A fragment's digest as its rule remembered it when writing it (read and hashed only when not).
    const store = BlobStore.ofProject(spec.root);
    for (const tar of tars) hash.update(`\0${relative(spec.root, tar)}\0${store.digestOf(tar)}`);
    return join(cacheDir, 'inventory-v1', 'lock-packages', `${hash.digest('hex')}.json`);
  } catch {
    return undefined;
  }
}

/** A kept answer, or undefined when there is none (or it cannot be read: then it is computed again). */
function readKeptAnswer(path: string): DebPackage[] | undefined {
  try {
    const rows = JSON.parse(readFileSync(path, 'utf8')) as Array<Omit<DebPackage, 'deliveredPaths' | 'control'> & { deliveredPaths: string[]; control: Array<[string, string]> }>;
    return rows.map((row) => ({ ...row, deliveredPaths: new Set(row.deliveredPaths), control: new Map(row.control) }));
  } catch {
    return undefined;
  }
}

/** Keeps `packages` at `path`, written beside and renamed, so a reader never sees half of it. Best effort. */
function keepAnswer(path: string, packages: readonly DebPackage[]): void {
  const rows = packages.map((item) => ({ ...item, deliveredPaths: [...item.deliveredPaths], control: [...item.control] }));
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(temporary, JSON.stringify(rows));
    renameSync(temporary, path);
  } catch {
    // A read-only cache: the answer is computed again next time.
  }
}

/** One package as dpkg's database in a fragment records it. */
interface InstalledRecord {
  /** Status fields, lower-case names. */
  control: Map<string, string>;
  /** Member paths (latin1 keys, no leading slash) of the package's files and folders in the fragment. */
  paths: Set<string>;
}

/** dpkg's database of one fragment tar, read once. */
interface DpkgDatabase {
  /** The locked package's record, or undefined when the status file does not list it as installed. */
  packageOf(locked: LockedPackage): InstalledRecord | undefined;
  /** A regular file's text (utf8), or undefined when the fragment has no such file. */
  textOf(memberPath: string): string | undefined;
}

/**
 * The fragments of a spec as built: `NAME.fragment.tar` when
 * there is one, else every `NAME@LAYER.fragment.tar` beside the spec; none when it was
 * never built.
 */
export function builtFragmentsOf(specPath: string): string[] {
  const whole = specPath.replace(/\.spec\.yaml$/, '.fragment.tar');
  if (existsSync(whole)) return [whole];
  const prefix = `${basename(specPath).replace(/\.spec\.yaml$/, '')}@`;
  let names: string[];
  try {
    names = readdirSync(dirname(specPath));
  } catch {
    return [];
  }
  return names.filter((name) => name.startsWith(prefix) && name.endsWith('.fragment.tar')).sort().map((name) => join(dirname(specPath), name));
}

/*
 * What is read (as dpkgDatabaseEntries writes it, and as dpkg leaves it), from the union
 * of the spec's fragments (with `layer`s, the database and the merged-/usr symlinks lie in
 * the spec's own layer, a package's files in its layer):
 *   var/lib/dpkg/status           one paragraph per package: Package, Status, Architecture, Depends, ...
 *   var/lib/dpkg/info/P.list      "/." then one absolute path per line, as the package names it
 *   var/lib/dpkg/info/P:A.list    the same, for Multi-Arch: same packages
 *   bin -> usr/bin, lib -> usr/lib, ...   top-level symlinks of merged-/usr
 */
function readDpkgDatabase(fragmentPaths: readonly string[]): DpkgDatabase {
  const byPath = new Map<string, TarEntry>();
  for (const fragmentPath of fragmentPaths) {
    for (const entry of entriesOfTar(fragmentPath)) {
      const key = entry.path.toString('latin1').replace(/\/+$/, '');
      // A folder repeated in each layer fragment is one folder; files are in one layer only.
      if (!byPath.has(key)) byPath.set(key, entry);
    }
  }
  const bytesOf = (memberPath: string): Buffer | undefined => {
    const entry = byPath.get(memberPath);
    return entry?.type === 'file' ? readBytes(entry) : undefined;
  };
  // merged-/usr: a top-level symlink `bin -> usr/bin` moves what a package lists under /bin.
  const moved = new Map<string, string>();
  for (const [path, entry] of byPath) {
    if (path.includes('/') || entry.type !== 'symlink') continue;
    const target = entry.linkTarget!.toString('latin1').replace(/^\/+/, '').replace(/\/+$/, '');
    if (target === `usr/${path}`) moved.set(path, target);
  }
  const memberOf = (listed: string): string => {
    const clean = listed.replace(/^\/+/, '').replace(/\/+$/, '');
    const top = clean.split('/')[0]!;
    const into = moved.get(top);
    return into === undefined ? clean : `${into}${clean.slice(top.length)}`;
  };
  // A symlinked folder on the way (usr/share/doc/libgcc-s1 -> gcc-12-base) is followed, a few hops at most.
  const resolveLinks = (memberPath: string): string => {
    let parts = memberPath.split('/');
    for (let hops = 0, at = 1; at <= parts.length && hops < 8; at += 1) {
      const entry = byPath.get(parts.slice(0, at).join('/'));
      if (entry?.type !== 'symlink') continue;
      const target = entry.linkTarget!.toString('latin1');
      const base = target.startsWith('/') ? [] : parts.slice(0, at - 1);
      parts = [...base, ...target.split('/').filter((part) => part !== '' && part !== '.'), ...parts.slice(at)];
      for (let i = parts.indexOf('..'); i >= 0; i = parts.indexOf('..')) parts.splice(Math.max(0, i - 1), i > 0 ? 2 : 1);
      hops += 1;
      at = 0;
    }
    return parts.join('/');
  };
  const status = new Map<string, Map<string, string>>();
  for (const paragraph of parseDeb822(bytesOf('var/lib/dpkg/status')?.toString('utf8') ?? '')) {
    if (!/ installed$/.test(paragraph.get('status') ?? '')) continue;
    status.set(`${paragraph.get('package')}:${paragraph.get('architecture')}`, paragraph);
  }
  return {
    packageOf(locked) {
      const control = status.get(`${locked.name}:${locked.architecture}`);
      if (control === undefined || control.get('version') !== locked.version) return undefined;
      const list = bytesOf(`var/lib/dpkg/info/${locked.name}:${locked.architecture}.list`) ?? bytesOf(`var/lib/dpkg/info/${locked.name}.list`) ?? Buffer.alloc(0);
      const paths = new Set<string>();
      for (const line of list.toString('latin1').split('\n')) {
        if (line === '' || line === '/.') continue;
        // dpkg writes path bytes as they are; redo-ts's writer encodes the latin1 key as
        // utf8. Either reading that names a member of the fragment is the member.
        for (const text of new Set([line, Buffer.from(line, 'latin1').toString('utf8')])) {
          const member = memberOf(text);
          if (byPath.has(member)) paths.add(byPath.get(member)!.path.toString('latin1'));
        }
      }
      return { control, paths };
    },
    textOf(memberPath) {
      return bytesOf(resolveLinks(memberPath))?.toString('utf8');
    },
  };
}

/** A regular file entry's bytes, content read from its tar by offset. */
function readBytes(entry: TarEntry): Buffer {
  return readEntryBytes(entry) ?? Buffer.alloc(0);
}
