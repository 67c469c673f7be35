/** The audit of an image: crud and secrets found in its inventory, each named with its file, layer and origin. */

import { closeSync, openSync, readSync } from 'node:fs';
import { RedoError } from '../errors.js';
import { compileGlob } from '../sources/glob.js';
import type { FileOrigin, Inventory, InventoryFile } from './inventory.js';

/** Every kind of finding, as `auditAllow` and the report name them. */
export const findingKinds = [
  'build-tool',
  'package-cache',
  'private-key',
  'setgid',
  'setuid',
  'shell-history',
  'symlink-escape',
  'unknown-owner',
  'vcs-folder',
  'world-writable',
] as const;

/** A kind of finding. */
export type FindingKind = (typeof findingKinds)[number];

/** One thing the audit flags. */
export interface Finding {
  kind: FindingKind;
  /** Absolute image path. */
  path: string;
  /** Layer target (relative to the project root). */
  layer: string;
  /** What delivered the file, in words (`deb:NAME=VERSION via targets/x.spec.yaml`, `spec targets/x.spec.yaml`, …). */
  origin: string;
  /** Why it was flagged. */
  detail: string;
}

/** The audit's result: findings not allowed, and those the description allows. */
export interface AuditResult {
  findings: Finding[];
  allowed: Finding[];
}

const historyNames = new Set([
  '.ash_history',
  '.bash_history',
  '.history',
  '.lesshst',
  '.mysql_history',
  '.node_repl_history',
  '.psql_history',
  '.python_history',
  '.rediscli_history',
  '.sh_history',
  '.sqlite_history',
  '.zsh_history',
]);
const vcsNames = new Set(['.git', '.hg', '.svn', '.bzr']);
/** Compilers, assemblers, linkers and make: `gcc-12`, `x86_64-linux-gnu-gcc-12`, `ld.bfd` included. */
const buildToolPattern = /^(?:[a-z0-9_]+-linux-gnu[a-z]*-)?(?:cc|c\+\+|gcc|g\+\+|cpp|cc1|cc1plus|clang|clang\+\+|ld|ld\.bfd|ld\.gold|ld\.lld|as|make|gmake|tcc)(?:-[0-9][0-9.]*)?$/;
/** Package managers' caches and downloaded lists. */
const cachePatterns = [
  '/var/cache/apt/**',
  '/var/lib/apt/lists/**',
  '/var/cache/apk/**',
  '/var/cache/dnf/**',
  '/var/cache/yum/**',
  '/**/.cache/pip/**',
  '/**/.npm/_cacache/**',
  '/**/.cache/yarn/**',
].map(compileGlob);
/** PEM and OpenSSH private key headers (RFC 7468 labels, OpenSSH's own format, PGP secret keys). */
const keyHeader = /-----BEGIN (?:(?:RSA |DSA |EC |ENCRYPTED |OPENSSH )?PRIVATE KEY|PGP PRIVATE KEY BLOCK)-----/;
const keyScanBytes = 64 * 1024;

/** Describes a file's origin for a report line. */
export function describeOrigin(origin: FileOrigin): string {
  switch (origin.kind) {
    case 'package':
      return `${origin.package} via ${origin.spec}`;
    case 'spec':
      return `built by ${origin.spec}`;
    case 'folder':
      return `project file ${origin.projectPath}`;
    case 'target':
      return `tar target ${origin.target} (no provenance known)`;
    default: {
      const never: never = origin;
      return never;
    }
  }
}

/**
 * Checks `allow` entries (`KIND` or `KIND:/glob`) and returns matchers. Throws
 * ERR_IMAGE_DESCRIPTION naming `subject` for an unknown kind.
 */
function compileAllow(allow: readonly string[], subject: string): Array<(finding: Finding) => boolean> {
  return allow.map((entry) => {
    const colon = entry.indexOf(':');
    const kind = colon < 0 ? entry : entry.slice(0, colon);
    if (!(findingKinds as readonly string[]).includes(kind)) {
      throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${subject}": auditAllow names an unknown finding "${entry}"`, {
        details: [`known kinds: ${findingKinds.join(', ')}`],
        hint: 'write KIND or KIND:/path/glob, e.g. setuid:/usr/bin/passwd',
      });
    }
    if (colon < 0) return (finding: Finding) => finding.kind === kind;
    const matches = compileGlob(entry.slice(colon + 1));
    return (finding: Finding) => finding.kind === kind && matches(finding.path);
  });
}

function readHead(file: InventoryFile): Buffer {
  if (file.content === undefined) return Buffer.alloc(0);
  const fd = openSync(file.content.path, 'r');
  try {
    const bytes = Buffer.alloc(Math.min(file.sizeBytes, keyScanBytes));
    const got = readSync(fd, bytes, 0, bytes.length, file.content.offsetBytes);
    return bytes.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Whether the symlink at `path` (absolute image path) with target `link` climbs above the rootfs. */
function escapesRoot(path: string, link: string): boolean {
  const stack = link.startsWith('/') ? [] : path.split('/').filter((part) => part !== '').slice(0, -1);
  for (const part of link.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (stack.length === 0) return true;
      stack.pop();
    } else stack.push(part);
  }
  return false;
}

/** Numeric ids listed in an /etc/passwd or /etc/group text (third field). */
function idsOf(text: string | undefined): Set<number> {
  const ids = new Set<number>([0]);
  for (const line of (text ?? '').split('\n')) {
    const field = line.split(':')[2];
    if (field !== undefined && /^[0-9]+$/.test(field)) ids.add(Number(field));
  }
  return ids;
}

/**
 * Audits every member of every layer of `inventory` (a file an upper layer hides still
 * ships, so it counts): shell history files, private keys (PEM or OpenSSH header in
 * the first 64 KiB), `.git`/`.hg`/`.svn`/`.bzr` folders, compilers and build tools,
 * package manager caches and lists, world-writable members without the sticky bit,
 * setuid and setgid files (folders with setgid are normal), owners (uid, gid) missing
 * from the image's /etc/passwd or /etc/group (0 always exists), and symlinks whose
 * target climbs out of the rootfs with `..`. Findings matching an `allow` entry
 * (`KIND` or `KIND:/glob`) are returned apart. Reads file heads from the layer tars.
 * Throws ERR_IMAGE_DESCRIPTION for an allow entry of unknown kind.
 */
export function auditInventory(inventory: Inventory, allow: readonly string[] = []): AuditResult {
  const allowed = compileAllow(allow, inventory.description);
  const textOf = (path: string): string | undefined => {
    const file = [...inventory.files].reverse().find((candidate) => candidate.path === path && candidate.type === 'file');
    return file === undefined ? undefined : readWhole(file);
  };
  const users = idsOf(textOf('/etc/passwd'));
  const groups = idsOf(textOf('/etc/group'));
  const all: Finding[] = [];
  for (const file of inventory.files) {
    const base = file.path.slice(file.path.lastIndexOf('/') + 1);
    if (base.startsWith('.wh.')) continue;
    const flag = (kind: FindingKind, detail: string): void => {
      all.push({ kind, path: file.path, layer: inventory.layers[file.layer]!.target, origin: describeOrigin(file.origin), detail });
    };
    const isContent = file.type === 'file' || file.type === 'hardlink';
    if (historyNames.has(base) && file.type !== 'directory') flag('shell-history', 'a shell or REPL history file');
    if (vcsNames.has(base)) flag('vcs-folder', `a ${base} version-control folder`);
    if (file.type !== 'directory' && buildToolPattern.test(base)) flag('build-tool', 'a compiler, assembler, linker or make');
    if (file.type !== 'directory' && cachePatterns.some((matches) => matches(file.path))) flag('package-cache', 'a package manager cache or downloaded list');
    if (file.type === 'file') {
      const head = readHead(file).toString('latin1');
      const match = keyHeader.exec(head);
      if (match !== null) flag('private-key', `holds "${match[0]}"`);
    }
    if (file.type !== 'symlink' && (file.mode & 0o002) !== 0 && (file.mode & 0o1000) === 0) {
      flag('world-writable', `mode ${file.mode.toString(8).padStart(4, '0')} lets anyone write it, without the sticky bit`);
    }
    if (isContent && (file.mode & 0o4000) !== 0) flag('setuid', `mode ${file.mode.toString(8).padStart(4, '0')}: runs as its owner (uid ${file.uid})`);
    if (isContent && (file.mode & 0o2000) !== 0) flag('setgid', `mode ${file.mode.toString(8).padStart(4, '0')}: runs with its group (gid ${file.gid})`);
    if (!users.has(file.uid)) flag('unknown-owner', `uid ${file.uid} is not in the image's /etc/passwd`);
    if (!groups.has(file.gid)) flag('unknown-owner', `gid ${file.gid} is not in the image's /etc/group`);
    if (file.type === 'symlink' && file.linkTarget !== undefined && escapesRoot(file.path, file.linkTarget)) {
      flag('symlink-escape', `points to "${file.linkTarget}", outside the rootfs`);
    }
  }
  const result: AuditResult = { findings: [], allowed: [] };
  for (const finding of all) (allowed.some((matches) => matches(finding)) ? result.allowed : result.findings).push(finding);
  return result;
}

function readWhole(file: InventoryFile): string {
  if (file.content === undefined) return '';
  const fd = openSync(file.content.path, 'r');
  try {
    const bytes = Buffer.alloc(file.sizeBytes);
    readSync(fd, bytes, 0, bytes.length, file.content.offsetBytes);
    return bytes.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** One line per finding: `KIND  PATH  layer LAYER  ORIGIN: DETAIL`. */
export function formatFindings(findings: readonly Finding[]): string[] {
  return findings.map((finding) => `${finding.kind}  ${finding.path}  layer ${finding.layer}  ${finding.origin}: ${finding.detail}`);
}
