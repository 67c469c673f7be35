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
 * Reads only directory entries; never throws.
 */
export function findProjectRoot(cwd: string, override?: string): string {
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
 * Turns `name` (as typed, relative to the absolute `fromDir`) into a target path:
 * relative to `root`, '/'-separated, no '.' or '..' parts.
 * Throws ERR_TARGET_OUTSIDE when it lies outside the root, is the root itself, or is inside `.redo/`.
 */
export function toTargetPath(root: string, fromDir: string, name: string): string {
  const absolute = path.resolve(fromDir, name);
  const relative = path.relative(root, absolute);
  if (relative === '' || relative === '..' || relative.startsWith('../') || path.isAbsolute(relative)) {
    throw new RedoError('ERR_TARGET_OUTSIDE', `redo: "${name}": target is outside the project`, {
      details: [`project root: ${root}`, `resolved to: ${absolute}`],
      hint: 'run redo-ts from inside the project, or set REDO_TS_ROOT to the project root',
    });
  }
  if (relative === '.redo' || relative.startsWith('.redo/')) {
    throw new RedoError('ERR_TARGET_OUTSIDE', `redo: "${relative}": targets cannot live inside .redo/`, {
      details: ['.redo/ holds redo-ts state only'],
    });
  }
  return relative;
}

/** Absolute path of a target path (relative to `root`). Pure. */
export function toAbsolute(root: string, targetPath: string): string {
  return path.join(root, targetPath);
}

/** Path of `targetPath` (root-relative) as seen from `dir` (root-relative, '' for the root). Pure. */
export function relativeTo(dir: string, targetPath: string): string {
  return dir === '' ? targetPath : path.posix.relative(dir, targetPath);
}
