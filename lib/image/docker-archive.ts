/** The `docker save` / `docker load` tarball writer. */

import { join, dirname, basename } from 'node:path';
import { layerFileSuffixes } from './compress.js';
import { digestBytes, digestHex } from './digest.js';
import {
  canonicalJson,
  imageConfigJson,
  prepareLayers,
  removeScratch,
  type ImageInput,
  type ImageResult,
} from './image-config.js';
import { writeTar, mtimeFromEnvironment } from './tar.js';
import type { TarEntry } from './tar-header.js';

/**
 * Writes a `docker load`-able tarball to `outPath` (created or truncated; rules pass
 * their temporary `$3`). Layout, itself a deterministic tar (sorted, mode 0644,
 * mtime = config.createdSeconds or SOURCE_DATE_EPOCH or 0):
 *
 *     <config-hex>.json        image config (see imageConfigJson)
 *     <blob-hex>.tar           each layer, uncompressed ...
 *     <blob-hex>.tar.gz        ... or gzip with pinned header (input.gzip, input.compression)
 *     <blob-hex>.tar.zst       ... or zstd (input.compression)
 *     manifest.json            [{"Config":..., "Layers":[...], "RepoTags":[...]}]
 *
 * Layers are streamed from their files; compressed layers are compressed into a scratch
 * folder beside `outPath` and removed afterwards. Returns the digests; the
 * manifest digest is that of manifest.json.
 */
export async function writeDockerArchive(input: ImageInput, outPath: string): Promise<ImageResult> {
  const scratch = join(dirname(outPath), `.${basename(outPath)}.layers`);
  try {
    const layers = [...(input.baseLayers ?? []), ...(await prepareLayers(input, scratch))];
    const diffIds = layers.map((l) => l.diffId);
    const configBytes = imageConfigJson(input.config, diffIds);
    const configDigest = digestBytes(configBytes);
    const configName = `${digestHex(configDigest)}.json`;
    const layerNames = layers.map((l) => `${digestHex(l.blobDigest)}${layerFileSuffixes[l.codec]}`);
    const manifestBytes = Buffer.from(
      canonicalJson([{ Config: configName, RepoTags: input.repoTags ?? [], Layers: layerNames }]),
      'utf8',
    );
    const file = (name: string, bytes: Buffer): TarEntry => ({
      path: Buffer.from(name),
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      sizeBytes: bytes.length,
      content: { kind: 'buffer', bytes },
    });
    const members = new Map<string, TarEntry>();
    members.set(configName, file(configName, configBytes));
    members.set('manifest.json', file('manifest.json', manifestBytes));
    layers.forEach((layer, i) => {
      const name = layerNames[i]!;
      members.set(name, {
        path: Buffer.from(name),
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        sizeBytes: layer.blobSizeBytes,
        content: { kind: 'path', path: layer.blobPath },
      });
    });
    await writeTar(members.values(), outPath, {
      mtimeSeconds: input.config.createdSeconds ?? mtimeFromEnvironment(),
      label: `"${outPath}"`,
    });
    return {
      configDigest,
      manifestDigest: digestBytes(manifestBytes),
      diffIds,
      layerDigests: layers.map((l) => l.blobDigest),
    };
  } finally {
    removeScratch(scratch);
  }
}
