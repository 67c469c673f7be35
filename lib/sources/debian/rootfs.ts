/** A locked package list turned into rootfs entries that look like Debian: merged-/usr, dpkg's database, maintainer-script effects. */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { RedoError } from '../../errors.js';
import { entriesOfTar, pathText, readEntryBytes, writeTar, type TarEntry } from '../../image/tar.js';
import { readDebEntries } from '../deb.js';
import { compileGlob } from '../glob.js';
import type { Integrity } from '../integrity.js';
import { damagedEntryError, dropFromStore, findInStore, findKeyedInStore, insertKeyedIntoStore } from '../store.js';
import { parseParagraphs, readDebControl } from './control.js';
import { dpkgDatabaseEntries, infoNameOf, type InstalledPackage } from './dpkg-database.js';
import { alternativesEntries, baseFilesEntries, tzdataEntries, parseAlternatives, reportScripts, systemdEnablementEntries, sysvInitLinkEntries, userEntries, type AlternativeInstall, type MaintainerScriptReport } from './effects.js';
import { alternativesOfCalls, diversionsOfCalls, enabledUnitsOfCalls, preinstFilesOfCalls, recordPostinstCalls, symlinksOfCalls, type ScriptCall } from './script-calls.js';
import { caCertificateEntries } from './ca-certificates.js';
import { checkLockClosed } from './closure.js';
import { addAccount, parseAccounts, readScriptActions } from './script-actions.js';
import { parseRelations } from './version.js';
import { writeLdCache, type LdCacheImage } from './ld-cache.js';
import { checkDebIdentity } from './fetch.js';
import { hostArchitecture } from './indexes.js';
import { machineArchitecture } from '../fragment-cache.js';
import type { HostTools } from './host-tools.js';
import { firstCertificateOfPem, writeJavaKeystore } from './java-keystore.js';
import { pamAuthUpdateFiles, type PamFiles } from './pam-configs.js';
import type { DebianLock } from './lock.js';
import type { PackageList } from './package-list.js';

/** Options for assembleDebianRootfs. */
export interface AssembleOptions {
  lock: DebianLock;
  list: PackageList;
  /**
   * Cached .deb path of every locked package, by name, not yet hashed: each is hashed
   * against its lock integrity in the pass that unpacks it (readDebEntries).
   */
  debs: ReadonlyMap<string, string>;
  /** A scratch folder the caller owns and removes after the entries are written. */
  scratch: string;
  mtimeSeconds: number;
  env: NodeJS.ProcessEnv;
  /** The lock file, relative to the project root, for messages. */
  lockLabel: string;
  /** The download cache: generated effects (ld.so.cache, pycs) are kept there by a key of their inputs. */
  cacheDir: string;
  /**
   * For an image of another architecture than the machine's: the build environment's
   * static busybox the postinsts run with (without it they are not run).
   */
  hostTools?: HostTools;
}

/** What assembleDebianRootfs produced. */
export interface AssembledRootfs {
  /** Every member, unsorted; file content points into the scratch folder. */
  entries: TarEntry[];
  /** The package each member came from (`dpkg`, `redo-ts` for generated ones), by member path. */
  origins: Map<string, string>;
  /** Install-time maintainer scripts not run, with the effects reproduced. */
  scripts: MaintainerScriptReport[];
  /** Generated effects, for logs: `ld.so.cache`, `N .pyc files`, `alternatives: awk`. */
  effects: string[];
}

/**
 * Top-level folders that are symlinks into /usr on Debian 12 (merged-/usr): /bin, /lib
 * and /sbin always, and each other /lib* folder (lib64, lib32, …) some package ships, as
 * the usrmerge conversion (and mmdebstrap) leaves them. `shipped` are top-level names.
 */
export function mergedUsrFolders(shipped: Iterable<string>): string[] {
  const extra = [...shipped].filter((name) => /^lib(32|64|x32|o32)$/.test(name));
  return [...new Set(['bin', 'lib', 'sbin', ...extra])].sort();
}

/** Maps a member path to where it lands on a merged-/usr system: `bin/sh` → `usr/bin/sh`. */
function mergedUsrMapper(folders: readonly string[]): (path: string) => string {
  return (path) => {
    const clean = path.replace(/^\/+/, '');
    const top = clean.split('/')[0]!;
    return folders.includes(top) ? `usr/${clean}` : clean;
  };
}

function readContent(entry: TarEntry): Buffer {
  const bytes = readEntryBytes(entry);
  if (bytes === undefined) throw new Error('streamed content is not expected in a package');
  return bytes;
}

/**
 * Unpacks every locked package (in name order) into entries as dpkg would install them on
 * Debian 12: each .deb's control fields must match the lock (ERR_DEB_CONTROL_MISMATCH);
 * files matching the list's global or per-package `exclude` are left out; paths under
 * /bin, /sbin, /lib* land under /usr, whose folders become symlinks; dpkg's database
 * records exactly the packages and files delivered; the lock must hold every package's
 * Depends and Pre-Depends (ERR_DEBIAN_LOCK_INCOMPLETE names what is missing). Then, declaratively: /etc/passwd and
 * /etc/group from base-passwd, alternatives from postinst `update-alternatives --install`
 * calls, ld.so.cache from the ELF files (writeLdCache), and, on an unpacked copy in the scratch folder, the
 * byte-compiled standard library and dist-packages (the image's own python3, under
 * `unshare -r chroot`, unchecked-hash pycs, PYTHONHASHSEED=0). Throws ERR_FRAGMENT_CONFLICT
 * when two packages deliver one file, ERR_SPEC_BUILD_FAILED when python fails.
 */
export async function assembleDebianRootfs(options: AssembleOptions): Promise<AssembledRootfs> {
  const { lock, list } = options;
  const globalExclude = list.exclude.map(compileGlob);
  const byPath = new Map<string, TarEntry>();
  const origins = new Map<string, string>();
  const installed: InstalledPackage[] = [];
  const literalAlternatives: AlternativeInstall[] = [];
  await mkdir(join(options.scratch, 'deb'), { recursive: true });

  // The control members first (small): the lock must be closed under the packages' own dependencies.
  const controlMembers = new Map<string, Awaited<ReturnType<typeof readDebControl>>>();
  const damagedError = (locked: (typeof lock.packages)[number], lookup: { path: string; found: Integrity }): Error =>
    damagedEntryError(`redo: "${options.lockLabel}": package ${locked.name} ${locked.version}`, locked.integrity as Integrity, lookup,
      'run once online to fetch the locked package again, or import it with `redo-ts cache add FILE.deb`');
  try {
    for (const locked of lock.packages) controlMembers.set(locked.name, await readDebControl(options.debs.get(locked.name)!, `${locked.name}=${locked.version}`));
    checkLockClosed(lock, new Map([...controlMembers].map(([name, members]) => [name, parseParagraphs(members.get('control')?.toString('utf8') ?? '')[0] ?? new Map<string, string>()])),
      options.lockLabel, options.lockLabel.replace(/\.lock\.yaml$/, '.spec.yaml'));
  } catch (cause) {
    // The control members were read before the packages were proved (that happens as
    // their data is unpacked, below): on this failure path only, hash them, so a damaged
    // cache entry is named as such rather than blamed on the lock or the package.
    for (const locked of lock.packages) {
      const lookup = await findInStore(options.cacheDir, locked.integrity as Integrity);
      if (lookup.kind === 'damaged') throw damagedError(locked, lookup);
    }
    throw cause;
  }
  // Decompressing is the slow part (xz in a child process): two packages at a time, results used in lock order.
  const unpacked = mapLimited(lock.packages, 2, async (locked) => {
    const path = options.debs.get(locked.name)!;
    const label = `${locked.name}=${locked.version}`;
    // Hashed against the lock in the pass that unpacks it: a damaged entry is dropped (buildFragment then builds again, fetching it anew).
    const check = {
      integrity: locked.integrity,
      onMismatch: async (found: string): Promise<Error> => {
        await dropFromStore(options.cacheDir, locked.integrity as Integrity, path);
        return damagedError(locked, { path, found: found as Integrity });
      },
    };
    return { members: controlMembers.get(locked.name)!, entries: await readDebEntries(path, label, join(options.scratch, 'deb', `${locked.name}.tar`), check) };
  });
  const all = [];
  for (const promise of unpacked) all.push(await promise);
  const folders = mergedUsrFolders(new Set(all.flatMap(({ entries }) => entries.map((entry) => entry.path.toString('latin1').split('/')[0]!))));
  const mapPath = mergedUsrMapper(folders);
  for (const [index, locked] of lock.packages.entries()) {
    const { members, entries } = all[index]!;
    const control = parseParagraphs(members.get('control')!.toString('utf8'))[0] ?? new Map<string, string>();
    checkDebIdentity(
      { name: control.get('Package') ?? '', version: control.get('Version') ?? '', architecture: control.get('Architecture') ?? '' },
      { name: locked.name, version: locked.version, architecture: locked.architecture },
      `"${options.lockLabel}": package ${locked.name}`, locked.integrity,
    );
    const own = list.entries.find((entry) => entry.relation.name === locked.name)?.exclude.map(compileGlob) ?? [];
    const isExcluded = (imagePath: string): boolean => globalExclude.some((match) => match(imagePath)) || own.some((match) => match(imagePath));
    const byOriginal = new Map(entries.map((entry) => [entry.path.toString('latin1'), entry]));
    const kept = entries.filter((entry) => !isExcluded(`/${pathText(entry.path)}`));
    const keptNames = new Set(kept.map((entry) => entry.path.toString('latin1')));
    const listedPaths: string[] = [];
    const conffileMd5 = new Map<string, string>();
    const conffiles = new Set((members.get('conffiles')?.toString('utf8') ?? '').split('\n').map((line) => line.trim()));
    for (const entry of kept) {
      const original = entry.path.toString('latin1');
      listedPaths.push(`/${original}`);
      let placed: TarEntry = { ...entry, path: Buffer.from(mapPath(original), 'latin1') };
      if (entry.type === 'hardlink') {
        const target = entry.linkTarget!.toString('latin1');
        // A hardlink to an excluded file becomes a copy of it: the name must still work.
        // (A target missing from the package stays a hardlink: writing it reports the error.)
        const targetEntry = byOriginal.get(target);
        placed = keptNames.has(target) || targetEntry === undefined
          ? { ...placed, linkTarget: Buffer.from(mapPath(target), 'latin1') }
          : { ...placed, type: 'file', linkTarget: undefined, sizeBytes: targetEntry.sizeBytes, content: targetEntry.content } as TarEntry;
      }
      if (conffiles.has(`/${original}`) && placed.type === 'file') conffileMd5.set(`/${original}`, createHash('md5').update(readContent(placed)).digest('hex'));
      const key = placed.path.toString('latin1');
      if (folders.includes(key)) continue;
      const previous = byPath.get(key);
      if (previous !== undefined) {
        if (previous.type === 'directory' && placed.type === 'directory') continue;
        throw new RedoError('ERR_FRAGMENT_CONFLICT', `redo: "/${pathText(placed.path)}": delivered by two packages of "${options.lockLabel}"`, {
          details: [`first:  ${origins.get(key)} (${previous.type})`, `second: ${locked.name} (${placed.type})`],
          hint: 'exclude the path from one of the packages in the spec\'s package list',
        });
      }
      byPath.set(key, placed);
      origins.set(key, locked.name);
    }
    installed.push({ name: locked.name, architecture: locked.architecture, control, members, listedPaths, conffileMd5 });
    const postinst = members.get('postinst');
    if (postinst !== undefined) literalAlternatives.push(...parseAlternatives(postinst.toString('utf8'), locked.name));
  }

  const generated: TarEntry[] = [];
  const effects: string[] = [];
  for (const top of folders) {
    generated.push({ path: Buffer.from(top), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from(`usr/${top}`) });
    if (!byPath.has(`usr/${top}`)) generated.push({ path: Buffer.from(`usr/${top}`), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 });
  }
  const exists = (imagePath: string): boolean => byPath.has(mapPath(imagePath));
  const read = (member: string): Buffer | undefined => {
    const entry = byPath.get(member);
    return entry?.type === 'file' ? readContent(entry) : undefined;
  };
  const readWithMode = (member: string): { bytes: Buffer; mode: number } | undefined => {
    const entry = byPath.get(member);
    return entry?.type === 'file' ? { bytes: readContent(entry), mode: entry.mode } : undefined;
  };
  const baseFiles = baseFilesEntries(readWithMode, (member) => byPath.has(member));
  if (baseFiles.length > 0) effects.push('base-files folders, dotfiles and symlinks');
  generated.push(...baseFiles);
  const timezone = tzdataEntries((member) => byPath.has(member));
  if (timezone.length > 0) effects.push('time zone Etc/UTC');
  generated.push(...timezone);
  const pythonLocal = [...byPath.keys()].filter((key) => /^usr\/lib\/python3\.[0-9]+$/.test(key)).sort()
    .flatMap((key) => [`usr/local/lib/${key.slice('usr/lib/'.length)}`, `usr/local/lib/${key.slice('usr/lib/'.length)}/dist-packages`])
    .map((path): TarEntry => ({ path: Buffer.from(path), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 }));
  generated.push(...pythonLocal);
  if (!byPath.has('etc/passwd')) {
    const users = userEntries(read);
    if (users.length > 0) effects.push('users and groups from base-passwd');
    generated.push(...users);
  }
  generated.push(...dpkgDatabaseEntries(installed));
  for (const entry of generated) {
    const key = entry.path.toString('latin1');
    if (byPath.has(key) && entry.type === 'directory') continue;
    byPath.set(key, entry);
    origins.set(key, key.startsWith('var/lib/dpkg/') ? 'dpkg' : 'redo-ts');
  }
  effects.push(...applyScriptActions(installed, byPath, origins, mapPath, options.mtimeSeconds));

  const order = configureOrder(installed);
  const postinsts = order.filter((pkg) => pkg.members.has('postinst')).map((pkg) => ({ package: pkg.name, infoName: infoNameOf(pkg) }));
  const preinsts = order.filter((pkg) => pkg.members.has('preinst')).map((pkg) => ({ package: pkg.name, infoName: infoNameOf(pkg) }));
  const onDisk = await cachedEffects([...byPath.values()], options, exists, postinsts, preinsts);
  for (const entry of onDisk.entries) {
    const key = entry.path.toString('latin1');
    if (byPath.has(key)) continue;
    byPath.set(key, entry);
    origins.set(key, 'redo-ts');
  }
  effects.push(...onDisk.effects);

  // What the postinsts called (recorded in the sandbox), else the literal calls read from their text.
  const calls = onDisk.calls;
  const alternatives = calls !== undefined ? alternativesOfCalls(calls) : literalAlternatives;
  const readText = (imagePath: string): string | undefined => {
    const entry = byPath.get(mapPath(imagePath));
    return entry?.type === 'file' ? readContent(entry).toString('utf8') : undefined;
  };
  const recorded = [
    ...alternativesEntries(alternatives, exists, mapPath),
    ...systemdEnablementEntries((calls === undefined ? [] : enabledUnitsOfCalls(calls)).map((call) => call.unit), readText),
    // update-rc.d links its scripts itself only where insserv is not installed.
    ...(exists('/usr/lib/insserv/insserv') || exists('/sbin/insserv') ? [] : sysvInitLinkEntries(
      (calls ?? []).filter((call) => call.argv[0] === 'update-rc.d').map((call) => call.argv.slice(1)), readText,
      (name) => [...byPath.keys()].some((key) => /^etc\/rc.\.d\/[SK][0-9][0-9]/.test(key) && key.slice('etc/rcX.d/SNN'.length) === name),
    )),
    ...(calls === undefined ? [] : symlinksOfCalls(calls))
      .filter((link) => byPath.get(mapPath(parentOf(link.path)))?.type === 'directory')
      .map((link): TarEntry => ({ path: Buffer.from(mapPath(link.path), 'latin1'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from(link.target, 'latin1') })),
  ];
  if (calls !== undefined) {
    const diversions = Buffer.from(diversionsOfCalls(calls));
    recorded.push({ path: Buffer.from('var/lib/dpkg/diversions'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: diversions.length, content: { kind: 'buffer', bytes: diversions } });
  }
  const alternativeNames = recorded.filter((e) => e.path.toString().startsWith('var/lib/dpkg/alternatives/')).map((e) => e.path.toString().split('/').pop()!);
  if (alternativeNames.length > 0) effects.push(`alternatives: ${alternativeNames.join(', ')}`);
  const units = recorded.filter((e) => /^var\/lib\/systemd\/deb-systemd-helper-enabled\/[^/]+\.dsh-also$/.test(e.path.toString('latin1')));
  if (units.length > 0) effects.push(`systemd units enabled: ${units.map((e) => e.path.toString('latin1').split('/').pop()!.replace(/\.dsh-also$/, '')).join(', ')}`);
  for (const entry of recorded) {
    const key = entry.path.toString('latin1');
    // A path a package or an earlier effect delivered stays (ln -s fails on it; update-alternatives owns its own files).
    if (byPath.has(key) && !key.startsWith('var/lib/dpkg/alternatives/') && key !== 'var/lib/dpkg/diversions') continue;
    for (const folder of foldersAbove(key)) {
      if (byPath.has(folder)) continue;
      byPath.set(folder, { path: Buffer.from(folder, 'latin1'), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 });
      origins.set(folder, 'redo-ts');
    }
    byPath.set(key, entry);
    origins.set(key, key.startsWith('var/lib/dpkg/') ? 'dpkg' : 'redo-ts');
  }

  const keystore = javaKeystoreOf(byPath, mapPath, options.mtimeSeconds);
  if (keystore !== undefined) {
    byPath.set(keystore.path.toString('latin1'), keystore);
    origins.set(keystore.path.toString('latin1'), 'redo-ts');
    // The trigger removes its markers once the keystore is made (the conversion marker is
    // only touched where an old keystore exists: read as if, it is one too).
    for (const marker of ['fresh', 'pending', 'convert_pkcs12_keystore_to_jks']) byPath.delete(`var/lib/ca-certificates-java/${marker}`);
    effects.push('Java keystore /etc/ssl/certs/java/cacerts');
  }

  const ldCache = writeLdCache(ldCacheImageOf(byPath), lock.architecture);
  byPath.set('etc/ld.so.cache', { path: Buffer.from('etc/ld.so.cache'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: ldCache.bytes.length, content: { kind: 'buffer', bytes: ldCache.bytes } });
  origins.set('etc/ld.so.cache', 'redo-ts');
  effects.push(`ld.so.cache (${ldCache.entries.length} libraries)`);

  const hasPython = exists('/usr/bin/python3');
  const scripts = reportScripts(installed, [
    { effect: 'users and groups from base-passwd', matches: (pkg) => pkg === 'base-passwd' },
    { effect: 'time zone Etc/UTC', matches: (pkg, _text, script) => pkg === 'tzdata' && script === 'postinst' },
    { effect: 'base-files folders, dotfiles and symlinks', matches: (pkg, text) => pkg === 'base-files' && text.includes('install_directory') },
    { effect: 'alternatives', matches: (pkg) => alternatives.some((alt) => alt.package === pkg) },
    { effect: 'systemd units enabled', matches: (pkg, _text, script) => script === 'postinst' && calls !== undefined && enabledUnitsOfCalls(calls).some((call) => call.package === pkg) },
    { effect: 'init script links', matches: (pkg, _text, script) => script === 'postinst' && (calls ?? []).some((call) => call.package === pkg && call.argv[0] === 'update-rc.d') },
    { effect: 'symlinks', matches: (pkg, _text, script) => script === 'postinst' && calls !== undefined && symlinksOfCalls(calls).some((call) => call.package === pkg) },
    { effect: 'ld.so.cache', matches: (_pkg, text, script) => script === 'postinst' && /^\s*ldconfig\b|\bldconfig$/m.test(text) },
    { effect: 'commands: users, owners, modes, files', matches: (pkg, text, script) => script === 'postinst' && !ownCodeEffects.includes(pkg) && readScriptActions(text).length > 0 },
    { effect: 'PAM configuration', matches: (pkg, _text, script) => pkg === 'libpam-runtime' && script === 'postinst' && exists('/etc/pam.d/common-auth') },
    { effect: 'CA certificates', matches: (pkg, _text, script) => pkg === 'ca-certificates' && script === 'postinst' && exists('/usr/sbin/update-ca-certificates') },
    { effect: 'byte-compiled Python', matches: (_pkg, text) => hasPython && /\b(py3compile|pycompile)\b/.test(text) },
  ]);
  return { entries: [...byPath.values()], origins, scripts, effects };
}

/** Bumped whenever what runOnUnpackedRoot generates changes, so old cache entries are not reused. */
const effectsFormat = 11;

/**
 * The generated effects (ld.so.cache, pycs) for these packages: from the cache when the
 * same packages (by integrity) with the same excludes were built before, since they
 * determine the unpacked tree completely; else made by runOnUnpackedRoot and cached.
 */
async function cachedEffects(entries: TarEntry[], options: AssembleOptions, exists: (path: string) => boolean, postinsts: PostinstOrder, preinsts: PostinstOrder): Promise<{ entries: TarEntry[]; effects: string[]; calls?: ScriptCall[] }> {
  const inputs = {
    format: effectsFormat,
    architecture: options.lock.architecture,
    packages: options.lock.packages.map((p) => [p.name, p.integrity]),
    exclude: options.list.exclude,
    own: options.list.entries.filter((e) => e.exclude.length > 0).map((e) => [e.relation.name, e.exclude]),
    // Whether the postinsts can run here (runOnUnpackedRoot), and with which shell, decides what is recorded.
    isRecorded: options.lock.architecture === await machineArchitecture(options.env, options.cacheDir) ? true : options.hostTools === undefined ? false : `busybox ${options.hostTools.sha256}`,
  };
  const key = `redo-ts:debian-effects:${createHash('sha256').update(JSON.stringify(inputs)).digest('hex')}`;
  const hit = await findKeyedInStore(options.cacheDir, key);
  if (hit !== undefined) {
    try {
      const metadata = hit.metadata as { effects: string[]; calls?: ScriptCall[] };
      return { entries: entriesOfTar(hit.path), effects: metadata.effects, ...(metadata.calls !== undefined ? { calls: metadata.calls } : {}) };
    } catch {
      // A damaged entry is rebuilt below.
    }
  }
  const made = await runOnUnpackedRoot(entries, options, exists, postinsts, preinsts);
  const tarPath = join(options.scratch, 'effects.tar');
  await writeTar(made.entries, tarPath, { mtimeSeconds: 0, label: 'generated effects' });
  const stored = await insertKeyedIntoStore(options.cacheDir, key, tarPath, { effects: made.effects, ...(made.calls !== undefined ? { calls: made.calls } : {}) });
  return { entries: entriesOfTar(stored), effects: made.effects, ...(made.calls !== undefined ? { calls: made.calls } : {}) };
}

/**
 * What ca-certificates-java's trigger makes on a fresh install (update_cacerts with the
 * `fresh` marker its postinst touches): /etc/ssl/certs/java/cacerts holding, as
 * `debian:NAME.pem` (lowercased), the first certificate of every /etc/ssl/certs/NAME.pem
 * link into /usr/share/ca-certificates or /usr/local/share/ca-certificates, under the store
 * password of /etc/default/cacerts (`changeit`), written by writeJavaKeystore. Undefined
 * without ca-certificates-java's jar, without a `java` command (/usr/bin/java), or when
 * /etc/default/cacerts turns updates off.
 */
function javaKeystoreOf(byPath: ReadonlyMap<string, TarEntry>, mapPath: (path: string) => string, mtimeSeconds: number): TarEntry | undefined {
  if (!byPath.has('usr/share/ca-certificates-java/ca-certificates-java.jar') || !byPath.has('usr/bin/java')) return undefined;
  const defaults = byPath.get('etc/default/cacerts');
  const settings = defaults?.type === 'file' ? readContent(defaults).toString('utf8') : '';
  const setting = (name: string): string | undefined => new RegExp(`^\\s*${name}=["']?([^"'\\s]*)`, 'm').exec(settings)?.[1];
  if ((setting('cacerts_updates') ?? 'yes') !== 'yes') return undefined;
  const certificates = [];
  for (const [key, entry] of byPath) {
    if (!/^etc\/ssl\/certs\/[^/]+\.pem$/.test(key) || entry.type !== 'symlink') continue;
    const target = entry.linkTarget!.toString('latin1');
    if (!/^\/usr\/(local\/)?share\/ca-certificates\//.test(target)) continue;
    const file = byPath.get(mapPath(target));
    const der = file?.type === 'file' ? firstCertificateOfPem(readContent(file).toString('latin1')) : undefined;
    // Member paths are the names' bytes as latin1; Java reads the name as UTF-8.
    if (der !== undefined) certificates.push({ alias: `debian:${Buffer.from(key.split('/').pop()!, 'latin1').toString('utf8').toLowerCase()}`, der });
  }
  if (certificates.length === 0) return undefined;
  const bytes = writeJavaKeystore(certificates, setting('storepass') ?? 'changeit', mtimeSeconds);
  return { path: Buffer.from('etc/ssl/certs/java/cacerts'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'buffer', bytes } };
}

/** The packages with a postinst, in dpkg's configure order, with their info names. */
type PostinstOrder = ReadonlyArray<{ package: string; infoName: string }>;

function parentOf(path: string): string {
  return path.replace(/^\/+/, '').split('/').slice(0, -1).join('/');
}

/** The folders above a member path, outermost first: `a/b/c` gives `a`, `a/b`. */
function foldersAbove(path: string): string[] {
  const parts = path.split('/').slice(0, -1);
  return parts.map((_part, index) => parts.slice(0, index + 1).join('/'));
}

/**
 * Writes the entries to a tar, unpacks it, runs python's compileall on the copy, makes the
 * CA certificates' files from it, and last records what the postinsts call
 * (recordPostinstCalls: only when the image's architecture is the machine's, whose
 * processor runs the image's /bin/sh; otherwise `calls` is undefined).
 */
async function runOnUnpackedRoot(entries: TarEntry[], options: AssembleOptions, exists: (path: string) => boolean, postinsts: PostinstOrder, preinsts: PostinstOrder): Promise<{ entries: TarEntry[]; effects: string[]; calls?: ScriptCall[] }> {
  const root = join(options.scratch, 'root');
  await mkdir(root);
  const tarPath = join(options.scratch, 'root.tar');
  await writeTar(entries, tarPath, { mtimeSeconds: options.mtimeSeconds, label: `"${options.lockLabel}" (packages)` });
  await runTool(options, 'unpack the packages', 'tar', ['-xf', tarPath, '-C', root, '--no-same-owner', '--delay-directory-restore']);
  // ldconfig writes /etc/ld.so.cache~ first: a list of static binaries (busybox-static) ships no /etc.
  await mkdir(join(root, 'etc'), { recursive: true });
  const out: TarEntry[] = [];
  const effects: string[] = [];
  const inChroot = ['unshare', '-r', (await which('chroot', options.env)) ?? '/usr/sbin/chroot', root];
  const chrootEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', SOURCE_DATE_EPOCH: String(options.mtimeSeconds), PYTHONHASHSEED: '0', HOME: '/' };

  const host = await hostArchitecture(options.env);
  const isForeign = options.lock.architecture !== host;
  // The image's python compiles: one of another architecture cannot run here.
  if (exists('/usr/bin/python3') && isForeign) effects.push(`no byte-compiled Python: the image's python3 is ${options.lock.architecture}, this machine ${host}`);
  if (exists('/usr/bin/python3') && !isForeign) {
    const known = new Set(entries.map((entry) => entry.path.toString('latin1')));
    const folders = (await readdir(join(root, 'usr/lib'))).filter((name) => /^python3(\.[0-9]+)?$/.test(name)).sort().map((name) => `/usr/lib/${name}`);
    if (exists('/usr/share/python3')) folders.push('/usr/share/python3');
    await runTool(options, 'byte-compile Python', 'env', [
      '-i', ...Object.entries(chrootEnv).map(([k, v]) => `${k}=${v}`), ...inChroot,
      '/usr/bin/python3', '-E', '-s', '-B', '-m', 'compileall', '-q', '-f', '--invalidation-mode', 'unchecked-hash',
      // Only the files written not to compile are skipped (as Debian's py3compile does).
      '-x', 'lib2to3/tests/data|/bad_coding|badsyntax|/test/test_lib2to3/data', ...folders,
    ]);
    let count = 0;
    for (const folder of folders) {
      for (const path of await walk(root, folder.slice(1))) {
        if (known.has(path)) continue;
        const stats = await lstat(join(root, path));
        if (stats.isDirectory()) out.push({ path: Buffer.from(path), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 });
        else if (stats.isFile()) {
          count += 1;
          out.push({ path: Buffer.from(path), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: stats.size, content: { kind: 'path', path: join(root, path) } });
        } else if (stats.isSymbolicLink()) {
          out.push({ path: Buffer.from(path), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from(await readlink(join(root, path))) });
        }
      }
    }
    effects.push(`${count} byte-compiled Python files`);
  }
  const certificates = await caCertificateEntries(root, options.scratch, options.env);
  if (certificates.length > 0) {
    out.push(...certificates);
    effects.push(`CA certificates: ${certificates.filter((e) => /\.pem$/.test(e.path.toString('latin1'))).length} in /etc/ssl/certs/ca-certificates.crt`);
  }
  // Before the postinsts are recorded: that replaces debconf's confmodule in the copy.
  if (exists('/usr/sbin/pam-auth-update') && exists('/usr/bin/perl') && exists('/usr/share/debconf/confmodule')) {
    const known = new Set(entries.map((entry) => entry.path.toString('latin1')));
    if (!isForeign) {
      out.push(...await pamAuthUpdateEntries(root, options, inChroot, chrootEnv, known));
      effects.push('PAM configuration (pam-auth-update)');
    } else {
      // The image's Perl cannot run here: the same files from redo-ts's port of the script.
      const ported = await pamAuthUpdateFiles(root);
      if (typeof ported === 'string') effects.push(`no PAM configuration: pam-auth-update's result is not computed for a ${options.lock.architecture} image here: ${ported}`);
      else {
        out.push(...portedPamEntries(ported, known));
        effects.push(`PAM configuration (pam-auth-update's result computed by redo-ts: the image is ${options.lock.architecture}, this machine ${host})`);
      }
    }
  }
  // Last: it changes the copy (debconf's confmodule, mount points, another architecture's programs).
  if (isForeign && options.hostTools === undefined) {
    if (postinsts.length > 0) {
      effects.push(`postinsts not run: the image is ${options.lock.architecture}, this machine ${host}, and no build environment with a static busybox `
        + '(busybox-static in build-environment.spec.yaml) was given to run them with; alternatives from their literal calls only');
    }
    return { entries: out, effects };
  }
  const recorded = await recordPostinstCalls({
    root, scratch: options.scratch, scripts: postinsts, preinsts, architecture: options.lock.architecture, mtimeSeconds: options.mtimeSeconds, env: options.env, subject: `"${options.lockLabel}"`,
    ...(isForeign ? { hostTools: options.hostTools! } : {}),
  });
  if (recorded === undefined) return { entries: out, effects };
  const { calls, notRun, preinstCalls } = recorded;
  const known = new Set(entries.map((entry) => entry.path.toString('latin1')));
  const preinstFiles = preinstFilesOfCalls(preinstCalls).filter((item) => !known.has(item.path));
  for (const item of preinstFiles) {
    out.push(item.type === 'directory'
      ? { path: Buffer.from(item.path, 'latin1'), type: 'directory', mode: item.mode, uid: 0, gid: 0, sizeBytes: 0 }
      : { path: Buffer.from(item.path, 'latin1'), type: 'file', mode: item.mode, uid: 0, gid: 0, sizeBytes: 0, content: { kind: 'buffer', bytes: Buffer.alloc(0) } });
  }
  if (preinstFiles.length > 0) effects.push(`preinsts: ${preinstFiles.map((item) => `/${item.path}`).join(', ')}`);
  effects.push(`preinsts and postinsts run with recording shims: ${preinsts.length} + ${postinsts.length} scripts, ${preinstCalls.length} + ${calls.length} calls`
    + (isForeign ? `, with the ${host} busybox of ${options.hostTools!.declaredIn.join(', ')} over the ${options.lock.architecture} files` : ''));
  if (notRun.length > 0) {
    const named = [...new Set(notRun.map((item) => `${item.package}: ${item.program}`))].sort();
    effects.push(`scripts called ${options.lock.architecture} programs this machine cannot run, not run: ${named.join(', ')}`);
  }
  return { entries: out, effects, calls };
}

/**
 * What libpam-runtime's postinst makes on a fresh install: the image's own
 * `pam-auth-update --package --force` (Perl, with debconf's noninteractive frontend:
 * every profile of /usr/share/pam-configs whose `Default` is yes) run in `unshare -r
 * chroot` over the copy, and the files it wrote kept: /etc/pam.d/common-* and its state in
 * /var/lib/pam, 0644, owned by root (debconf's own database it wrote is not kept).
 */
async function pamAuthUpdateEntries(root: string, options: AssembleOptions, inChroot: string[], chrootEnv: Record<string, string>, known: ReadonlySet<string>): Promise<TarEntry[]> {
  await runTool(options, 'pam-auth-update', 'env', [
    '-i', ...Object.entries({ ...chrootEnv, DEBIAN_FRONTEND: 'noninteractive' }).map(([k, v]) => `${k}=${v}`), ...inChroot,
    '/usr/sbin/pam-auth-update', '--package', '--force',
  ]);
  const out: TarEntry[] = [];
  if (!known.has('var/lib/pam') && existsSync(join(root, 'var/lib/pam'))) out.push({ path: Buffer.from('var/lib/pam'), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 });
  for (const [folder, pattern] of [['etc/pam.d', /^common-/], ['var/lib/pam', /./]] as const) {
    if (!existsSync(join(root, folder))) continue;
    for (const name of (await readdir(join(root, folder))).sort()) {
      const path = `${folder}/${name}`;
      if (!pattern.test(name) || known.has(path)) continue;
      const stats = await lstat(join(root, path));
      if (!stats.isFile()) continue;
      out.push({ path: Buffer.from(path), type: 'file', mode: stats.mode & 0o777, uid: 0, gid: 0, sizeBytes: stats.size, content: { kind: 'path', path: join(root, path) } });
    }
  }
  return out;
}

/**
 * The entries of pam-configs.ts's files, as pamAuthUpdateEntries gives the script's: /var/lib/pam
 * when no package delivers it, then /etc/pam.d/common-* and /var/lib/pam/* by name, 0644, root,
 * each unless a package delivers it.
 */
function portedPamEntries(files: PamFiles, known: ReadonlySet<string>): TarEntry[] {
  const out: TarEntry[] = [];
  if (!known.has('var/lib/pam')) out.push({ path: Buffer.from('var/lib/pam'), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 });
  const sorted = [...files].filter((file) => !known.has(file.path)).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of sorted) out.push({ path: Buffer.from(file.path), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: file.bytes.length, content: { kind: 'buffer', bytes: file.bytes } });
  return out;
}

/**
 * The order dpkg configures packages in: each after the packages it depends on
 * (Pre-Depends and Depends, every alternative present), otherwise by name; a cycle is
 * broken where it closes. So a postinst that chowns to a user sees the user another
 * package's postinst made (redis-server after redis-tools).
 */
function configureOrder(installed: readonly InstalledPackage[]): InstalledPackage[] {
  const byName = new Map(installed.map((pkg) => [pkg.name, pkg]));
  const done = new Set<string>();
  const order: InstalledPackage[] = [];
  const visit = (pkg: InstalledPackage): void => {
    if (done.has(pkg.name)) return;
    done.add(pkg.name);
    const needs = parseRelations([pkg.control.get('Pre-Depends'), pkg.control.get('Depends')].filter((field) => field !== undefined).join(', '));
    for (const name of [...new Set(needs.flat().map((relation) => relation.name))].sort()) {
      const dependency = byName.get(name);
      if (dependency !== undefined) visit(dependency);
    }
    order.push(pkg);
  };
  for (const pkg of [...installed].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) visit(pkg);
  return order;
}

/** Packages whose postinst effects have code of their own (baseFilesEntries, userEntries, tzdataEntries, caCertificateEntries): their commands are not read. */
const ownCodeEffects: readonly string[] = ['base-files', 'base-passwd', 'tzdata', 'ca-certificates'];

/**
 * The plain commands of every postinst (readScriptActions), in lock order, applied to the
 * assembled members: system users and groups added to /etc/passwd and /etc/group (and
 * their home folders made), owners and modes set (chown, chmod, dpkg-statoverride --add),
 * empty files (touch), folders (mkdir), symlinks (ln -s) and copies (cp) added where the
 * path is free. With the `passwd` package, /etc/shadow and /etc/gshadow are then made as
 * its postinst (shadowconfig on: pwconv, grpconv) makes them, the last change day being
 * SOURCE_DATE_EPOCH's. Returns the effects for the log; changes `byPath` and `origins`.
 */
function applyScriptActions(installed: readonly InstalledPackage[], byPath: Map<string, TarEntry>, origins: Map<string, string>, mapPath: (path: string) => string, mtimeSeconds: number): string[] {
  const passwdEntry = byPath.get('etc/passwd');
  const groupEntry = byPath.get('etc/group');
  const accounts = passwdEntry?.type === 'file' && groupEntry?.type === 'file' ? parseAccounts(readContent(passwdEntry).toString('utf8'), readContent(groupEntry).toString('utf8')) : undefined;
  const idOf = (rows: string[][] | undefined, name: string | undefined): number | undefined => {
    if (name === undefined) return undefined;
    if (/^[0-9]+$/.test(name)) return Number(name);
    const row = rows?.find((r) => r[0] === name);
    return row === undefined ? undefined : Number(row[2]);
  };
  const effects: string[] = [];
  const users: string[] = [];
  let changed = 0;
  const put = (path: string, entry: TarEntry, pkg: string): void => {
    byPath.set(path, entry);
    origins.set(path, pkg);
    changed += 1;
  };
  for (const pkg of configureOrder(installed)) {
    const postinst = pkg.members.get('postinst');
    // Their effects are reproduced by code of their own (baseFilesEntries, userEntries, tzdataEntries, caCertificateEntries).
    if (postinst === undefined || ownCodeEffects.includes(pkg.name)) continue;
    for (const action of readScriptActions(postinst.toString('utf8'))) {
      switch (action.kind) {
        case 'adduser':
        case 'addgroup': {
          if (accounts === undefined) break;
          const ids = addAccount(accounts, action);
          users.push(action.name);
          const home = mapPath(action.kind === 'adduser' ? action.home.replace(/^\/+/, '') : '');
          if (action.kind === 'adduser' && action.isHomeCreated && ids !== undefined && !byPath.has(home)) {
            put(home, { path: Buffer.from(home, 'latin1'), type: 'directory', mode: 0o755, uid: ids.uid, gid: ids.gid, sizeBytes: 0 }, pkg.name);
          }
          break;
        }
        case 'chown':
        case 'chmod':
          for (const path of action.paths.map((p) => mapPath(p.replace(/^\/+/, '')))) {
            const entry = byPath.get(path);
            if (entry === undefined) continue;
            if (action.kind === 'chmod') put(path, { ...entry, mode: (entry.mode & ~0o7777) | action.mode }, origins.get(path) ?? pkg.name);
            else {
              const uid = idOf(accounts?.passwd, action.owner) ?? entry.uid;
              const gid = idOf(accounts?.group, action.group) ?? entry.gid;
              put(path, { ...entry, uid, gid, ...(action.mode !== undefined ? { mode: action.mode } : {}) }, origins.get(path) ?? pkg.name);
            }
          }
          break;
        case 'touch':
        case 'mkdir':
          for (const path of action.paths.map((p) => mapPath(p.replace(/^\/+/, '')))) {
            if (byPath.has(path)) continue;
            put(path, action.kind === 'touch'
              ? { path: Buffer.from(path, 'latin1'), type: 'file', mode: action.mode ?? 0o644, uid: 0, gid: 0, sizeBytes: 0, content: { kind: 'buffer', bytes: Buffer.alloc(0) } }
              : { path: Buffer.from(path, 'latin1'), type: 'directory', mode: action.mode ?? 0o755, uid: 0, gid: 0, sizeBytes: 0 }, pkg.name);
          }
          break;
        case 'symlink': {
          const path = mapPath(action.path.replace(/^\/+/, ''));
          if (!byPath.has(path)) put(path, { path: Buffer.from(path, 'latin1'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from(action.target, 'latin1') }, pkg.name);
          break;
        }
        case 'write': {
          const path = mapPath(action.path.replace(/^\/+/, ''));
          const bytes = Buffer.from(action.text);
          if (!byPath.has(path)) put(path, { path: Buffer.from(path, 'latin1'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'buffer', bytes } }, pkg.name);
          break;
        }
        case 'copy': {
          const from = byPath.get(mapPath(action.from.replace(/^\/+/, '')));
          const path = mapPath(action.to.replace(/^\/+/, ''));
          if (from?.type === 'file' && !byPath.has(path)) put(path, { ...from, path: Buffer.from(path, 'latin1'), uid: 0, gid: 0 }, pkg.name);
          break;
        }
        default: {
          const impossible: never = action;
          throw new Error(`unknown script action ${JSON.stringify(impossible)}`);
        }
      }
    }
  }
  const shells = updateShells(byPath, mapPath);
  if (shells.length > 0) {
    for (const entry of shells) put(entry.path.toString('latin1'), entry, 'debianutils');
    effects.push('/etc/shells (update-shells)');
  }
  if (changed > 0) effects.push(`maintainer-script commands: ${changed} paths`);
  if (accounts === undefined) return effects;
  if (users.length > 0) effects.push(`system users and groups: ${[...new Set(users)].join(', ')}`);
  const hasShadow = installed.some((p) => p.name === 'passwd');
  const day = String(Math.floor(mtimeSeconds / 86400));
  const text = (rows: string[][]): Buffer => Buffer.from(rows.map((row) => `${row.join(':')}\n`).join(''));
  const fileEntry = (path: string, bytes: Buffer, mode: number, gid: number): TarEntry => ({ path: Buffer.from(path), type: 'file', mode, uid: 0, gid, sizeBytes: bytes.length, content: { kind: 'buffer', bytes } });
  const shadowGid = idOf(accounts.group, 'shadow') ?? 42;
  if (hasShadow) {
    // pwconv and grpconv: the password fields move to the shadow files, 'x' stays behind.
    const shadow = accounts.passwd.map((row) => [row[0]!, row[1] === 'x' ? '!' : row[1]!, day, ...(Number(row[2]) < 1000 && row[1] === 'x' ? ['', '', '', '', '', ''] : ['0', '99999', '7', '', '', ''])]);
    const gshadow = accounts.group.map((row) => [row[0]!, row[1] === 'x' ? '!' : row[1]!, '', row[3] ?? '']);
    for (const row of accounts.passwd) row[1] = 'x';
    for (const row of accounts.group) row[1] = 'x';
    put('etc/shadow', fileEntry('etc/shadow', text(shadow), 0o640, shadowGid), 'redo-ts');
    put('etc/gshadow', fileEntry('etc/gshadow', text(gshadow), 0o640, shadowGid), 'redo-ts');
    effects.push('shadow passwords (/etc/shadow, /etc/gshadow)');
  }
  if (users.length > 0 || hasShadow) {
    put('etc/passwd', fileEntry('etc/passwd', text(accounts.passwd), 0o644, 0), 'redo-ts');
    put('etc/group', fileEntry('etc/group', text(accounts.group), 0o644, 0), 'redo-ts');
  }
  return effects;
}

/**
 * What debianutils' update-shells does on a fresh system (its postinst and its trigger on
 * /usr/share/debianutils/shells.d): /etc/shells keeps its lines (the template the postinst
 * copied) and gains every shell the template and the packages list in shells.d, each also under its real
 * path when a folder on the way is a symlink (/bin/bash and /usr/bin/bash on merged-/usr);
 * /var/lib/shells.state lists the packages' shells. [] without shells.d or /etc/shells.
 */
function updateShells(byPath: ReadonlyMap<string, TarEntry>, mapPath: (path: string) => string): TarEntry[] {
  const etc = byPath.get('etc/shells');
  const folder = 'usr/share/debianutils/shells.d';
  // The template counts as a package's list too, first (update-shells: for f in TEMPLATE PKG_DIR/*).
  const files = ['usr/share/debianutils/shells', ...[...byPath.keys()].filter((key) => key.startsWith(`${folder}/`) && !key.slice(folder.length + 1).includes('/')).sort()];
  if (etc?.type !== 'file' || !byPath.has('usr/sbin/update-shells')) return [];
  const packaged: string[] = [];
  for (const key of files) {
    const entry = byPath.get(key);
    if (entry?.type !== 'file') continue;
    for (const raw of readContent(entry).toString('utf8').split('\n')) {
      const line = raw.split('#')[0]!;
      if (line === '') continue;
      packaged.push(line);
      const slash = line.lastIndexOf('/');
      const real = `/${mapPath(line.slice(1, slash))}${line.slice(slash)}`;
      if (real !== line) packaged.push(real);
    }
  }
  const kept: string[] = [];
  const seen = new Set<string>();
  for (const line of readContent(etc).toString('utf8').split('\n').slice(0, -1)) {
    const shell = line.split('#')[0]!;
    if (shell === '' || !seen.has(shell)) kept.push(line);
    seen.add(shell);
  }
  for (const shell of packaged) if (!seen.has(shell)) kept.push(shell);
  const file = (path: string, text: string): TarEntry => ({ path: Buffer.from(path), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: Buffer.byteLength(text), content: { kind: 'buffer', bytes: Buffer.from(text) } });
  return [file('etc/shells', `${kept.join('\n')}\n`), file('var/lib/shells.state', packaged.map((s) => `${s}\n`).join(''))];
}

/** The view of the assembled members writeLdCache reads: hardlinks read as the files they share an inode with. */
function ldCacheImageOf(byPath: ReadonlyMap<string, TarEntry>): LdCacheImage {
  const children = new Map<string, string[]>();
  for (const key of byPath.keys()) {
    const slash = key.lastIndexOf('/');
    const parent = slash < 0 ? '' : key.slice(0, slash);
    children.set(parent, [...(children.get(parent) ?? []), key.slice(slash + 1)]);
  }
  const fileOf = (path: string): TarEntry | undefined => {
    const entry = byPath.get(path);
    return entry?.type === 'hardlink' ? byPath.get(entry.linkTarget!.toString('latin1')) : entry;
  };
  const contents = new Map<string, Buffer>();
  const bytesOf = (path: string): Buffer => {
    let bytes = contents.get(path);
    if (bytes === undefined) {
      const entry = fileOf(path);
      bytes = entry?.type === 'file' ? readContent(entry) : Buffer.alloc(0);
      contents.set(path, bytes);
    }
    return bytes;
  };
  return {
    entryOf(path) {
      if (path === '') return { type: 'directory' };
      const entry = fileOf(path);
      if (entry === undefined) return children.has(path) ? { type: 'directory' } : undefined;
      return entry.type === 'symlink' ? { type: 'symlink', linkTarget: entry.linkTarget!.toString('latin1') } : { type: entry.type };
    },
    read: (path, offset, length) => bytesOf(path).subarray(offset, offset + length),
    sizeOf: (path) => fileOf(path)?.sizeBytes ?? 0,
    childrenOf: (folder) => children.get(folder) ?? [],
  };
}

/** Starts `work` on every item with at most `limit` running at once; the promises come back in item order. */
function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Array<Promise<R>> {
  let next = 0;
  const results: Array<Promise<R>> = [];
  const slots: Array<() => void> = [];
  let running = 0;
  const release = (): void => {
    running -= 1;
    slots.shift()?.();
  };
  for (const item of items) {
    const index = next;
    next += 1;
    const start = async (): Promise<R> => {
      if (running >= limit) await new Promise<void>((resolveSlot) => slots.push(resolveSlot));
      running += 1;
      try {
        return await work(item);
      } finally {
        release();
      }
    };
    results[index] = start();
    // Failures are seen by whoever awaits the promise; keep them from being unhandled meanwhile.
    results[index]!.catch(() => undefined);
  }
  return results;
}

/** Paths below `start` (member paths), depth first in byte order. */
async function walk(root: string, start: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    const names = (await readdir(join(root, dir))).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const path = `${dir}/${name}`;
      out.push(path);
      if ((await lstat(join(root, path))).isDirectory()) await visit(path);
    }
  };
  await visit(start);
  return out;
}

async function which(program: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of `${env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`.split(':').filter((d) => d !== '')) {
    const candidate = join(dir, program);
    if (await lstat(candidate).then((s) => s.isFile() || s.isSymbolicLink(), () => false)) return candidate;
  }
  return undefined;
}

function runTool(options: AssembleOptions, what: string, command: string, args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env: { ...options.env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const keep = (chunk: Buffer): void => {
      tail.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      tail.splice(0, Math.max(0, tail.length - 5));
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (cause) => reject(new RedoError('ERR_SPEC_BUILD_FAILED', `redo: "${options.lockLabel}": ${what}: could not run ${command}: ${cause.message}`, { cause })));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new RedoError('ERR_SPEC_BUILD_FAILED', `redo: "${options.lockLabel}": ${what} ${signal !== null ? `killed by signal ${signal}` : `exited with status ${code}`}`, {
        details: tail.length > 0 ? [`output (last ${tail.length} lines):`, ...tail.map((line) => `  ${line}`)] : [],
        hint: '`unshare -r` must work (unprivileged user namespaces) for the image\'s own tools to run in it',
      }));
    });
  });
}
