/**
 * Pinned base images: `base: REGISTRY/REPO@sha256:…` in an image description. The
 * manifest, config and layer blobs are fetched once into the content-addressed source
 * cache, checked against their digests on every use, and become the bottom layers.
 */

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RedoError } from '../errors.js';
import type { LayerCodec } from '../image/compress.js';
import { toSha256Digest, type Sha256Digest } from '../image/digest.js';
import type { ImageConfig, PreparedLayer } from '../image/image-config.js';
import { parseIntegrity, type Integrity } from '../sources/integrity.js';
import { holdTemporary } from '../sources/scratch.js';
import type { BlobStore } from '../image/blob-store.js';
import { cacheDirFrom, copyOutOfStore, damagedEntryError, findInStore, insertIntoStore, lookUpInStore, readOutOfStore } from '../sources/store.js';
import { RegistryClient, manifestMediaTypes } from './client.js';
import type { Descriptor } from './layout-archive.js';
import { formatReference, parseReference, type RegistryReference } from './reference.js';

/** A base image ready to go under an image's own layers. */
export interface BaseImage {
  /** The pinned reference as written (`HOST/REPO[:TAG]@sha256:…`). */
  reference: string;
  /** `HOST/REPO@sha256:…` of the platform's manifest (for the base.name annotation). */
  manifestReference: string;
  manifestDigest: string;
  /** Layers bottom first, as stored blobs (plain, gzip or zstd, byte for byte the registry's). */
  layers: PreparedLayer[];
  /** The base's image config JSON. */
  config: BaseConfig;
}

/** The parts of a base image config redo-ts reads. */
export interface BaseConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string; User?: string; Labels?: Record<string, string>; ExposedPorts?: Record<string, unknown> };
  rootfs?: { diff_ids?: string[] };
}

/** Options of fetchBaseImage: where credentials and the cache are, and which platform to pick from an index. */
export interface FetchBaseOptions {
  env: NodeJS.ProcessEnv;
  architecture: string;
  os: string;
  variant?: string;
  isInsecure?: boolean;
  /**
   * The project's image store: each layer is copied into it from the cache, hashed in
   * that same pass (one read of the cached file), and the layers' paths are the store's
   * blobs. Without it, a cached layer is hashed in a pass of its own before use.
   */
  store?: BlobStore;
}

/** A cached layer whose bytes did not hash to its digest while being copied into the image store. */
class DamagedCopy extends Error {
  constructor(readonly lookup: { path: string; found: Integrity }) {
    super(`damaged cache entry ${lookup.path}`);
  }
}

const layerTypes = new Map<string, LayerCodec>([
  ['application/vnd.oci.image.layer.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
  ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
]);

/**
 * Requires a digest in a base reference: throws ERR_REGISTRY_REFERENCE when the text
 * names only a tag (a tag moves; a build must not). Returns the parsed reference.
 */
export function requirePinnedReference(text: string, where: string): RegistryReference & { digest: string } {
  const reference = parseReference(text);
  if (reference.digest === undefined) {
    throw new RedoError('ERR_REGISTRY_REFERENCE', `redo: "${where}": base "${text}" names a tag, not a digest`, {
      details: ['a base image must be pinned: HOST/REPOSITORY[:TAG]@sha256:…'],
      hint: `run \`redo-ts pin ${where}\` to write the digest the tag points at now`,
    });
  }
  return reference as RegistryReference & { digest: string };
}

function integrityOf(digest: string): Integrity {
  const integrity = parseIntegrity(`sha256-${Buffer.from(digest.slice('sha256:'.length), 'hex').toString('base64')}`);
  if (integrity === undefined) throw new Error(`cannot express ${digest} as an integrity`);
  return integrity;
}

/**
 * Fetches (or finds in the cache) the base image `text` names for the platform in
 * `options`, and returns its layers and config. Every blob is hashed in the pass that
 * uses it (manifests and config as they are read, layers as they are copied into
 * `options.store`; without a store, a cached layer is hashed before use); a
 * cached copy that no longer matches is fetched again, and bytes from the registry
 * that do not match are refused (ERR_REGISTRY_DIGEST) and never cached. Throws
 * ERR_REGISTRY_REFERENCE for a tag without a digest, ERR_REGISTRY_REJECTED when an
 * index has no manifest for the platform or a layer type is unsupported.
 * Side effects: adds blobs to the cache (`$REDO_TS_CACHE`, else ~/.cache/redo-ts).
 */
export async function fetchBaseImage(text: string, where: string, options: FetchBaseOptions): Promise<BaseImage> {
  const reference = requirePinnedReference(text, where);
  const cacheDir = cacheDirFrom(options.env);
  let client: RegistryClient | undefined;
  const connect = (): RegistryClient =>
    (client ??= new RegistryClient(reference.host, { env: options.env, label: text, ...(options.isInsecure === undefined ? {} : { isInsecure: options.isInsecure }) }));
  const origin = (digest: string): string => formatReference(reference, { digest });

  /**
   * Fetches the blob `digest` from the registry into the cache (the client checks its
   * digest and size as it receives it; nothing else is cached) and returns the cached
   * path. `damaged`: the cache entry it replaces, dropped because its bytes did not
   * match; if the registry cannot give the blob, the error names that entry.
   */
  const fetchIntoCache = async (digest: string, kind: 'manifest' | 'blob', sizeBytes: number | undefined, damaged?: { path: string; found: Integrity }): Promise<string> => {
    const integrity = integrityOf(digest);
    const scratch = join(cacheDir, 'tmp');
    mkdirSync(scratch, { recursive: true });
    const temporary = join(scratch, `base-${process.pid}-${digest.slice(7, 23)}`);
    // Removed on every exit path, a signal included (SIGKILL aside).
    const release = holdTemporary(temporary);
    try {
      if (kind === 'manifest') {
        const found = await connect().getManifest(reference.repository, digest, manifestMediaTypes);
        if (found === undefined) throw notFound(text, digest);
        writeFileSync(temporary, found.bytes);
      } else {
        const size = await connect().fetchBlob(reference.repository, digest, temporary, sizeBytes);
        if (size === undefined) throw notFound(text, digest);
      }
      return await insertIntoStore(cacheDir, integrity, temporary, origin(digest));
    } catch (cause) {
      if (damaged === undefined || !(cause instanceof RedoError)) throw cause;
      throw damagedEntryError(`redo: "${origin(digest)}"`, integrity, damaged, 'the registry could not give the blob again: fix the registry or the network, then build again',
        [`fetching it again failed: ${cause.message.split('\n')[0]}`], cause);
    } finally {
      rmSync(temporary, { force: true });
      release();
    }
  };

  /**
   * Bytes of a manifest or config blob: a cached copy is read once and hashed in memory
   * (readOutOfStore); a damaged one is dropped and fetched again.
   */
  const smallBlob = async (digest: string, kind: 'manifest' | 'blob', sizeBytes?: number): Promise<Buffer> => {
    const integrity = integrityOf(digest);
    const entry = await lookUpInStore(cacheDir, integrity);
    let damaged: { path: string; found: Integrity } | undefined;
    if (entry.kind === 'hit') {
      const read = await readOutOfStore(cacheDir, integrity, entry.path);
      if (read.kind === 'hit') return read.bytes;
      if (read.kind === 'damaged') damaged = read;
    }
    // Just fetched and hashed as received: read back without another check.
    return readFileSync(await fetchIntoCache(digest, kind, sizeBytes, damaged));
  };

  /**
   * Path of a checked copy of layer blob `digest`. With an image store: the store's blob,
   * copied from the cache and hashed in that one pass (a damaged entry is dropped, the
   * partial copy removed, and the blob fetched again); a blob the store already holds is
   * not read at all. Without one: the cached file, hashed first (findInStore).
   */
  const layerBlob = async (digest: string, sizeBytes: number): Promise<string> => {
    const integrity = integrityOf(digest);
    const store = options.store;
    if (store === undefined) {
      const cached = await findInStore(cacheDir, integrity);
      if (cached.kind === 'hit') return cached.path;
      return fetchIntoCache(digest, 'blob', sizeBytes, cached.kind === 'damaged' ? cached : undefined);
    }
    const stored = toSha256Digest(digest);
    if (store.hasSize(digest, sizeBytes)) return store.blobPath(stored);
    const entry = await lookUpInStore(cacheDir, integrity);
    let damaged: { path: string; found: Integrity } | undefined;
    if (entry.kind === 'hit') {
      try {
        await store.putWritten(async (temporary) => {
          const copied = await copyOutOfStore(cacheDir, integrity, entry.path, temporary);
          if (copied.kind === 'damaged') throw new DamagedCopy(copied);
          if (copied.kind === 'absent') throw new DamagedCopy({ path: entry.path, found: 'missing' as Integrity });
          return { digest: stored, sizeBytes };
        });
        return store.blobPath(stored);
      } catch (cause) {
        if (!(cause instanceof DamagedCopy)) throw cause;
        if (cause.lookup.found !== 'missing') damaged = cause.lookup;
      }
    }
    // Fetched into the cache, checked as received; the store copies it in the kernel.
    store.putFile(await fetchIntoCache(digest, 'blob', sizeBytes, damaged), stored);
    return store.blobPath(stored);
  };

  try {
    let manifestDigest = reference.digest;
    let manifest = JSON.parse((await smallBlob(manifestDigest, 'manifest')).toString('utf8')) as { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    if (Array.isArray(manifest.manifests)) {
      const wanted = `${options.os}/${options.architecture}${options.variant === undefined ? '' : `/${options.variant}`}`;
      const chosen = manifest.manifests.find((m) => m.platform?.os === options.os && m.platform.architecture === options.architecture && (options.variant === undefined || m.platform.variant === options.variant));
      if (chosen === undefined) {
        throw new RedoError('ERR_REGISTRY_REJECTED', `redo: "${where}": base "${text}" has no image for ${wanted}`, {
          details: [`platforms in its index: ${manifest.manifests.map((m) => (m.platform === undefined ? '?' : `${m.platform.os}/${m.platform.architecture}`)).join(', ')}`],
          hint: 'pick a base built for this platform, or set the description\'s architecture/os',
        });
      }
      manifestDigest = chosen.digest;
      manifest = JSON.parse((await smallBlob(manifestDigest, 'manifest')).toString('utf8')) as typeof manifest;
    }
    if (manifest.config === undefined || !Array.isArray(manifest.layers)) {
      throw new RedoError('ERR_REGISTRY_REJECTED', `redo: "${where}": base "${text}" is not an image manifest`, { details: [`media type: ${manifest.mediaType ?? '(none)'}`] });
    }
    const config = JSON.parse((await smallBlob(manifest.config.digest, 'blob', manifest.config.size)).toString('utf8')) as BaseConfig;
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.layers.length) {
      throw new RedoError('ERR_REGISTRY_REJECTED', `redo: "${where}": base "${text}" has ${manifest.layers.length} layers but ${diffIds.length} diff_ids`);
    }
    const layers: PreparedLayer[] = [];
    for (const [i, layer] of manifest.layers.entries()) {
      const codec = layerTypes.get(layer.mediaType);
      if (codec === undefined) {
        throw new RedoError('ERR_REGISTRY_REJECTED', `redo: "${where}": base "${text}" layer ${i + 1} has media type ${layer.mediaType}`, {
          hint: `supported: ${[...layerTypes.keys()].join(', ')}`,
        });
      }
      const blobPath = await layerBlob(layer.digest, layer.size);
      layers.push({ diffId: toSha256Digest(diffIds[i]!), blobPath, blobDigest: toSha256Digest(layer.digest) as Sha256Digest, blobSizeBytes: layer.size, codec });
    }
    return { reference: text, manifestReference: origin(manifestDigest), manifestDigest, layers, config };
  } finally {
    (client as RegistryClient | undefined)?.close();
  }
}

function notFound(text: string, digest: string): RedoError {
  return new RedoError('ERR_REGISTRY_REJECTED', `redo: "${text}": the registry has no ${digest}`, {
    hint: 'check the reference; a pinned digest never changes, so the image was deleted or the reference is wrong',
  });
}

/**
 * The config of an image built on `base`: the description's fields win, fields it leaves
 * unset come from the base (entrypoint, cmd, env, workingDir, user, exposedPorts), labels
 * are merged (the description's win), and the base's layers get history comments.
 * Pure.
 */
export function configOnBase(config: ImageConfig, base: BaseImage): ImageConfig {
  const from = base.config.config ?? {};
  const merged: ImageConfig = { ...config };
  if (merged.entrypoint === undefined && from.Entrypoint !== undefined) merged.entrypoint = from.Entrypoint;
  if (config.cmd === undefined && config.entrypoint === undefined && from.Cmd !== undefined) merged.cmd = from.Cmd;
  if (merged.env === undefined && from.Env !== undefined) merged.env = from.Env;
  if (merged.workingDir === undefined && from.WorkingDir !== undefined) merged.workingDir = from.WorkingDir;
  if (merged.user === undefined && from.User !== undefined) merged.user = from.User;
  if (merged.exposedPorts === undefined && from.ExposedPorts !== undefined) merged.exposedPorts = Object.keys(from.ExposedPorts).sort();
  if (from.Labels !== undefined) merged.labels = { ...from.Labels, ...config.labels };
  // The digest, not the host: the same base from a mirror gives the same image.
  merged.history = [...base.layers.map((_, i) => `redo-ts: base ${base.manifestDigest} layer ${i + 1}`), ...(config.history ?? [])];
  return merged;
}

/** What an image writer needs besides its own layers: the config, and the base's layers and annotations. */
export interface BaseInputs {
  config: ImageConfig;
  baseLayers?: PreparedLayer[];
  annotations?: Record<string, string>;
}

/**
 * For an image description with a `base`, fetches the base (see fetchBaseImage) and
 * returns the merged config, the base layers and the base.name/base.digest manifest
 * annotations; without one, returns the description's config unchanged. `where` is
 * the description's root-relative path, for messages. With `store` (the project's image
 * store), the base layers are copied into it, each hashed in the pass that copies it.
 */
export async function resolveBaseInputs(description: { base?: string; config: ImageConfig }, where: string, env: NodeJS.ProcessEnv, store?: BlobStore): Promise<BaseInputs> {
  if (description.base === undefined) return { config: description.config };
  const { architecture, os, variant } = description.config;
  const base = await fetchBaseImage(description.base, where, { env, architecture, os, ...(variant === undefined ? {} : { variant }), ...(store === undefined ? {} : { store }) });
  return {
    config: configOnBase(description.config, base),
    baseLayers: base.layers,
    annotations: { 'org.opencontainers.image.base.digest': base.manifestDigest, 'org.opencontainers.image.base.name': base.manifestReference },
  };
}
