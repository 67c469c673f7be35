/** Layer compression (gzip, zstd) with pinned codecs, levels, chunking and header bytes, so a compressed layer's digest is the same on every machine. */

import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { RedoError } from '../errors.js';
import { finishDigest, type Sha256Digest } from './digest.js';

/** How a layer blob is stored: the uncompressed tar (`none`), gzip or zstd. */
export type LayerCodec = 'none' | 'gzip' | 'zstd';

/** A codec and its level (0 for `none`). */
export interface LayerCompression {
  codec: LayerCodec;
  level: number;
}

/** The compression level every gzip layer uses unless the image names another. */
export const GZIP_LEVEL = 6;
/** The compression level every zstd layer uses unless the image names another (zstd's own default). */
export const ZSTD_LEVEL = 3;
/** OS byte of the gzip header: 255, "unknown" (RFC 1952), what Go's compress/gzip writes. */
export const GZIP_OS_BYTE = 0xff;

/** The levels each codec accepts (zstd's 20-22 need hundreds of MiB of memory: refused). */
export const layerCompressionLevels: Record<LayerCodec, { min: number; max: number; default: number }> = {
  none: { min: 0, max: 0, default: 0 },
  gzip: { min: 1, max: 9, default: GZIP_LEVEL },
  zstd: { min: 1, max: 19, default: ZSTD_LEVEL },
};

/** No compression: the layer blob is its tar. */
export const noCompression: LayerCompression = { codec: 'none', level: 0 };

/**
 * The input is fed to either codec in slices of exactly this many bytes (the last one
 * shorter), whatever the reads return: zstd's streaming output depends on where its
 * input is cut, so the cut is part of the format we pin.
 */
const chunkBytes = 1 << 20;

/** OCI layer media types by codec (image-spec media-types.md). */
export const layerMediaTypes: Record<LayerCodec, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

/** The file name suffix of a layer in the docker archive by codec: `.tar`, `.tar.gz`, `.tar.zst`. */
export const layerFileSuffixes: Record<LayerCodec, string> = { none: '.tar', gzip: '.tar.gz', zstd: '.tar.zst' };

/**
 * Parses `CODEC` or `CODEC:LEVEL` (`none`, `gzip`, `gzip:9`, `zstd`, `zstd:19`);
 * returns the compression, or a sentence saying what is wrong with `text`.
 */
export function parseLayerCompression(text: string): LayerCompression | string {
  const match = /^(none|gzip|zstd)(?::(\d+))?$/.exec(text);
  if (match === null) return `"${text}" is not none, gzip, zstd, gzip:LEVEL or zstd:LEVEL`;
  const codec = match[1] as LayerCodec;
  const range = layerCompressionLevels[codec];
  if (match[2] === undefined) return { codec, level: range.default };
  const level = Number(match[2]);
  if (codec === 'none' || level < range.min || level > range.max) {
    return codec === 'none' ? `"${text}": none takes no level` : `"${text}": the ${codec} level must be from ${range.min} to ${range.max}`;
  }
  return { codec, level };
}

/**
 * Pins the 10-byte gzip header (RFC 1952 section 2.3):
 *
 *     1f 8b | 08 (deflate) | 00 (no flags: no name, no comment) | 00 00 00 00 (mtime 0)
 *     | 00 (XFL) | ff (OS unknown)
 *
 * zlib (and pako, its port) writes the OS byte of its build (03 on Linux) and an XFL
 * that depends on the level; everything else it writes is already fixed.
 */
export function pinGzipHeader(header: Buffer | Uint8Array): void {
  header[4] = 0;
  header[5] = 0;
  header[6] = 0;
  header[7] = 0;
  header[8] = 0;
  header[9] = GZIP_OS_BYTE;
}

/** What a compressor produced: the blob digest of the compressed bytes and their size. */
export interface GzipResult {
  digest: Sha256Digest;
  sizeBytes: number;
}

/** A streaming compressor: `push` a slice (the last with `isLast`), and it calls `emit` with output, in order. */
interface Compressor {
  push(slice: Uint8Array, isLast: boolean): void;
}

/**
 * gzip by pako 3.0.3 (pinned exactly in package.json): a JavaScript port of zlib's
 * deflate (windowBits 15, memLevel 8, default strategy), the same bytes on any CPU and
 * any Node. Node's own zlib is not used to compress: its output depends on which zlib
 * Node was built with. Node 20's bundled zlib (1.3.1, Chromium's) happens to give
 * pako's bytes (checked at levels 1, 6 and 9, so the gzip digests did not change with
 * the switch), but Debian 12's system zlib 1.2.13, which a Node built with
 * --shared-zlib (Debian's own nodejs package) links, gives other bytes at every level,
 * and zlib-ng (Fedora's zlib) others again.
 */
async function gzipCompressor(level: number, emit: (bytes: Uint8Array) => void): Promise<Compressor> {
  const { Deflate } = await import('pako');
  const deflate = new Deflate({ level, gzip: true, windowBits: 15, memLevel: 8, chunkSize: chunkBytes });
  let isFirst = true;
  deflate.onData = (chunk: Uint8Array) => {
    if (isFirst) {
      // The whole 10-byte header comes in the first output chunk.
      pinGzipHeader(chunk);
      isFirst = false;
    }
    emit(chunk);
  };
  deflate.onEnd = () => undefined;
  return {
    push(slice, isLast) {
      if (!deflate.push(slice, isLast) || deflate.err !== 0) throw new Error(`gzip failed: ${deflate.msg || String(deflate.err)}`);
    },
  };
}

/**
 * zstd by @hpcc-js/wasm-zstd 1.12.5 (pinned exactly: zstd 1.5.7 compiled to
 * WebAssembly, whose arithmetic is the same on every CPU), one frame, single-threaded,
 * no checksum, no content size (streamed), fed 1 MiB slices. The WebAssembly module is
 * loaded on first use only.
 */
async function zstdCompressor(level: number, emit: (bytes: Uint8Array) => void): Promise<Compressor> {
  const { Zstd } = await import('@hpcc-js/wasm-zstd');
  const zstd = await Zstd.load();
  zstd.reset();
  zstd.setCompressionLevel(level);
  return {
    push(slice, isLast) {
      if (slice.length > 0) emit(zstd.compressChunk(slice));
      if (isLast) {
        emit(zstd.compressEnd());
        zstd.reset();
      }
    },
  };
}

/**
 * Compresses file `input` to file `output` (created or truncated, mode 0644) with
 * `compression` (gzip or zstd; `none` is refused: an uncompressed layer is its tar),
 * reading the input in 1 MiB slices and hashing the compressed bytes as they are
 * written. The bytes depend only on the input, the codec and the level: golden digests
 * in test/golden/compress.json guard them. Throws ERR_IMAGE_STORE when the codec fails.
 */
export async function compressFile(input: string, output: string, compression: LayerCompression): Promise<GzipResult> {
  const hash = createHash('sha256');
  const outFd = openSync(output, 'w', 0o644);
  let sizeBytes = 0;
  const emit = (bytes: Uint8Array): void => {
    if (bytes.length === 0) return;
    hash.update(bytes);
    let at = 0;
    while (at < bytes.length) at += writeSync(outFd, bytes, at, bytes.length - at);
    sizeBytes += bytes.length;
  };
  const inFd = openSync(input, 'r');
  try {
    let compressor: Compressor;
    switch (compression.codec) {
      case 'gzip':
        compressor = await gzipCompressor(compression.level, emit);
        break;
      case 'zstd':
        compressor = await zstdCompressor(compression.level, emit);
        break;
      case 'none':
        throw new RedoError('ERR_IMAGE_STORE', `redo: "${input}": compressFile was asked for no compression`);
      default: {
        const never: never = compression.codec;
        throw new Error(`unknown codec ${String(never)}`);
      }
    }
    // Two buffers: a slice is pushed whole, and the next read tells whether it was the last.
    let current = Buffer.allocUnsafe(chunkBytes);
    let next = Buffer.allocUnsafe(chunkBytes);
    let currentLength = readFull(inFd, current);
    for (;;) {
      const nextLength = currentLength === chunkBytes ? readFull(inFd, next) : 0;
      const isLast = nextLength === 0;
      try {
        compressor.push(current.subarray(0, currentLength), isLast);
      } catch (cause) {
        throw new RedoError('ERR_IMAGE_STORE', `redo: "${input}": ${compression.codec} compression failed`, { details: [String((cause as Error).message)], cause });
      }
      if (isLast) break;
      [current, next] = [next, current];
      currentLength = nextLength;
    }
  } finally {
    closeSync(inFd);
    closeSync(outFd);
  }
  return { digest: finishDigest(hash), sizeBytes };
}

/** Fills `buffer` from `fd` (short only at the end of the file); returns the bytes read. */
function readFull(fd: number, buffer: Buffer): number {
  let filled = 0;
  while (filled < buffer.length) {
    const read = readSync(fd, buffer, filled, buffer.length - filled, null);
    if (read === 0) break;
    filled += read;
  }
  return filled;
}

/** gzip at `level` (default 6) with the pinned header: compressFile with gzip. */
export async function gzipFile(input: string, output: string, level = GZIP_LEVEL): Promise<GzipResult> {
  return compressFile(input, output, { codec: 'gzip', level });
}
