/** The project root, and normalisation of target and rule paths relative to it. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError } from '../errors.js';

/**
 * Finds the project root for a process started in `cwd` (absolute):
 * `override` if given (resolved against cwd); else the nearest ancestor holding
 * `.redo/`, `rules/`, `package.json` or `.git`; else `cwd`. The nearest marker wins,
 * so a stray `.redo/` in a folder above (a home or temp folder built in by mistake)
 * never captures a project that has its own markers but no build yet.
 * The result is a real path (symlinks resolved). Reads only directory entries; never throws.
 */
export function findProjectRoot(cwd: string, override?: string): string {
  const found = findRootFolder(cwd, override);
  // Names are resolved to real paths (resolvePhysical), so the root must be one too.
  try {
    return fs.realpathSync.native(found);
  } catch {
    return found;
  }
}

function findRootFolder(cwd: string, override: string | undefined): string {
  if (override !== undefined) return path.resolve(cwd, override);
  const ancestors: string[] = [];
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    ancestors.push(dir);
    if (path.dirname(dir) === dir) break;
  }
  for (const dir of ancestors) {
    if (
      isDirectory(path.join(dir, '.redo')) ||
      isDirectory(path.join(dir, 'rules')) ||
      fs.existsSync(path.join(dir, 'package.json')) ||
      fs.existsSync(path.join(dir, '.git'))
    ) {
      return dir;
    }
  }
  return path.resolve(cwd);
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Resolves `name` against the absolute folder `fromDir` as the OS does: a '..' goes to
 * the parent of the folder actually reached, so through a symlinked folder `link/../x`
 * is beside the link's target, not beside the link. Every existing folder on the way
 * is replaced by its real path; the last component is kept as named (a symlink there
 * is not followed). Folders that do not exist yet are joined lexically. Reads the file
 * system (realpath, cached per process for folders that exist); never throws.
 */
export function resolvePhysical(fromDir: string, name: string): string {
  let joined = (name.startsWith('/') ? name : `${fromDir}/${name}`).replace(/\/+/g, '/');
  if (joined.length > 1 && joined.endsWith('/')) joined = joined.slice(0, -1);
  const slash = joined.lastIndexOf('/');
  const last = joined.slice(slash + 1);
  if (last === '..' || last === '.') return realFolder(joined);
  return path.join(realFolder(slash === 0 ? '/' : joined.slice(0, slash)), last);
}

const realFolders = new Map<string, string>();

/** The real path of the absolute, '/'-separated `folder`, resolving only the part that exists. */
function realFolder(folder: string): string {
  const known = realFolders.get(folder);
  if (known !== undefined) return known;
  try {
    const real = fs.realpathSync.native(folder);
    realFolders.set(folder, real);
    return real;
  } catch {
    if (folder === '/' || folder === '') return '/';
    const slash = folder.lastIndexOf('/');
    const parent = realFolder(slash <= 0 ? '/' : folder.slice(0, slash));
    const last = folder.slice(slash + 1);
    if (last === '..') return path.dirname(parent);
    return last === '.' ? parent : path.join(parent, last);
  }
}

/**
 * Turns `name` (as typed, relative to the absolute `fromDir`) into a target path:
 * relative to `root`, '/'-separated, no '.' or '..' parts, resolved through symlinked
 * folders as the OS does (resolvePhysical). `root` must be a real path (findProjectRoot).
 * Throws ERR_TARGET_OUTSIDE when it lies outside the root, is the root itself, or is inside `.redo/`.
 */
export function toTargetPath(root: string, fromDir: string, name: string): string {
  const dependency = toDependencyPath(root, fromDir, name);
  if (path.isAbsolute(dependency)) {
    // Inside the project as written, outside once folders are resolved: a symlinked folder.
    const lexical = path.relative(root, path.resolve(fromDir, name));
    if (lexical !== '..' && !lexical.startsWith('../') && !path.isAbsolute(lexical)) {
      throw new RedoError('ERR_TARGET_OUTSIDE', `redo: "${lexical}": target is outside the project through a symlinked folder`, {
        details: [`project root: ${root}`, `resolved to: ${dependency}`],
        hint: 'replace the symlinked folder by a real one inside the project, or build in the folder it points to',
      });
    }
    throw new RedoError('ERR_TARGET_OUTSIDE', `redo: "${name}": target is outside the project`, {
      details: [`project root: ${root}`, `resolved to: ${dependency}`],
      hint: 'run redo-ts from inside the project, or set REDO_TS_ROOT to the project root',
    });
  }
  return dependency;
}

/**
 * Like toTargetPath, for a dependency: a file outside the project (a system header from
 * `gcc -MD`, say) is allowed and comes back as its absolute path; it can only be a source.
 * Throws ERR_TARGET_OUTSIDE for the project root itself and for paths inside `.redo/`.
 */
export function toDependencyPath(root: string, fromDir: string, name: string): string {
  const absolute = resolvePhysical(fromDir, name);
  const relative = path.relative(root, absolute);
  if (relative === '') {
    throw new RedoError('ERR_TARGET_OUTSIDE', `redo: "${name}": the project root itself cannot be a target`, {
      details: [`project root: ${root}`],
      hint: 'name a file inside the project',
    });
  }
  if (relative === '..' || relative.startsWith('../') || path.isAbsolute(relative)) return absolute;
  if (relative === '.redo' || relative.startsWith('.redo/')) {
    throw new RedoError('ERR_TARGET_OUTSIDE', `redo: "${relative}": targets cannot live inside .redo/`, {
      details: ['.redo/ holds redo-ts state only'],
    });
  }
  return relative;
}

/** Absolute path of a target or dependency path (relative to `root`, or absolute outside it). Pure. */
export function toAbsolute(root: string, targetPath: string): string {
  return path.resolve(root, targetPath);
}

/**
 * Absolute path of a root-relative target or dependency path, or of an absolute one
 * (outside the project) as is. path.join, not path.resolve: measurably cheaper on the
 * no-op path, which calls this thousands of times.
 */
export function absolutePath(root: string, targetPath: string): string {
  return targetPath.startsWith('/') ? targetPath : path.join(root, targetPath);
}

/** Path of `targetPath` (root-relative) as seen from `dir` (root-relative, '' for the root). Pure. */
export function relativeTo(dir: string, targetPath: string): string {
  return dir === '' ? targetPath : path.posix.relative(dir, targetPath);
}
