// Compares two root filesystem tars (mmdebstrap's and redo-ts's) path by path: type,
// mode, owner (by name, through each side's own /etc/passwd and /etc/group), content and
// link target; /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow by names, homes and
// shells (ids may differ), ld.so.cache by what `ldconfig -p -C` lists, dpkg's status by
// the packages installed, /etc/shells as a set of lines, the Java keystore by its aliases and certificates. Differences the docs explain are read from the table of
// docs/debian.md ("Differences from mmdebstrap"); every other one is unexplained.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entriesOfTar, readEntryBytes, type TarEntry } from '../../lib/image/tar.js';
import { compileGlob } from '../../lib/sources/glob.js';
import { readJavaKeystore } from '../../lib/sources/debian/java-keystore.js';

/** One difference between the two trees. */
export interface RootfsDifference {
  path: string;
  kind: 'only-mmdebstrap' | 'only-redo-ts' | 'type' | 'mode' | 'owner' | 'content';
  detail: string;
}

/** One row of the docs' table: which paths may differ in which way, and why. */
export interface AllowedDifference {
  glob: string;
  kind: string;
  reason: string;
}

interface Side {
  entries: Map<string, TarEntry>;
  bytesOf(path: string): Buffer | undefined;
  users: Map<number, string>;
  groups: Map<number, string>;
}

function sideOf(tarPath: string): Side {
  const entries = new Map<string, TarEntry>();
  for (const entry of entriesOfTar(tarPath)) {
    const path = entry.path.toString('latin1').replace(/^\.\//, '').replace(/\/+$/, '');
    if (path === '' || path === '.' || path === 'dev' || path.startsWith('dev/')) continue;
    entries.set(path, entry);
  }
  const bytesOf = (path: string): Buffer | undefined => {
    let entry = entries.get(path);
    if (entry?.type === 'hardlink') entry = entries.get(entry.linkTarget!.toString('latin1').replace(/^\.\//, ''));
    return entry?.type === 'file' ? readEntryBytes(entry) : undefined;
  };
  const ids = (path: string): Map<number, string> => new Map((bytesOf(path)?.toString('utf8') ?? '').split('\n').filter((l) => l !== '').map((l) => l.split(':')).map((f) => [Number(f[2]), f[0]!]));
  return { entries, bytesOf, users: ids('etc/passwd'), groups: ids('etc/group') };
}

/** The lines of `ldconfig -p -C` for cache bytes, without the count and generator lines. */
function ldCacheListing(bytes: Buffer): string[] {
  const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-ldcache-'));
  try {
    writeFileSync(join(scratch, 'cache'), bytes);
    return execFileSync('/sbin/ldconfig', ['-p', '-C', join(scratch, 'cache')], { encoding: 'utf8' }).split('\n').filter((line) => line.startsWith('\t'));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Fields of an account file that must match: name, then home and shell (passwd) or nothing else. */
function accountsText(path: string, bytes: Buffer): string {
  const rows = bytes.toString('utf8').split('\n').filter((l) => l !== '').map((l) => l.split(':'));
  const keep = path === 'etc/passwd' ? (f: string[]) => [f[0], f[4], f[5], f[6]] : path === 'etc/group' ? (f: string[]) => [f[0], f[3]] : (f: string[]) => [f[0]];
  return rows.map((f) => keep(f).join(':')).sort().join('\n');
}

function installedPackages(bytes: Buffer): string {
  return bytes.toString('utf8').split('\n\n').filter((p) => /\nStatus: install ok installed/.test(`\n${p}`))
    .map((p) => /^Package: (.*)$/m.exec(p)?.[1] ?? '').sort().join('\n');
}

/** A JKS keystore's trusted certificates as sorted `alias sha256` lines (undefined for bytes that are not one). */
function keystoreText(bytes: Buffer): string | undefined {
  return readJavaKeystore(bytes)?.map((entry) => `${entry.alias} ${createHash('sha256').update(entry.der).digest('hex')}`).sort().join('\n');
}

const sha = (bytes: Buffer | undefined): string => (bytes === undefined ? 'none' : createHash('sha256').update(bytes).digest('hex').slice(0, 12));

/** Every difference between mmdebstrap's rootfs tar and redo-ts's, sorted by path. */
export function compareRootfs(mmdebstrapTar: string, redoTar: string): RootfsDifference[] {
  const theirs = sideOf(mmdebstrapTar);
  const ours = sideOf(redoTar);
  const out: RootfsDifference[] = [];
  const paths = [...new Set([...theirs.entries.keys(), ...ours.entries.keys()])].sort();
  for (const path of paths) {
    const a = theirs.entries.get(path);
    const b = ours.entries.get(path);
    if (a === undefined) {
      out.push({ path, kind: 'only-redo-ts', detail: b!.type });
      continue;
    }
    if (b === undefined) {
      out.push({ path, kind: 'only-mmdebstrap', detail: a.type });
      continue;
    }
    const typeOf = (entry: TarEntry): string => (entry.type === 'hardlink' ? 'file' : entry.type);
    if (typeOf(a) !== typeOf(b)) {
      out.push({ path, kind: 'type', detail: `${a.type} vs ${b.type}` });
      continue;
    }
    if (a.type !== 'symlink' && (a.mode & 0o7777) !== (b.mode & 0o7777)) out.push({ path, kind: 'mode', detail: `${(a.mode & 0o7777).toString(8)} vs ${(b.mode & 0o7777).toString(8)}` });
    const ownerA = `${theirs.users.get(a.uid) ?? a.uid}:${theirs.groups.get(a.gid) ?? a.gid}`;
    const ownerB = `${ours.users.get(b.uid) ?? b.uid}:${ours.groups.get(b.gid) ?? b.gid}`;
    if (a.type !== 'symlink' && ownerA !== ownerB) out.push({ path, kind: 'owner', detail: `${ownerA} vs ${ownerB}` });
    if (a.type === 'symlink') {
      const targetA = a.linkTarget!.toString('latin1');
      const targetB = b.linkTarget!.toString('latin1');
      if (targetA !== targetB) out.push({ path, kind: 'content', detail: `-> ${targetA} vs -> ${targetB}` });
    } else if (typeOf(a) === 'file') {
      const bytesA = theirs.bytesOf(path)!;
      const bytesB = ours.bytesOf(path)!;
      let same: boolean;
      if (path === 'etc/ld.so.cache') same = ldCacheListing(bytesA).join('\n') === ldCacheListing(bytesB).join('\n');
      else if (['etc/passwd', 'etc/group', 'etc/shadow', 'etc/gshadow'].includes(path)) same = accountsText(path, bytesA) === accountsText(path, bytesB);
      else if (path === 'var/lib/dpkg/status') same = installedPackages(bytesA) === installedPackages(bytesB);
      // A Java keystore holds the time each entry was added (the clock's, in mmdebstrap's).
      else if (path === 'etc/ssl/certs/java/cacerts') same = keystoreText(bytesA) === keystoreText(bytesB);
      // The order of /etc/shells is the order dpkg happened to configure the shells in.
      else if (path === 'etc/shells') same = bytesA.toString('utf8').split('\n').sort().join('\n') === bytesB.toString('utf8').split('\n').sort().join('\n');
      else same = bytesA.equals(bytesB);
      if (!same) out.push({ path, kind: 'content', detail: `sha256 ${sha(bytesA)} vs ${sha(bytesB)}, ${bytesA.length} vs ${bytesB.length} bytes` });
    }
  }
  return out;
}

/**
 * The rows of the table after the heading "Differences from mmdebstrap" in `docsPath`:
 * `| \`GLOB\` | KIND | reason |`, KIND one of the difference kinds or `any`.
 */
export function readAllowedDifferences(docsPath: string): AllowedDifference[] {
  const text = readFileSync(docsPath, 'utf8');
  const at = text.indexOf('### Differences from mmdebstrap');
  if (at < 0) return [];
  const rows: AllowedDifference[] = [];
  for (const line of text.slice(at).split('\n').slice(1)) {
    if (line.startsWith('#')) break;
    const cells = /^\| `([^`]+)` \| ([a-z-]+(?:, [a-z-]+)*) \| (.+) \|$/.exec(line);
    if (cells !== null) rows.push({ glob: cells[1]!, kind: cells[2]!, reason: cells[3]! });
  }
  return rows;
}

/** The differences no allowed row explains, and how many each row explained. */
export function explain(differences: readonly RootfsDifference[], allowed: readonly AllowedDifference[]): { unexplained: RootfsDifference[]; counts: Map<AllowedDifference, number> } {
  const matchers = allowed.map((row) => ({ row, match: compileGlob(row.glob), kinds: row.kind.split(', ') }));
  const counts = new Map<AllowedDifference, number>();
  const unexplained: RootfsDifference[] = [];
  for (const difference of differences) {
    const found = matchers.find((m) => m.match(`/${difference.path}`) && (m.kinds.includes('any') || m.kinds.includes(difference.kind)));
    if (found === undefined) unexplained.push(difference);
    else counts.set(found.row, (counts.get(found.row) ?? 0) + 1);
  }
  return { unexplained, counts };
}
