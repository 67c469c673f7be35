/** Reads an OCI image layout stored in a tar (NAME.oci.tar) in place: index.json, and blobs by digest as byte ranges. */

import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { RedoError } from '../errors.js';
import { indexTar } from '../image/tar.js';

/** An OCI content descriptor (image-spec descriptor.md), the fields redo-ts reads. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

/** A layout archive opened for reading: its index and its blobs, never extracted. */
export interface LayoutArchive {
  path: string;
  /** The parsed index.json. */
  index: { manifests: Descriptor[] };
  /** Whether the archive holds the blob. */
  hasBlob(digest: string): boolean;
  /** Size of a blob in bytes (ERR_REGISTRY_LAYOUT if absent). */
  sizeOf(digest: string): number;
  /** A blob's bytes (for JSON documents; layers are streamed with openBlob). */
  readBlob(digest: string): Buffer;
  /** A stream of a blob's bytes, read from its offset in the archive. */
  openBlob(digest: string): Readable;
}

/**
 * Opens the layout archive at `path` by indexing its tar headers (content is not read).
 * Throws ERR_REGISTRY_LAYOUT when index.json is missing or unreadable.
 */
export function openLayoutArchive(path: string): LayoutArchive {
  const blobs = new Map<string, { offsetBytes: number; sizeBytes: number }>();
  let indexMember: { offsetBytes: number; sizeBytes: number } | undefined;
  for (const member of indexTar(path)) {
    if (member.header.type !== 'file') continue;
    const name = member.header.path.toString('utf8').replace(/^\.\//, '');
    const place = { offsetBytes: member.dataOffsetBytes, sizeBytes: member.header.sizeBytes };
    if (name === 'index.json') indexMember = place;
    const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
    if (blob !== null) blobs.set(`sha256:${blob[1]}`, place);
  }
  const readRange = (place: { offsetBytes: number; sizeBytes: number }): Buffer => {
    const fd = openSync(path, 'r');
    try {
      const bytes = Buffer.alloc(place.sizeBytes);
      readSync(fd, bytes, 0, place.sizeBytes, place.offsetBytes);
      return bytes;
    } finally {
      closeSync(fd);
    }
  };
  if (indexMember === undefined) {
    throw new RedoError('ERR_REGISTRY_LAYOUT', `redo: "${path}": not an OCI image layout (no index.json)`, {
      hint: 'push an image target (NAME.tar or NAME.oci.tar) built by the shared image rules',
    });
  }
  let index: { manifests: Descriptor[] };
  try {
    index = JSON.parse(readRange(indexMember).toString('utf8')) as { manifests: Descriptor[] };
    if (!Array.isArray(index.manifests)) throw new Error('index.json has no manifests list');
  } catch (error) {
    throw new RedoError('ERR_REGISTRY_LAYOUT', `redo: "${path}": index.json is not an OCI image index`, { details: [String(error)], cause: error });
  }
  const placeOf = (digest: string): { offsetBytes: number; sizeBytes: number } => {
    const place = blobs.get(digest);
    if (place === undefined) {
      throw new RedoError('ERR_REGISTRY_LAYOUT', `redo: "${path}": the layout lacks blob ${digest}`, {
        hint: `rebuild it: redo-ts -f ${path}`,
      });
    }
    return place;
  };
  return {
    path,
    index,
    hasBlob: (digest) => blobs.has(digest),
    sizeOf: (digest) => placeOf(digest).sizeBytes,
    readBlob: (digest) => readRange(placeOf(digest)),
    openBlob: (digest) => {
      const place = placeOf(digest);
      if (place.sizeBytes === 0) return createReadStream(path, { start: 1, end: 0 });
      return createReadStream(path, { start: place.offsetBytes, end: place.offsetBytes + place.sizeBytes - 1, highWaterMark: 1 << 20 });
    },
  };
}

/** Reads and parses a JSON blob of the layout. */
export function readJsonBlob<T>(layout: LayoutArchive, digest: string): T {
  return JSON.parse(layout.readBlob(digest).toString('utf8')) as T;
}

