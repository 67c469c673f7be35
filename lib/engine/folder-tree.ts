/** A walk over everything below a folder, in a fixed order: what a folder dependency's identity and the no-op memo read. */

import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Calls `visit` for every member below the folder `root` (not `root` itself), depth-first,
 * names in sort order, with its path relative to `root` (`/`-separated), its absolute path
 * and its lstat: symlinks are reported, never followed. A subfolder that cannot be listed
 * is reported once more with `stats` undefined and not entered. Reads only; throws only
 * when `root` itself cannot be listed.
 */
export function visitFolderTree(root: string, visit: (relative: string, absolute: string, stats: fs.Stats | undefined) => void): void {
  const walk = (folder: string, prefix: string, names: string[]): void => {
    for (const name of names.sort()) {
      const absolute = path.join(folder, name);
      const relative = `${prefix}${name}`;
      let stats: fs.Stats;
      try {
        stats = fs.lstatSync(absolute);
      } catch {
        // Gone between the listing and the stat: a change the next check sees.
        continue;
      }
      visit(relative, absolute, stats);
      if (!stats.isDirectory()) continue;
      let inner: string[];
      try {
        inner = fs.readdirSync(absolute);
      } catch {
        visit(relative, absolute, undefined);
        continue;
      }
      walk(absolute, `${relative}/`, inner);
    }
  };
  walk(root, '', fs.readdirSync(root));
}
