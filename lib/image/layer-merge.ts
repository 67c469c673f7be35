/** Merging rootfs fragments (deterministic tars) into one layer tar. */

import type { Writable } from 'node:stream';
import { RedoError } from '../errors.js';
import { digestBytes, digestFile } from './digest.js';
import { checkTar } from './tar-check.js';
import { entriesOfTar, writeTar, type TarResult, type WriteTarOptions } from './tar.js';
import { pathText, type TarEntry } from './tar-header.js';

/**
 * The first field in which two entries for one path differ, or null when they are
 * the same member (same type, mode, owner, link target, device numbers and, for
 * files, the same size and sha256 of content).
 */
export function differingField(a: TarEntry, b: TarEntry): { field: string; a: string; b: string } | null {
  const pairs: Array<[string, string, string]> = [
    ['type', a.type, b.type],
    ['mode', a.mode.toString(8).padStart(4, '0'), b.mode.toString(8).padStart(4, '0')],
    ['uid', String(a.uid), String(b.uid)],
    ['gid', String(a.gid), String(b.gid)],
    ['link target', a.linkTarget ? pathText(a.linkTarget) : '', b.linkTarget ? pathText(b.linkTarget) : ''],
    ['device', `${a.deviceMajor ?? 0},${a.deviceMinor ?? 0}`, `${b.deviceMajor ?? 0},${b.deviceMinor ?? 0}`],
    ['size', String(a.sizeBytes), String(b.sizeBytes)],
  ];
  for (const [field, x, y] of pairs) if (x !== y) return { field, a: x, b: y };
  if (a.type === 'file') {
    const x = contentDigest(a);
    const y = contentDigest(b);
    if (x !== y) return { field: 'content', a: x, b: y };
  }
  return null;
}

/** sha256 of an entry's content (path and buffer sources; streams are not supported here). */
export function contentDigest(entry: TarEntry): string {
  const content = entry.content;
  if (content === undefined) return digestBytes(Buffer.alloc(0));
  switch (content.kind) {
    case 'buffer':
      return digestBytes(content.bytes);
    case 'path':
      return digestFile(content.path, { offsetBytes: content.offsetBytes ?? 0, sizeBytes: entry.sizeBytes }).digest;
    case 'stream':
      throw new RedoError('ERR_INTERNAL', `redo: "${pathText(entry.path)}": cannot compare streamed content`);
    default: {
      const impossible: never = content;
      throw new Error(`unknown content ${JSON.stringify(impossible)}`);
    }
  }
}

/**
 * Merges fragments (uncompressed tar files, in any member order; each a path, or a
 * `{label, path}` whose label names it in errors) into one
 * deterministic layer tar written to `output`. A path delivered by several
 * fragments must be the same member in each (identical directories merge; identical
 * files are stored once); otherwise throws ERR_LAYER_CONFLICT naming the path, both
 * fragments and the first differing field. Content is copied by offset from the
 * fragments, never held in memory. Returns the layer's diffID and size.
 */
export async function mergeTars(
  inputs: ReadonlyArray<string | LabelledLayer>,
  output: string | Writable,
  options: WriteTarOptions = {},
): Promise<TarResult> {
  const merged = new Map<string, { entry: TarEntry; input: string }>();
  for (const item of inputs) {
    const { label: input, path } = typeof item === 'string' ? { label: item, path: item } : item;
    // Declared devices may go into a layer being assembled; the image refuses them.
    checkTar(path, input, { isDeviceAllowed: true });
    for (const entry of entriesOfTar(path)) {
      const key = entry.path.toString('latin1');
      const previous = merged.get(key);
      if (previous === undefined) {
        merged.set(key, { entry, input });
        continue;
      }
      const difference = differingField(previous.entry, entry);
      if (difference === null) continue;
      throw new RedoError('ERR_LAYER_CONFLICT', `redo: "${pathText(entry.path)}": delivered twice with different ${difference.field}`, {
        details: [`"${previous.input}": ${difference.a}`, `"${input}": ${difference.b}`],
        hint: 'deliver each path from one fragment only, or make both copies identical',
      });
    }
  }
  return writeTar(
    [...merged.values()].map((m) => m.entry),
    output,
    options,
  );
}

/** One layer of an image, for checkLayersDisjoint: its tar and how to name it in messages. */
export interface LabelledLayer {
  label: string;
  path: string;
}

/**
 * Checks that no path is delivered by two layers of one image: in a stacked image the
 * upper copy would silently hide the lower one, so two specs claiming one file is a
 * mistake to report, not to resolve by order. Directories present in several layers
 * with the same metadata are fine (every layer carries its parents). Reads headers
 * only, plus the content of files to describe a difference. Throws
 * ERR_LAYER_CONFLICT naming the path, both layers and the first differing field.
 */
export function checkLayersDisjoint(layers: readonly LabelledLayer[]): void {
  const seen = new Map<string, { entry: TarEntry; label: string }>();
  for (const layer of layers) {
    for (const entry of entriesOfTar(layer.path)) {
      const key = entry.path.toString('latin1');
      const previous = seen.get(key);
      if (previous === undefined) {
        seen.set(key, { entry, label: layer.label });
        continue;
      }
      const difference = differingField(previous.entry, entry);
      if (entry.type === 'directory' && difference === null) continue;
      throw new RedoError('ERR_LAYER_CONFLICT', `redo: "${pathText(entry.path)}": delivered by two layers of one image`, {
        details: [
          `lower: "${previous.label}"`,
          `upper: "${layer.label}"`,
          difference === null ? 'the same member in both' : `first difference: ${difference.field}: ${difference.a} vs ${difference.b}`,
        ],
        hint: 'deliver each path from one spec only, or set `allowOverlap: true` in the image description if the upper layer is meant to replace it',
      });
    }
  }
}
