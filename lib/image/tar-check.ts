/** The one check every tar passes before it enters a layer or an image: a real tar whose members cannot escape, alias or smuggle. */

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { RedoError } from '../errors.js';
import { indexTar } from './tar.js';
import { BLOCK_BYTES, isZeroBlock, paddingBytes, pathText, toMemberPath } from './tar-header.js';

/** Options for checkTar. */
export interface CheckTarOptions {
  /**
   * Whether character and block devices (and fifos) may be members: true for a layer
   * being assembled from declared inputs, false for a layer entering an image (the
   * container runtime provides `/dev`; a device node in an image is a way into the host).
   */
  isDeviceAllowed: boolean;
  /**
   * Whether a member name may start with `/` (default true: readers that unpack or
   * re-write the archive drop the slash). False for a layer that enters an image byte
   * for byte: its names are what every client sees, and `/etc/x` is not `etc/x`.
   */
  isAbsoluteNameAllowed?: boolean;
}

/**
 * Checks the uncompressed tar file at `path`, named `label` (the input as the user
 * wrote it) in every message, before any byte of it is used:
 * - it is a tar: a whole number of 512-byte blocks, at least the two-block end marker,
 *   every header's checksum right, and the member list ends with a zero block
 *   (ERR_TAR_MALFORMED: a short non-tar file is not an empty layer);
 * - no member name has a `..` component or a NUL byte, and none is empty (ERR_LAYER_PATH);
 * - no member name starts with `/` unless `isAbsoluteNameAllowed` (ERR_LAYER_PATH);
 * - no path is a member twice, but for identical directories (ERR_LAYER_PATH);
 * - every hardlink names an earlier regular file of the same archive (ERR_LAYER_PATH);
 * - no member is of a type we do not write (GNU sparse, volume labels...), and no
 *   device or fifo unless `isDeviceAllowed` (ERR_LAYER_SPECIAL_FILE).
 * Symlinks may point anywhere: they resolve inside the container's rootfs. Reads
 * headers only. Returns the number of members.
 */
export function checkTar(path: string, label: string, options: CheckTarOptions): number {
  const subject = `redo: "${label}"`;
  let sizeBytes: number;
  const fd = openSync(path, 'r');
  try {
    sizeBytes = fstatSync(fd).size;
    if (sizeBytes < 2 * BLOCK_BYTES || sizeBytes % BLOCK_BYTES !== 0) {
      throw new RedoError('ERR_TAR_MALFORMED', `${subject}: not a tar archive`, {
        details: [`size: ${sizeBytes} bytes, wanted a multiple of ${BLOCK_BYTES} and at least ${2 * BLOCK_BYTES} (the end-of-archive marker)`],
        hint: 'a layer is an uncompressed tar; an empty layer is still a tar (1024 zero bytes)',
      });
    }
  } finally {
    closeSync(fd);
  }
  let members;
  try {
    members = indexTar(path);
  } catch (cause) {
    if (cause instanceof RedoError && cause.code === 'ERR_TAR_MALFORMED') {
      throw new RedoError('ERR_TAR_MALFORMED', `${subject}: not a readable tar archive`, { details: [cause.headline], cause });
    }
    throw cause;
  }
  const last = members[members.length - 1];
  const end = last === undefined ? 0 : last.dataOffsetBytes + (last.header.type === 'file' || last.header.type === 'other' ? last.header.sizeBytes + paddingBytes(last.header.sizeBytes) : 0);
  if (!isZeroBlockAt(path, end)) {
    throw new RedoError('ERR_TAR_MALFORMED', `${subject}: not a tar archive`, {
      details: [`no end-of-archive marker at byte ${end} of ${sizeBytes}`],
    });
  }
  const seen = new Map<string, { type: string; mode: number; uid: number; gid: number }>();
  for (const member of members) {
    const header = member.header;
    const raw = pathText(header.path);
    const isRoot = raw === '.' || raw === './' || raw === '/' ;
    if (isRoot && header.type === 'directory') continue;
    let name: Buffer;
    try {
      name = toMemberPath(header.path);
    } catch (cause) {
      throw new RedoError('ERR_LAYER_PATH', `${subject}: member "${raw}" escapes the archive root`, {
        details: ['wanted: a relative path without ".." or NUL bytes', `found: "${raw}"`],
        hint: 'rebuild the archive from inside its root folder (tar -C ROOT -cf OUT.tar .)',
        cause,
      });
    }
    if (options.isAbsoluteNameAllowed === false && raw.startsWith('/')) {
      throw new RedoError('ERR_LAYER_PATH', `${subject}: member "${raw}" has an absolute name`, {
        details: [`wanted: a name relative to the image's root ("${pathText(name)}")`, `found: "${raw}"`, 'the archive enters the image byte for byte, so its names are what every client sees'],
        hint: 'rebuild the archive from inside its root folder (tar -C ROOT -cf OUT.tar .), or list it in a NAME.layer, which writes relative names',
      });
    }
    const key = name.toString('latin1');
    const shown = pathText(name);
    if (header.type === 'other') {
      throw new RedoError('ERR_LAYER_SPECIAL_FILE', `${subject}: member "${shown}" has tar type "${header.typeflag}", which a layer cannot hold`, {
        hint: 'write the archive without sparse files or volume labels (GNU tar: no --sparse)',
      });
    }
    if (!options.isDeviceAllowed && (header.type === 'character-device' || header.type === 'block-device' || header.type === 'fifo')) {
      throw new RedoError('ERR_LAYER_SPECIAL_FILE', `${subject}: member "${shown}" is a ${header.type}, which an image layer may not hold`, {
        details: header.type === 'fifo' ? [] : [`device: ${header.deviceMajor},${header.deviceMinor}`],
        hint: 'leave it out of the layer: the container runtime provides /dev, and a fifo can be made at run time',
      });
    }
    if (header.type === 'hardlink') {
      let target: string | undefined;
      try {
        target = toMemberPath(header.linkTarget).toString('latin1');
      } catch {
        target = undefined;
      }
      if (target === undefined || seen.get(target)?.type !== 'file') {
        throw new RedoError('ERR_LAYER_PATH', `${subject}: member "${shown}" is a hardlink to something that is not an earlier file of the archive`, {
          details: [`link target: "${pathText(header.linkTarget)}"`],
          hint: 'a hardlink may only name a regular file stored before it in the same archive',
        });
      }
      seen.set(key, seen.get(target)!);
      continue;
    }
    const previous = seen.get(key);
    const current = { type: header.type, mode: header.mode, uid: header.uid, gid: header.gid };
    if (previous !== undefined) {
      const isSameDirectory = previous.type === 'directory' && current.type === 'directory' && previous.mode === current.mode && previous.uid === current.uid && previous.gid === current.gid;
      if (!isSameDirectory) {
        throw new RedoError('ERR_LAYER_PATH', `${subject}: member "${shown}" is stored twice`, {
          details: [`first: ${previous.type}`, `again: ${current.type}`],
          hint: 'an extractor keeps the last copy and a reader may see the first: store each path once',
        });
      }
    }
    seen.set(key, current);
  }
  return members.length;
}

function isZeroBlockAt(path: string, offsetBytes: number): boolean {
  const block = Buffer.alloc(BLOCK_BYTES);
  const fd = openSync(path, 'r');
  try {
    return readSync(fd, block, 0, BLOCK_BYTES, offsetBytes) === BLOCK_BYTES && isZeroBlock(block);
  } finally {
    closeSync(fd);
  }
}
