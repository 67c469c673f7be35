/** Build environments: a root folder assembled once from fragment tars (locked packages, other specs), kept in the cache by content. */

import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, renameSync, rmSync, statSync, symlinkSync,
  unlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { RedoError } from '../errors.js';
import { entriesOfTar, readEntryBytes, type TarEntry } from '../image/tar.js';
import { runInSandbox, sandboxFacts, type BuildEnvironment } from './sandbox.js';
import { isProcessAlive } from '../processes.js';

/** Bumped whenever what assembleBuildEnvironment writes changes, so older roots are not reused. */
const environmentFormat = 1;

/** One input of an environment: a fragment tar and what declared it. */
export interface EnvironmentPart {
  /** Absolute path of a fragment tar (`targets/build-environment.fragment.tar`). */
  tarPath: string;
  /** The spec it comes from, relative to the project root, for messages. */
  label: string;
  /**
   * The sha256 (hex) of the tar's bytes when the caller knows it (the shared fragment
   * rule asks the image store, which remembers the digest the rule that wrote the tar
   * hashed as it wrote it): the tar is then not read to find its environment.
   */
  sha256?: string;
}

/** Options of assembleBuildEnvironment. */
export interface AssembleEnvironmentOptions {
  /** The download cache (`$REDO_TS_CACHE`); environments live in its `build-environments/` folder. */
  cacheDir: string;
  /** The caller's environment (for the sandbox tool, see runInSandbox). */
  hostEnv?: NodeJS.ProcessEnv;
  /** Subject of messages. */
  subject: string;
}

/**
 * The build environment made of `parts`, in order: each fragment tar unpacked over the
 * previous ones (a later file replaces an earlier one; folders merge; a folder member
 * goes through a symlink already there, as on merged-/usr; every symlink is resolved
 * inside the root, so nothing is written outside it). Then, where missing: the mount
 * points (/build, /dev, /proc, /tmp), /etc/passwd and /etc/group (root and nobody),
 * /etc/hosts (localhost), and a busybox's applet links (`busybox --list-full`, run in
 * the sandbox) for every applet no package provides.
 *
 * Assembled once per distinct content: the key is the sha256 of the format and of every
 * part's bytes (its `sha256` when given, else the tar hashed), and the root is kept in `CACHE/build-environments/KEY/root`, made in a
 * temporary folder (`.tmp-PID-…`) and renamed into place, so concurrent builds never
 * see half of one and one killed mid-way (kill -9) is never reused: its leftover is
 * removed by the next assembly once that PID is gone, or by pruneBuildEnvironments.
 * Reused read-only after that; each use sets the KEY folder's mtime (its last use,
 * what pruneBuildEnvironments goes by). Returns the environment; throws ERR_BUILD_ENVIRONMENT
 * when a part cannot be read, and what runInSandbox throws for the applet listing.
 */
export async function assembleBuildEnvironment(parts: readonly EnvironmentPart[], options: AssembleEnvironmentOptions): Promise<BuildEnvironment> {
  const hash = createHash('sha256').update(`redo-ts build environment ${environmentFormat}\n`);
  for (const part of parts) hash.update(`${part.sha256 ?? hashFile(part.tarPath, options.subject)}\n`);
  const key = hash.digest('hex');
  const declaredIn = parts.map((part) => part.label);
  const home = join(options.cacheDir, 'build-environments');
  const final = join(home, key);
  const environment: BuildEnvironment = { rootPath: join(final, 'root'), key, declaredIn };
  if (existsSync(join(final, 'root'))) {
    markUsed(final);
    return environment;
  }

  mkdirSync(home, { recursive: true });
  removeLeftovers(home, 0);
  const temporary = join(home, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const root = join(temporary, 'root');
  mkdirSync(root, { recursive: true });
  try {
    for (const part of parts) {
      let entries: TarEntry[];
      try {
        entries = entriesOfTar(part.tarPath);
      } catch (cause) {
        throw new RedoError('ERR_BUILD_ENVIRONMENT', `redo: ${options.subject}: build environment part "${part.label}" cannot be read`, {
          details: [`file: ${part.tarPath}`, `error: ${(cause as Error).message}`],
          hint: 'rebuild that spec\'s fragment (redo-ts -f ...fragment.tar)',
          cause,
        });
      }
      for (const entry of entries) placeEntry(root, entry);
    }
    addSkeleton(root);
    await addBusyboxApplets(root, { rootPath: root, key, declaredIn }, options);
    writeFileSync(join(temporary, 'environment.json'), `${JSON.stringify({ format: environmentFormat, key, declaredIn }, null, 2)}\n`);
    try {
      renameSync(temporary, final);
    } catch (error) {
      // Another build assembled the same environment first: theirs is identical.
      if (!existsSync(join(final, 'root'))) throw error;
    }
  } finally {
    rmSync(temporary, { recursive: true, force: true });
  }
  return environment;
}

/** Sets the environment folder's mtime to now: its last use. Best effort (a read-only cache still builds). */
function markUsed(folder: string): void {
  try {
    const now = new Date();
    utimesSync(folder, now, now);
  } catch {
    // Not ours to write: the environment is still good to use.
  }
}

/**
 * Removes the half-assembled environments in `home` (`.tmp-PID-…`, left by an assembly
 * that was killed) whose process is gone, or that are older than `olderThanMs` when it is
 * above 0 (a PID from another machine sharing the cache). Returns how many it removed.
 * The kept fragments' folder (sources/fragment-cache.ts) is cleaned the same way.
 */
export function removeLeftovers(home: string, olderThanMs: number, now = Date.now()): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(home);
  } catch {
    return 0;
  }
  for (const name of names) {
    const match = /^\.tmp-([0-9]+)-/.exec(name);
    if (match === null) continue;
    let isStale = !isProcessAlive(Number(match[1]));
    if (!isStale && olderThanMs > 0) {
      try {
        isStale = now - statSync(join(home, name)).mtimeMs > olderThanMs;
      } catch {
        continue;
      }
    }
    if (!isStale) continue;
    rmSync(join(home, name), { recursive: true, force: true });
    removed += 1;
  }
  return removed;
}

/** One build environment pruneBuildEnvironments removed. */
export interface PrunedEnvironment {
  key: string;
  /** The specs it was assembled from (from its environment.json), for the listing. */
  declaredIn: string[];
  /** When it was last used (its folder's mtime), ms since the epoch. */
  lastUsedMs: number;
}

/**
 * Removes from `CACHE/build-environments` every assembled environment not used (by
 * assembleBuildEnvironment) for `unusedForMs`, and every half-assembled leftover of a
 * killed assembly (its process gone, or older than a day). An environment is renamed
 * aside before it is deleted, so a build starting meanwhile assembles a fresh one
 * rather than seeing half of it. Returns what it removed; a cache without
 * environments gives nothing.
 */
export function pruneBuildEnvironments(cacheDir: string, unusedForMs: number, now = Date.now()): { removed: PrunedEnvironment[]; leftovers: number } {
  const { removed, leftovers } = pruneUnusedEntries(join(cacheDir, 'build-environments'), unusedForMs, now, (folder) => {
    try {
      return (JSON.parse(readFileSync(join(folder, 'environment.json'), 'utf8')) as { declaredIn?: string[] }).declaredIn ?? [];
    } catch {
      return []; // No record: removed all the same.
    }
  });
  return { removed: removed.map(({ key, lastUsedMs, about }) => ({ key, declaredIn: about, lastUsedMs })), leftovers };
}

/**
 * Removes from `home`, a cache folder of entries named by a sha256 key, every entry not
 * used (its folder's mtime) for `unusedForMs`, after `describe` has read what the listing
 * says of it, and what killed writers left (removeLeftovers: process gone, or older than
 * a day). An entry is renamed aside before it is deleted, so a build meanwhile finds it
 * whole or not at all. A missing `home` gives nothing.
 */
export function pruneUnusedEntries<T>(home: string, unusedForMs: number, now: number, describe: (folder: string) => T): {
  removed: Array<{ key: string; lastUsedMs: number; about: T }>;
  leftovers: number;
} {
  const leftovers = removeLeftovers(home, 24 * 3600 * 1000, now);
  const removed: Array<{ key: string; lastUsedMs: number; about: T }> = [];
  let names: string[];
  try {
    names = readdirSync(home).sort();
  } catch {
    return { removed, leftovers };
  }
  for (const key of names) {
    if (!/^[0-9a-f]{64}$/.test(key)) continue;
    const folder = join(home, key);
    let lastUsedMs: number;
    try {
      lastUsedMs = statSync(folder).mtimeMs;
    } catch {
      continue;
    }
    if (now - lastUsedMs < unusedForMs) continue;
    const about = describe(folder);
    const aside = join(home, `.tmp-${process.pid}-prune-${key.slice(0, 12)}`);
    try {
      renameSync(folder, aside);
    } catch {
      continue;
    }
    rmSync(aside, { recursive: true, force: true });
    removed.push({ key, lastUsedMs, about });
  }
  return { removed, leftovers };
}

function hashFile(path: string, subject: string): string {
  const hash = createHash('sha256');
  let fd;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw new RedoError('ERR_BUILD_ENVIRONMENT', `redo: ${subject}: build environment part "${path}" cannot be read`, {
      details: [`error: ${(cause as Error).message}`],
      hint: 'build it first: the shared fragment rule does (redo-ifchange NAME.fragment.tar)',
      cause,
    });
  }
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) hash.update(buffer.subarray(0, read));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * The host path where `member` (a path relative to the root) lands, resolving every
 * symlink on the way inside `root` as a chroot would (absolute targets start again at
 * the root, `..` stops at it), the last component too when `isLastFollowed`. Bounded
 * like the kernel's 40 links.
 */
export function resolveInRoot(root: string, member: string, isLastFollowed: boolean): string {
  const pending = member.split('/').filter((part) => part !== '' && part !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const here = join(root, ...done, part);
    if (pending.length === 0 && !isLastFollowed) {
      done.push(part);
      break;
    }
    let stats;
    try {
      stats = lstatSync(here);
    } catch {
      done.push(part);
      continue;
    }
    if (stats.isSymbolicLink() && links < 40) {
      links += 1;
      const target = readlinkSync(here);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((item) => item !== '' && item !== '.'));
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}

function placeEntry(root: string, entry: TarEntry): void {
  const member = entry.path.toString('latin1');
  const at = resolveInRoot(root, member, entry.type === 'directory');
  mkdirSync(resolveInRoot(root, member.split('/').slice(0, -1).join('/'), true), { recursive: true });
  const existing = lstatOrUndefined(at);
  // Owner write on everything, so the cache can be cleaned and a later part can replace a file.
  const mode = (entry.mode & 0o777) | 0o200;
  switch (entry.type) {
    case 'directory':
      if (existing?.isDirectory()) return;
      if (existing !== undefined) rmSync(at, { recursive: true, force: true });
      mkdirSync(at, { mode: mode | 0o700 });
      chmodSync(at, mode | 0o700);
      return;
    case 'file': {
      if (existing !== undefined) rmSync(at, { recursive: true, force: true });
      const bytes = readEntryBytes(entry) ?? Buffer.alloc(0);
      writeFileSync(at, bytes, { mode });
      chmodSync(at, mode);
      return;
    }
    case 'symlink':
      if (existing !== undefined) rmSync(at, { recursive: true, force: true });
      symlinkSync(entry.linkTarget!.toString('latin1'), at);
      return;
    case 'hardlink': {
      if (existing !== undefined) rmSync(at, { recursive: true, force: true });
      const target = resolveInRoot(root, entry.linkTarget!.toString('latin1'), false);
      linkSync(target, at);
      return;
    }
    default:
      // Devices and fifos: the sandbox provides its own /dev.
      return;
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Mount points and the few /etc files tools expect, where no part provides them. */
function addSkeleton(root: string): void {
  for (const folder of sandboxFacts.mountPoints) {
    const at = resolveInRoot(root, folder, true);
    if (!existsSync(at)) mkdirSync(at, { recursive: true, mode: 0o755 });
  }
  mkdirSync(resolveInRoot(root, 'etc', true), { recursive: true });
  const files: Array<[string, string]> = [
    ['etc/passwd', `root:x:0:0:root:${sandboxFacts.home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`],
    ['etc/group', 'root:x:0:\nnogroup:x:65534:\n'],
    ['etc/hosts', `127.0.0.1\tlocalhost ${sandboxFacts.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`],
    ['etc/hostname', `${sandboxFacts.hostname}\n`],
  ];
  for (const [member, text] of files) {
    const at = resolveInRoot(root, member, true);
    if (!existsSync(at)) writeFileSync(at, text, { mode: 0o644 });
  }
}

/**
 * A busybox without its links is a shell no step can call by name: asks it for its
 * applets (`busybox --list-full`, in the sandbox, so it is the environment's own binary
 * that answers) and links each one no part provides to it, as `busybox --install -s` would.
 */
async function addBusyboxApplets(root: string, environment: BuildEnvironment, options: AssembleEnvironmentOptions): Promise<void> {
  const candidates = ['usr/bin/busybox', 'bin/busybox'].filter((member) => {
    try {
      return statSync(resolveInRoot(root, member, true)).isFile();
    } catch {
      return false;
    }
  });
  if (candidates.length === 0) return;
  const busybox = `/${candidates[0]!}`;
  const chunks: Buffer[] = [];
  await runInSandbox(environment, { label: 'busybox --list-full', argv: [busybox, '--list-full'] }, {
    binds: [], subject: options.subject, ...(options.hostEnv !== undefined ? { hostEnv: options.hostEnv } : {}), onStdout: (chunk) => chunks.push(chunk),
  });
  for (const applet of Buffer.concat(chunks).toString('utf8').split('\n').map((line) => line.trim()).filter((line) => line !== '').sort()) {
    const at = resolveInRoot(root, applet, false);
    if (lstatOrUndefined(at) !== undefined) continue;
    mkdirSync(resolveInRoot(root, applet.split('/').slice(0, -1).join('/'), true), { recursive: true });
    symlinkSync(busybox, at);
  }
}
