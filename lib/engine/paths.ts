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
  const real = realParentOutside(root, absolute);
  if (real !== undefined) {
    throw new RedoError('ERR_TARGET_OUTSIDE', `redo: "${relative}": target is outside the project through a symlinked folder`, {
      details: [`project root: ${root}`, `resolved to: ${real}`],
      hint: 'replace the symlinked folder by a real one inside the project, or build in the folder it points to',
    });
  }
  if (relative === '.redo' || relative.startsWith('.redo/')) {
    throw new RedoError('ERR_TARGET_OUTSIDE', `redo: "${relative}": targets cannot live inside .redo/`, {
      details: ['.redo/ holds redo-ts state only'],
    });
  }
  return relative;
}

/**
 * The boundary check on real paths: the real path of the target's folder (its
 * nearest existing ancestor, plus the parts not yet created) when it lies outside the
 * real project root, else undefined. The target's own name is not resolved: a rename
 * over a symlink replaces the link, it never writes through it.
 */
let lastRoot: { root: string; real: string | undefined } | undefined;

function realParentOutside(root: string, absolute: string): string | undefined {
  // One process works on one root: resolve it once.
  if (lastRoot?.root !== root) lastRoot = { root, real: realPathOf(root) };
  const realRoot = lastRoot.real;
  let dir = path.dirname(absolute);
  const pending: string[] = [path.basename(absolute)];
  for (;;) {
    const real = realPathOf(dir);
    if (real !== undefined) {
      const resolved = path.join(real, ...pending);
      const relative = path.relative(realRoot ?? root, resolved);
      return relative === '..' || relative.startsWith('../') || path.isAbsolute(relative) ? resolved : undefined;
    }
    if (path.dirname(dir) === dir) return undefined;
    pending.unshift(path.basename(dir));
    dir = path.dirname(dir);
  }
}

function realPathOf(p: string): string | undefined {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return undefined;
  }
}

/** Absolute path of a target path (relative to `root`). Pure. */
export function toAbsolute(root: string, targetPath: string): string {
  return path.join(root, targetPath);
}

/** Path of `targetPath` (root-relative) as seen from `dir` (root-relative, '' for the root). Pure. */
export function relativeTo(dir: string, targetPath: string): string {
  return dir === '' ? targetPath : path.posix.relative(dir, targetPath);
}
