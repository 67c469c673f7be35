/** Splitting one final rootfs into layers by an explicit assignment of paths (no whiteouts needed). */

import { RedoError } from '../errors.js';
import { MetadataMatcher } from './metadata.js';
import type { TarEntry } from './tar-header.js';

/**
 * Splits the entries of a final rootfs into `patterns.length` layers: each entry
 * goes to the first layer with a pattern matching it (patterns as in metadata
 * tables: `usr/share/**`, `etc/motd`, `*`), and entries matched by no pattern go to
 * the last layer. Each layer also carries the ancestors of its entries with their
 * real metadata, so stacking the layers never changes a directory's mode or owner.
 * Since no path is delivered by two layers with different content, no whiteouts
 * are needed and a change to one layer's paths leaves the others byte-identical.
 * Throws ERR_METADATA_UNMATCHED for a pattern that matches nothing.
 */
export function partitionEntries(entries: readonly TarEntry[], patterns: readonly string[][]): TarEntry[][] {
  if (patterns.length === 0) throw new RedoError('ERR_USAGE', 'redo: partitionEntries needs at least one layer');
  const matchers = patterns.map(
    (list, layer) =>
      new MetadataMatcher({ rules: list.map((pattern) => ({ pattern, mode: 0, where: `layer ${layer + 1} pattern "${pattern}"` })) }),
  );
  const byPath = new Map(entries.map((e) => [e.path.toString('latin1'), e]));
  const layers: Array<Map<string, TarEntry>> = patterns.map(() => new Map());
  for (const entry of entries) {
    let layer = matchers.findIndex((m) => m.resolve(entry.path, { mode: -1, uid: 0, gid: 0 }).mode !== -1);
    if (layer === -1) layer = patterns.length - 1;
    const target = layers[layer]!;
    target.set(entry.path.toString('latin1'), entry);
    for (let end = entry.path.lastIndexOf(0x2f); end > 0; end = entry.path.lastIndexOf(0x2f, end - 1)) {
      const key = entry.path.subarray(0, end).toString('latin1');
      if (target.has(key)) break;
      const parent = byPath.get(key);
      if (parent !== undefined) target.set(key, parent);
    }
  }
  matchers.forEach((m) => m.checkAllMatched('the rootfs being split into layers'));
  return layers.map((layer) => [...layer.values()]);
}

