/** "Does this path exist?" answered from folder listings, each folder read once: for checks before any rule runs. */

import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Answers existence questions from one `readdir` per folder instead of one failing
 * `access` per name (a no-op asks thousands: every rule candidate tried before the one
 * used is an `ifcreate` dependency). Valid only while nothing else changes the listed
 * folders: the engine keeps one for the project until its first rule starts, and one for
 * the folders outside the project where rules are looked for (above the root, the
 * installed rules/) for the whole run. `onListed` is told each folder read,
 * with its stat taken before the listing; `onUnsure` when a folder could not be listed
 * (then the answer comes from the path itself).
 */
export class FolderListings {
  private readonly folders = new Map<string, Set<string> | null>();

  constructor(private readonly onListed: (folder: string, stats: fs.Stats | undefined) => void, private readonly onUnsure: () => void) {}

  /** True when the absolute `file` exists (a dangling symlink does not count, as with existsSync). */
  exists(file: string): boolean {
    const folder = path.dirname(file);
    let names = this.folders.get(folder);
    if (names === undefined) {
      names = this.list(folder);
      this.folders.set(folder, names);
    }
    if (names === null) return fs.existsSync(file);
    return names.has(path.basename(file)) && fs.existsSync(file);
  }

  /** True when the absolute `file` is a regular file (or a symlink to one), as a stat would say. */
  isFile(file: string): boolean {
    const folder = path.dirname(file);
    let names = this.folders.get(folder);
    if (names === undefined) {
      names = this.list(folder);
      this.folders.set(folder, names);
    }
    if (names !== null && !names.has(path.basename(file))) return false;
    try {
      return fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true;
    } catch {
      return false;
    }
  }

  private list(folder: string): Set<string> | null {
    try {
      const stats = fs.statSync(folder, { throwIfNoEntry: false });
      if (stats === undefined) {
        this.onListed(folder, undefined);
        return new Set();
      }
      if (!stats.isDirectory()) {
        this.onUnsure();
        return null;
      }
      const names = new Set(fs.readdirSync(folder));
      this.onListed(folder, stats);
      return names;
    } catch {
      this.onUnsure();
      return null;
    }
  }
}
