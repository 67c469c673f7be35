/** Base vs next rootfs entries → the layer of changes, with OCI whiteouts for deletions. */

import type { Writable } from 'node:stream';
import { differingField } from './layer-merge.js';
import { checkTar } from './tar-check.js';
import { entriesOfTar, writeTar, type TarResult, type WriteTarOptions } from './tar.js';
import type { TarEntry } from './tar-header.js';

const SLASH = 0x2f;
/** OCI image-spec, layer.md "Whiteouts": `.wh.<name>` deletes name; `.wh..wh..opq` hides a directory's lower contents. */
const WHITEOUT_PREFIX = Buffer.from('.wh.');
const OPAQUE_NAME = Buffer.from('.wh..wh..opq');

function parentOf(path: Buffer): Buffer | null {
  const end = path.lastIndexOf(SLASH);
  return end === -1 ? null : path.subarray(0, end);
}

function key(path: Buffer): string {
  return path.toString('latin1');
}

function whiteout(parent: Buffer | null, name: Buffer): TarEntry {
  const path = parent === null ? name : Buffer.concat([parent, Buffer.from('/'), name]);
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 0, content: { kind: 'buffer', bytes: Buffer.alloc(0) } };
}

/**
 * The entries of a layer that turns rootfs `base` into rootfs `next` when applied
 * over it: every path of `next` that is new or differs (type, mode, owner, link,
 * content), with its parent directories as they are in `next`; a whiteout
 * `.wh.NAME` for each deleted path whose parent survives; and, for a surviving
 * directory whose base contents were all deleted, one opaque marker
 * `.wh..wh..opq` instead of individual whiteouts. Paths below a directory that
 * became a non-directory get no whiteouts (the new member replaces the tree).
 * Unsorted; pass the result to writeTar. Reads content to compare same-sized files.
 */
export function diffEntries(base: readonly TarEntry[], next: readonly TarEntry[]): TarEntry[] {
  const baseByPath = new Map(base.map((e) => [key(e.path), e]));
  const nextByPath = new Map(next.map((e) => [key(e.path), e]));
  const out = new Map<string, TarEntry>();

  const includeWithParents = (entry: TarEntry): void => {
    out.set(key(entry.path), entry);
    for (let parent = parentOf(entry.path); parent !== null; parent = parentOf(parent)) {
      const k = key(parent);
      if (out.has(k)) break;
      const real = nextByPath.get(k);
      if (real !== undefined) out.set(k, real);
    }
  };

  for (const entry of next) {
    const before = baseByPath.get(key(entry.path));
    if (before === undefined || differingField(before, entry) !== null) includeWithParents(entry);
  }

  // Deleted paths, grouped by their surviving parent directory.
  const deletedByParent = new Map<string, TarEntry[]>();
  for (const entry of base) {
    if (nextByPath.has(key(entry.path))) continue;
    const parent = parentOf(entry.path);
    if (parent !== null) {
      const parentNow = nextByPath.get(key(parent));
      if (parentNow === undefined || parentNow.type !== 'directory') continue;
    }
    const k = parent === null ? '' : key(parent);
    const group = deletedByParent.get(k) ?? [];
    group.push(entry);
    deletedByParent.set(k, group);
  }
  const baseChildCount = new Map<string, number>();
  for (const entry of base) {
    const parent = parentOf(entry.path);
    const k = parent === null ? '' : key(parent);
    baseChildCount.set(k, (baseChildCount.get(k) ?? 0) + 1);
  }
  for (const [parentKey, deleted] of deletedByParent) {
    const parent = parentKey === '' ? null : Buffer.from(parentKey, 'latin1');
    const isAllGone = parent !== null && deleted.length >= 2 && deleted.length === baseChildCount.get(parentKey);
    if (isAllGone) {
      includeWithParents(whiteout(parent, OPAQUE_NAME));
      // An opaque directory hides every lower child, so unchanged survivors must be re-added.
      for (const entry of next) if (parentOf(entry.path) !== null && key(parentOf(entry.path)!) === parentKey) includeWithParents(entry);
      continue;
    }
    for (const entry of deleted) {
      const start = entry.path.lastIndexOf(SLASH) + 1;
      includeWithParents(whiteout(parent, Buffer.concat([WHITEOUT_PREFIX, entry.path.subarray(start)])));
    }
  }
  return [...out.values()];
}

/**
 * Writes the difference layer between two uncompressed layer tars (see
 * diffEntries) to `output` as a deterministic tar; returns its diffID and size. Both
 * inputs pass checkTar first (devices allowed; the image refuses them).
 */
export async function writeDiffLayer(
  baseTar: string,
  nextTar: string,
  output: string | Writable,
  options: WriteTarOptions = {},
): Promise<TarResult> {
  for (const input of [baseTar, nextTar]) checkTar(input, input, { isDeviceAllowed: true });
  return writeTar(diffEntries(entriesOfTar(baseTar), entriesOfTar(nextTar)), output, options);
}
