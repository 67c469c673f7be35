/** The image description (config) and its canonical JSON, shared by docker-archive and OCI writers. */

import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { compressFile, layerFileSuffixes, noCompression, type LayerCodec, type LayerCompression } from './compress.js';
import { digestFile, digestHex, type Sha256Digest } from './digest.js';
import { checkLayersDisjoint } from './layer-merge.js';
import { checkTar } from './tar-check.js';
import { mtimeFromEnvironment } from './tar.js';

/**
 * What an image runs and how it is described. Field names follow the OCI image
 * config (`config` object: Entrypoint, Cmd, Env, WorkingDir, User, Labels,
 * ExposedPorts). `history` holds one comment per layer, in layer order.
 * `createdSeconds` defaults to SOURCE_DATE_EPOCH, else 0 (1970-01-01T00:00:00Z);
 * the clock is never read.
 */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
  /** e.g. ["8080/tcp"]. */
  exposedPorts?: string[];
  history?: string[];
  createdSeconds?: number;
}

/** Input of the image writers: layer tars (uncompressed, in order), a config, names. */
export interface ImageInput {
  /** Paths of uncompressed layer tars, bottom layer first. */
  layers: string[];
  config: ImageConfig;
  /** e.g. ["localhost/app:latest"] (docker archive); the OCI writer ignores it. */
  repoTags?: string[];
  /** Store layers gzip-compressed (pinned header, level 6); default false. Same as `compression: {codec: 'gzip', level: 6}`. */
  gzip?: boolean;
  /** How layers are stored (compressFile); wins over `gzip`; default none. */
  compression?: LayerCompression;
  /** How each layer is named in errors (default: its path), e.g. as the image description lists it. */
  layerLabels?: string[];
  /** false: a path delivered by two layers is ERR_LAYER_CONFLICT (checkLayersDisjoint). Default true. */
  isOverlapAllowed?: boolean;
  /** Layers of a base image, as stored blobs (kept byte for byte), placed below `layers`. */
  baseLayers?: PreparedLayer[];
  /** Manifest annotations (OCI layout only), e.g. org.opencontainers.image.base.name. */
  annotations?: Record<string, string>;
}

/** What an image writer produced: every digest a client will check. */
export interface ImageResult {
  configDigest: Sha256Digest;
  manifestDigest: Sha256Digest;
  diffIds: Sha256Digest[];
  layerDigests: Sha256Digest[];
}

/**
 * JSON with object keys sorted by UTF-16 code units at every level and no
 * whitespace: one byte sequence per value, whatever order the caller built it in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object)
    .filter((k) => object[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(object[k])}`).join(',')}}`;
}

/** RFC 3339 UTC timestamp of a whole number of seconds, e.g. 1970-01-01T00:00:00Z. */
export function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/**
 * The image config JSON bytes (OCI image-spec config.md, also what `docker load`
 * reads): architecture, os, config {...}, created, history (one entry per layer),
 * rootfs {type: "layers", diff_ids}. Deterministic: canonical JSON.
 */
export function imageConfigJson(config: ImageConfig, diffIds: readonly Sha256Digest[]): Buffer {
  const created = rfc3339(config.createdSeconds ?? mtimeFromEnvironment());
  const runtime: Record<string, unknown> = {
    Entrypoint: config.entrypoint,
    Cmd: config.cmd,
    Env: config.env,
    WorkingDir: config.workingDir,
    User: config.user,
    Labels: config.labels,
    ExposedPorts:
      config.exposedPorts === undefined ? undefined : Object.fromEntries(config.exposedPorts.map((port) => [port, {}])),
  };
  const document = {
    architecture: config.architecture,
    os: config.os,
    variant: config.variant,
    created,
    config: runtime,
    history: diffIds.map((_, i) => ({
      created,
      created_by: 'redo-ts',
      comment: config.history?.[i],
    })),
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  return Buffer.from(canonicalJson(document), 'utf8');
}

/** A layer ready to be stored: its diffID, and the blob (file, digest, size) clients fetch. */
export interface PreparedLayer {
  diffId: Sha256Digest;
  blobPath: string;
  blobDigest: Sha256Digest;
  blobSizeBytes: number;
  /** How the blob is compressed (a base layer keeps its registry's). */
  codec: LayerCodec;
}

/** The compression an image input asks for: `compression`, else gzip level 6 when `gzip`, else none. */
export function compressionOf(input: Pick<ImageInput, 'gzip' | 'compression'>): LayerCompression {
  return input.compression ?? (input.gzip === true ? { codec: 'gzip', level: 6 } : noCompression);
}

/**
 * Checks every layer tar with checkTar (no devices, no absolute names: see CheckTarOptions) and, unless
 * `input.isOverlapAllowed`, with checkLayersDisjoint, before anything is written; then
 * hashes each (diffID) and, when compressed (compressionOf), compresses it into
 * `scratchDir` (created) as `<index>.tar.gz` / `.tar.zst`. Uncompressed layers are referenced in place. Both image writers
 * call this, so a layer refused for one output is refused for the other.
 */
export async function prepareLayers(input: ImageInput, scratchDir: string): Promise<PreparedLayer[]> {
  const { layers } = input;
  const compression = compressionOf(input);
  const isCompressed = compression.codec !== 'none';
  const labelled = layers.map((path, index) => ({ path, label: input.layerLabels?.[index] ?? path }));
  for (const layer of labelled) checkTar(layer.path, layer.label, { isDeviceAllowed: false, isAbsoluteNameAllowed: false });
  if (input.isOverlapAllowed === false) checkLayersDisjoint(labelled);
  const prepared: PreparedLayer[] = [];
  if (isCompressed) mkdirSync(scratchDir, { recursive: true });
  for (const [index, layer] of layers.entries()) {
    const { digest: diffId, sizeBytes } = digestFile(layer);
    if (!isCompressed) {
      prepared.push({ diffId, blobPath: layer, blobDigest: diffId, blobSizeBytes: sizeBytes, codec: 'none' });
      continue;
    }
    const blobPath = join(scratchDir, `${index}${layerFileSuffixes[compression.codec]}`);
    const result = await compressFile(layer, blobPath, compression);
    prepared.push({ diffId, blobPath, blobDigest: result.digest, blobSizeBytes: result.sizeBytes, codec: compression.codec });
  }
  return prepared;
}

/** Copies a prepared blob to `blobs/sha256/<hex>` under `dir` (no-op if already there). */
export function storeBlob(dir: string, layer: PreparedLayer): void {
  copyFileSync(layer.blobPath, join(dir, 'blobs', 'sha256', digestHex(layer.blobDigest)));
}

/** Removes a scratch folder made by prepareLayers. */
export function removeScratch(scratchDir: string): void {
  rmSync(scratchDir, { recursive: true, force: true });
}
