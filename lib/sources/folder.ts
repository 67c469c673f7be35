/** Folder sources (`file:` naming a project folder): their files, their content digest, and their copy into a build folder. */

import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { copyFile, mkdir, readlink, symlink, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import type { Integrity } from './integrity.js';

/** True when `path` is a folder (following a symlink); false when it is anything else or missing. */
export function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** One member of a folder source: its path below the folder (`/`-separated) and kind. */
export interface FolderMember {
  path: string;
  type: 'file' | 'directory' | 'symlink';
}

/**
 * Every member of the folder `root`, depth-first, names in byte order, symlinks kept
 * as links (never followed). Sockets, fifos and devices are skipped. Reads only.
 */
export function membersOfFolder(root: string): FolderMember[] {
  const out: FolderMember[] = [];
  const visit = (relativeDir: string): void => {
    const names = readdirSync(join(root, relativeDir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const path = relativeDir === '' ? name : `${relativeDir}/${name}`;
      const stats = lstatSync(join(root, path));
      if (stats.isDirectory()) {
        out.push({ path, type: 'directory' });
        visit(path);
      } else if (stats.isSymbolicLink()) out.push({ path, type: 'symlink' });
      else if (stats.isFile()) out.push({ path, type: 'file' });
    }
  };
  visit('');
  return out;
}

/**
 * The content digest of a folder source, as an SRI sha256: a hash over every member's
 * path, kind, executable bit, and content (a file's bytes, a symlink's target), in byte
 * order of paths. The same tree anywhere, at any time, gives the same digest; an edit,
 * an added or removed file, a chmod +x or a renamed file changes it. Reads only.
 */
export function integrityOfFolder(root: string): Integrity {
  const hash = createHash('sha256');
  for (const member of membersOfFolder(root)) {
    const absolute = join(root, member.path);
    hash.update(`${member.type}\0${member.path}\0`);
    if (member.type === 'file') {
      hash.update(lstatSync(absolute).mode & 0o111 ? 'x\0' : '-\0');
      hash.update(createHash('sha256').update(readFileSync(absolute)).digest());
    } else if (member.type === 'symlink') {
      hash.update(`${readlinkSync(absolute)}\0`);
    }
  }
  return `sha256-${hash.digest('base64')}` as Integrity;
}

/**
 * Copies the folder `from` to `to` (created, with parents): folders, files (executable
 * bit kept, other mode bits normalised to 0644/0755) and symlinks as links. Writes
 * only below `to`; the caller checks `to` itself is inside the build folder.
 */
export async function copyFolder(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const member of membersOfFolder(from)) {
    const source = join(from, member.path);
    const target = join(to, member.path);
    if (member.type === 'directory') await mkdir(target, { recursive: true });
    else if (member.type === 'symlink') await symlink(await readlink(source), target);
    else {
      await copyFile(source, target);
      await chmod(target, lstatSync(source).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}
