/** The Debian lock file (`NAME.lock.yaml` beside `NAME.spec.yaml`): its stable format, writer, reader and staleness check. */

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { RedoError } from '../../errors.js';
import { isMap, isScalar, isSeq, parseDocument, type Node, type YAMLMap } from '../../yaml.js';
import type { IndexInfo } from './indexes.js';
import { requestLinesOf, type PackageList } from './package-list.js';
import type { ResolvedPackage } from './resolve.js';

/** The format version this module writes and reads. */
export const lockFormatVersion = 1;

/** One locked package: everything needed to fetch and check it without the indexes. */
export interface LockedPackage {
  name: string;
  version: string;
  architecture: string;
  /** Source package name. */
  source: string;
  sizeBytes: number;
  /** Pool path relative to the archive root (`pool/main/z/zlib/zlib1g_…_amd64.deb`). */
  filename: string;
  /** SRI sha256 of the .deb, from the verified index. */
  integrity: string;
  /** Suite whose index listed it. */
  suite: string;
  /** Packages whose dependencies pulled it in; `requested` when the list names it. */
  pulledBy: string[];
}

/** A parsed lock file. */
export interface DebianLock {
  /** File name of the spec it was made for. */
  spec: string;
  architecture: string;
  isRecommendsWanted: boolean;
  /** The package list's entries as Debian relations, sorted (see requestLinesOf). */
  requested: string[];
  /** Archive root URL when locked from a mirror (packages are then fetched from it); absent with apt. */
  mirror?: string;
  indexes: IndexInfo[];
  /** Sorted by name. */
  packages: LockedPackage[];
}

/**
 * The archive root URL each locked package is fetched from, by name: the mirror of the
 * index that listed it (its suite), else the lock's `mirror`, else none (apt fetches
 * it). `override` (REDO_TS_DEBIAN_MIRROR) replaces them all. Pure.
 */
export function mirrorsOfPackages(lock: DebianLock, override?: string): Map<string, string | undefined> {
  const bySuite = new Map(lock.indexes.filter((index) => index.mirror !== undefined).map((index) => [index.suite, index.mirror!]));
  return new Map(lock.packages.map((p) => [p.name, override !== undefined && override !== '' ? override : bySuite.get(p.suite) ?? lock.mirror]));
}

/** `targets/NAME.lock.yaml` for `targets/NAME.spec.yaml`. */
export function lockPathOf(specPath: string): string {
  return specPath.replace(/\.spec\.yaml$/, '') + '.lock.yaml';
}

/** The lock for a resolution. */
export function lockOf(specPath: string, list: PackageList, architecture: string, indexes: IndexInfo[], resolved: ResolvedPackage[], mirror?: string): DebianLock {
  const lock: DebianLock = {
    spec: basename(specPath),
    architecture,
    isRecommendsWanted: list.isRecommendsWanted,
    requested: requestLinesOf(list),
    // An index keeps its own mirror only where it differs from the lock's (the security archive's URL).
    indexes: [...indexes].sort((a, b) => (`${a.suite} ${a.path}` < `${b.suite} ${b.path}` ? -1 : 1))
      .map(({ mirror: own, ...index }) => (own !== undefined && own !== mirror ? { ...index, mirror: own } : index)),
    packages: resolved.map(({ record, pulledBy }) => ({
      name: record.name,
      version: record.version,
      architecture: record.architecture,
      source: record.source,
      sizeBytes: record.sizeBytes,
      filename: record.filename,
      integrity: `sha256-${Buffer.from(record.sha256Hex, 'hex').toString('base64')}`,
      suite: record.suite,
      pulledBy,
    })),
  };
  if (mirror !== undefined) lock.mirror = mirror;
  return lock;
}

/** A YAML scalar: plain when it cannot be misread, else double-quoted (JSON escapes are valid YAML). */
function scalar(value: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9._+\/~-]*$/.test(value) ? value : JSON.stringify(value);
}

/*
 * Format (YAML; one package per block, sorted by name, fields in this order, so a
 * version bump is a two- or three-line diff):
 *
 *   # header comments
 *   lock-version: 1
 *   spec: python.spec.yaml
 *   architecture: amd64
 *   recommends: false
 *   requested:
 *     - python3
 *   indexes:
 *     - suite: bookworm
 *       origin: Debian
 *       date: "Sat, 10 Jun 2023 08:55:30 UTC"
 *       path: main/binary-amd64/Packages
 *       integrity: sha256-…
 *   packages:
 *     - name: libc6
 *       version: 2.36-9+deb12u14
 *       architecture: amd64
 *       source: glibc
 *       size: 2757936
 *       filename: pool/main/g/glibc/libc6_2.36-9+deb12u14_amd64.deb
 *       integrity: sha256-…
 *       suite: bookworm-security
 *       pulled-by: [libpython3.11-minimal, python3.11-minimal]
 */
/** Writes `lock` as the text of a lock file. Deterministic: the same lock gives the same bytes. */
export function formatLock(lock: DebianLock): string {
  const lines = [
    `# Written by \`redo-ts lock\` from ${lock.spec}: the exact Debian packages its build uses.`,
    '# Do not edit: change the package list and run `redo-ts lock` (or `redo-ts lock --update`).',
    `lock-version: ${lockFormatVersion}`,
    `spec: ${scalar(lock.spec)}`,
    `architecture: ${scalar(lock.architecture)}`,
    `recommends: ${lock.isRecommendsWanted ? 'true' : 'false'}`,
  ];
  if (lock.mirror !== undefined) lines.push(`mirror: ${scalar(lock.mirror)}`);
  lines.push('requested:', ...lock.requested.map((line) => `  - ${scalar(line)}`));
  lines.push('indexes:');
  for (const index of lock.indexes) {
    lines.push(`  - suite: ${scalar(index.suite)}`, `    origin: ${scalar(index.origin)}`, `    date: ${scalar(index.date)}`,
      `    path: ${scalar(index.path)}`, `    integrity: ${scalar(index.integrity)}`);
    if (index.mirror !== undefined) lines.push(`    mirror: ${scalar(index.mirror)}`);
  }
  lines.push('packages:');
  for (const p of lock.packages) {
    lines.push(
      `  - name: ${scalar(p.name)}`,
      `    version: ${scalar(p.version)}`,
      `    architecture: ${scalar(p.architecture)}`,
      `    source: ${scalar(p.source)}`,
      `    size: ${p.sizeBytes}`,
      `    filename: ${scalar(p.filename)}`,
      `    integrity: ${scalar(p.integrity)}`,
      `    suite: ${scalar(p.suite)}`,
      `    pulled-by: [${p.pulledBy.map(scalar).join(', ')}]`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function invalid(label: string, problem: string): RedoError {
  return new RedoError('ERR_DEBIAN_LOCK_INVALID', `redo: "${label}": not a valid lock file`, {
    details: [`problem: ${problem}`],
    hint: 'a lock is written by `redo-ts lock`; delete it and lock again',
  });
}

/**
 * Parses lock file text. `label` names the file in errors. Throws ERR_DEBIAN_LOCK_INVALID
 * (with the problem) for text that is not a lock of this format version.
 */
export function parseLock(text: string, label: string): DebianLock {
  const doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: true });
  if (doc.errors.length > 0) throw invalid(label, doc.errors[0]!.message.split('\n')[0]!);
  const top = doc.contents;
  if (!isMap(top)) throw invalid(label, 'the file is not a map of fields');
  const str = (map: YAMLMap, key: string, where: string): string => {
    const node = map.get(key, true) as Node | undefined;
    if (node === undefined || !isScalar(node)) throw invalid(label, `${where}${key} is missing`);
    return String(node.value);
  };
  const list = (map: YAMLMap, key: string, where: string): unknown[] => {
    const node = map.get(key, true) as Node | undefined;
    if (node === undefined || !isSeq(node)) throw invalid(label, `${where}${key} must be a list`);
    return node.items;
  };
  if (str(top, 'lock-version', '') !== String(lockFormatVersion)) {
    throw invalid(label, `lock-version ${str(top, 'lock-version', '')} (this redo-ts reads version ${lockFormatVersion})`);
  }
  const lock: DebianLock = {
    spec: str(top, 'spec', ''),
    architecture: str(top, 'architecture', ''),
    isRecommendsWanted: str(top, 'recommends', '') === 'true',
    requested: list(top, 'requested', '').map((item) => String((item as { value?: unknown }).value)),
    indexes: list(top, 'indexes', '').map((item, i) => {
      if (!isMap(item)) throw invalid(label, `indexes[${i}] must be a map`);
      const where = `indexes[${i}].`;
      const index: IndexInfo = { suite: str(item, 'suite', where), origin: str(item, 'origin', where), date: str(item, 'date', where), path: str(item, 'path', where), integrity: str(item, 'integrity', where) };
      if (item.has('mirror')) index.mirror = str(item, 'mirror', where);
      return index;
    }),
    packages: list(top, 'packages', '').map((item, i) => {
      if (!isMap(item)) throw invalid(label, `packages[${i}] must be a map`);
      const where = `packages[${i}].`;
      const size = str(item, 'size', where);
      if (!/^[0-9]+$/.test(size)) throw invalid(label, `${where}size "${size}" is not a number`);
      const integrity = str(item, 'integrity', where);
      if (!/^sha256-[A-Za-z0-9+/]{43}=$/.test(integrity)) throw invalid(label, `${where}integrity "${integrity}" is not an SRI sha256`);
      return {
        name: str(item, 'name', where),
        version: str(item, 'version', where),
        architecture: str(item, 'architecture', where),
        source: str(item, 'source', where),
        sizeBytes: Number(size),
        filename: str(item, 'filename', where),
        integrity,
        suite: str(item, 'suite', where),
        pulledBy: list(item, 'pulled-by', where).map((by) => String((by as { value?: unknown }).value)),
      };
    }),
  };
  const mirror = top.get('mirror');
  if (mirror !== undefined) lock.mirror = String(mirror);
  return lock;
}

/**
 * Reads and parses the lock file at `path` (the stable reader other tools, such as SBOM
 * writers, use). Throws ERR_DEBIAN_LOCK_MISSING when there is none, naming the spec's
 * `redo-ts lock` to run; ERR_DEBIAN_LOCK_INVALID when it cannot be parsed.
 */
export async function readDebianLock(path: string, label: string = path): Promise<DebianLock> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw cause;
    throw new RedoError('ERR_DEBIAN_LOCK_MISSING', `redo: "${label}": no lock file`, {
      details: ['a spec with a `packages` list builds only from its lock'],
      hint: `run \`redo-ts lock ${label.replace(/\.lock\.yaml$/, '.spec.yaml')}\`, review the lock and commit it`,
    });
  }
  return parseLock(text, label);
}

/**
 * Checks that `lock` was made for `list` on `architecture`: same requested entries, same
 * architecture and Recommends setting. Throws ERR_DEBIAN_LOCK_STALE listing every
 * difference (added/removed entries) and saying to run `redo-ts lock`. Reads nothing.
 */
export function checkLockCurrent(lock: DebianLock, list: PackageList, architecture: string, label: string, specLabel: string): void {
  const wanted = requestLinesOf(list);
  const differences: string[] = [];
  for (const line of wanted) if (!lock.requested.includes(line)) differences.push(`added to the list:     ${line}`);
  for (const line of lock.requested) if (!wanted.includes(line)) differences.push(`removed from the list: ${line}`);
  if (lock.architecture !== architecture) differences.push(`architecture: the lock has ${lock.architecture}, the build wants ${architecture}`);
  if (lock.isRecommendsWanted !== list.isRecommendsWanted) differences.push(`recommends: the lock has ${lock.isRecommendsWanted}, the spec says ${list.isRecommendsWanted}`);
  if (differences.length === 0) return;
  throw new RedoError('ERR_DEBIAN_LOCK_STALE', `redo: "${label}": the lock does not match the package list of "${specLabel}"`, {
    details: differences,
    hint: `run \`redo-ts lock ${specLabel}\` and review the change; a build never changes a lock`,
  });
}

/** One line of `redo-ts lock --update` output. */
export interface LockChange {
  name: string;
  /** Version before; undefined for a package new in the lock. */
  old?: string;
  /** Version after; undefined for a package that left the lock. */
  new?: string;
}

/** The packages whose version differs between two locks (added and removed ones included), sorted by name. */
export function diffLocks(before: DebianLock | undefined, after: DebianLock): LockChange[] {
  const old = new Map((before?.packages ?? []).map((p) => [p.name, p.version]));
  const now = new Map(after.packages.map((p) => [p.name, p.version]));
  const names = [...new Set([...old.keys(), ...now.keys()])].sort();
  const changes: LockChange[] = [];
  for (const name of names) {
    const a = old.get(name);
    const b = now.get(name);
    if (a === b) continue;
    const change: LockChange = { name };
    if (a !== undefined) change.old = a;
    if (b !== undefined) change.new = b;
    changes.push(change);
  }
  return changes;
}
