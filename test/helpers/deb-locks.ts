// Keeps a test's copy of a committed Debian lock (NAME.lock.yaml, written by `redo-ts lock`)
// buildable after a Debian point release removed a version it locks. The repository's
// locks (test/fixtures/*, tutorial chapters, examples/, targets/) name exact versions; the
// archive keeps only the newest of each package, so on the day a locked version leaves,
// apt can no longer fetch it and every test building from that lock would fail for a
// reason no change of ours made. refreshVanishedLocks checks every locked version against
// the machine's apt indexes and, for a lock that names one they no longer list, runs the
// real `redo-ts lock` on the copy (which keeps every version that still exists and moves
// only the rest), warning once per lock with the versions moved and the repository file
// to refresh (see "Testing" in README.md). On the days every version still exists it
// changes nothing, so the tests check exactly the committed files. deb-pins.ts does the
// same for `deb:NAME=VERSION` sources of specs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { parseLock, type DebianLock } from '../../lib/sources/debian/lock.js';
import { repoRoot } from './rig.js';

/** One lock refreshVanishedLocks had `redo-ts lock` move. */
export interface LockRefresh {
  /** The lock as the repository names it (`from` joined with its path in the copy). */
  lock: string;
  /** The locked versions the indexes no longer list, `NAME=VERSION`. */
  vanished: string[];
  /** What `redo-ts lock` changed, `NAME OLD -> NEW` (`(new)`/`(removed)` for a package that came or went). */
  moved: string[];
}

/** `NAME:ARCH=VERSION` queries already answered with the machine's own apt configuration. */
const known = new Map<string, boolean>();

/**
 * Which of the `NAME:ARCH=VERSION` queries the apt indexes list with a pool file (a
 * version only the dpkg status knows does not count): one `apt-cache show` for them all.
 * Answers with the machine's configuration are kept for the process; with an APT_CONFIG
 * (a test's archive, which the test may change) they are asked every time.
 */
function listedInIndexes(queries: string[], env: NodeJS.ProcessEnv): Set<string> {
  const isCached = env['APT_CONFIG'] === undefined;
  const asked = [...new Set(queries)].filter((query) => !isCached || !known.has(query));
  const listed = new Set<string>();
  for (let start = 0; start < asked.length; start += 500) {
    const batch = asked.slice(start, start + 500);
    // apt-cache show prints what it finds and skips (or complains about) what it does not.
    const shown = spawnSync('apt-cache', ['show', ...batch], { encoding: 'utf8', env: { ...env, LC_ALL: 'C' }, maxBuffer: 256 * 1024 * 1024 });
    for (const stanza of (shown.stdout ?? '').split(/\n\n+/)) {
      if (!/^Filename: /m.test(stanza) || !/^SHA256: /m.test(stanza)) continue;
      const name = /^Package: (\S+)$/m.exec(stanza)?.[1];
      const version = /^Version: (\S+)$/m.exec(stanza)?.[1];
      const arch = /^Architecture: (\S+)$/m.exec(stanza)?.[1];
      if (name !== undefined && version !== undefined && arch !== undefined) listed.add(`${name}:${arch}=${version}`);
    }
  }
  if (isCached) for (const query of asked) known.set(query, listed.has(query));
  return new Set(queries.filter((query) => (isCached ? known.get(query) === true : listed.has(query))));
}

/** `NAME=VERSION` of each package of `lock` the machine's apt indexes no longer list (empty on most days). */
export function vanishedVersions(lock: DebianLock, env: NodeJS.ProcessEnv = process.env): string[] {
  const query = (p: DebianLock['packages'][number]): string => `${p.name}:${p.architecture}=${p.version}`;
  const listed = listedInIndexes(lock.packages.map(query), env);
  return lock.packages.filter((p) => !listed.has(query(p))).map((p) => `${p.name}=${p.version}`);
}

/** Every `*.lock.yaml` under `dir`, sorted, skipping node_modules, dist and dot folders. */
function lockFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...lockFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.lock.yaml')) found.push(path);
  }
  return found.sort();
}

/**
 * The project root `redo-ts lock` finds from `folder` (engine/paths.ts): the nearest
 * ancestor holding .redo/, rules/, package.json or .git, else `folder` itself.
 */
function projectRootOf(folder: string): string {
  for (let dir = folder; ; dir = dirname(dir)) {
    if (['.redo', 'rules', 'package.json', '.git'].some((marker) => existsSync(join(dir, marker)))) return dir;
    if (dirname(dir) === dir) return folder;
  }
}

/** A lock `redo-ts lock` already refreshed in this process, by the spec and lock text it started from. */
const refreshedTexts = new Map<string, { text: string; moved: string[] }>();

const warned = new Set<string>();

/**
 * For every Debian lock under the folder `dir` (a test's copy, never the repository)
 * that apt fetches from (no `mirror`) and that names a version the machine's apt indexes
 * no longer list: runs `redo-ts lock SPEC...` (the compiled CLI of this repository) in
 * the spec's project root, which moves only the vanished versions (and whatever their
 * successors newly need), and warns once per lock, naming it as `from`/PATH (`from`: the
 * repository folder the copy was taken from, '' for the whole repository). A lock
 * refreshed once in this process is written again from memory. `env` replaces the
 * process's environment (an APT_CONFIG of a test's archive, say), and `keyring` is
 * handed to `redo-ts lock --keyring` (default: Debian's archive keyring). Returns what
 * it refreshed (empty while every version still exists). Throws when `redo-ts lock`
 * fails (no spec beside the lock, or apt offers nothing that fits).
 */
export function refreshVanishedLocks(dir: string, from = '', options: { env?: NodeJS.ProcessEnv; keyring?: string } = {}): LockRefresh[] {
  const env = options.env ?? process.env;
  const refreshed: LockRefresh[] = [];
  const stale: Array<{ path: string; spec: string; key: string; vanished: string[] }> = [];
  for (const path of lockFiles(dir)) {
    const text = readFileSync(path, 'utf8');
    let lock: DebianLock;
    try {
      lock = parseLock(text, path);
    } catch {
      continue; // not a Debian lock of this format (a test's deliberately broken one, say)
    }
    if (lock.mirror !== undefined || lock.indexes.some((index) => index.mirror !== undefined)) continue;
    const vanished = vanishedVersions(lock, env);
    if (vanished.length === 0) continue;
    const spec = path.replace(/\.lock\.yaml$/, '.spec.yaml');
    if (!existsSync(spec)) throw new Error(`${path}: locks versions apt no longer lists (${vanished.join(', ')}), and there is no ${basename(spec)} beside it to lock again`);
    const key = createHash('sha256').update(readFileSync(spec)).update('\0').update(text).digest('hex');
    stale.push({ path, spec, key, vanished });
  }
  // One `redo-ts lock` per project root (as the engine finds it from the spec's folder):
  // it loads the indexes once for all of that project's specs.
  // Only what the machine's own apt configuration gave is remembered for later copies.
  const isMachineApt = env['APT_CONFIG'] === undefined;
  const results = new Map<string, { text: string; moved: string[] }>();
  const byRoot = new Map<string, typeof stale>();
  for (const entry of stale) {
    const remembered = isMachineApt ? refreshedTexts.get(entry.key) : undefined;
    const root = projectRootOf(dirname(entry.spec));
    if (remembered !== undefined) results.set(entry.key, remembered);
    else byRoot.set(root, [...(byRoot.get(root) ?? []), entry]);
  }
  for (const [folder, entries] of byRoot) {
    const run = spawnSync(process.execPath, [join(repoRoot, 'bin', 'redo-ts.js'), 'lock', ...(options.keyring === undefined ? [] : ['--keyring', options.keyring]), ...entries.map((entry) => entry.spec)], { cwd: folder, encoding: 'utf8', env });
    if (run.status !== 0) throw new Error(`redo-ts lock ${entries.map((entry) => relative(dir, entry.spec)).join(' ')} (to replace versions apt no longer lists) exited with status ${run.status}:\n${run.stderr}`);
    for (const entry of entries) {
      const where = relative(realpathSync(folder), realpathSync(entry.path)).split(sep).join('/');
      const moved = run.stdout.split('\n').flatMap((line) => (line.startsWith(`${where}: `) ? [line.slice(where.length + 2)] : []));
      results.set(entry.key, { text: readFileSync(entry.path, 'utf8'), moved });
      if (isMachineApt) refreshedTexts.set(entry.key, results.get(entry.key)!);
    }
  }
  for (const entry of stale) {
    const remembered = results.get(entry.key)!;
    writeFileSync(entry.path, remembered.text);
    const lock = [from, relative(dir, entry.path)].filter((part) => part !== '').join('/').split(sep).join('/');
    refreshed.push({ lock, vanished: entry.vanished, moved: remembered.moved });
    if (!warned.has(`${lock} ${entry.key}`)) {
      warned.add(`${lock} ${entry.key}`);
      console.warn(`${lock}: ${entry.vanished.length} locked versions have left the archive (${entry.vanished.join(', ')}); this test's copy was locked again: ${remembered.moved.join(', ')} (refresh the repository's lock with \`redo-ts lock\`: see "Testing" in README.md)`);
    }
  }
  return refreshed;
}

