/** The OCI image-layout writer (a folder with oci-layout, index.json and blobs/sha256/). */

import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { layerMediaTypes } from './compress.js';
import { digestBytes, digestHex, type Sha256Digest } from './digest.js';
import {
  canonicalJson,
  imageConfigJson,
  prepareLayers,
  removeScratch,
  storeBlob,
  type ImageInput,
  type ImageResult,
  type PreparedLayer,
} from './image-config.js';

/** OCI media types used by the layout writer (image-spec media-types.md). */
export const ociMediaTypes = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

/** Input of writeOciLayout: an image plus the ref name index.json gives it. */
export interface OciLayoutInput extends ImageInput {
  /** `org.opencontainers.image.ref.name`, e.g. "latest" (used as `oci:DIR:latest`). */
  refName: string;
}

function writeBlob(dir: string, bytes: Buffer): Sha256Digest {
  const digest = digestBytes(bytes);
  writeFileSync(join(dir, 'blobs', 'sha256', digestHex(digest)), bytes);
  return digest;
}

/**
 * Writes an OCI image layout into `outDir` (created if missing; an existing layout's
 * blobs are kept, index.json is replaced by one naming only this image):
 *
 *     outDir/oci-layout            {"imageLayoutVersion":"1.0.0"}
 *     outDir/index.json            one manifest, annotated with the ref name
 *     outDir/blobs/sha256/<hex>    layers, config, manifest
 *
 * Every JSON document is canonical; files get mode 0644 and folders 0755 whatever
 * the umask. Returns the digests (manifestDigest is the manifest blob's).
 */
export async function writeOciLayout(input: OciLayoutInput, outDir: string): Promise<ImageResult> {
  const blobDir = join(outDir, 'blobs', 'sha256');
  mkdirSync(blobDir, { recursive: true });
  const scratch = join(outDir, '.layers.tmp');
  try {
    const layers = [...(input.baseLayers ?? []), ...(await prepareLayers(input, scratch))];
    const diffIds = layers.map((l) => l.diffId);
    for (const layer of layers) storeBlob(outDir, layer);
    const configBytes = imageConfigJson(input.config, diffIds);
    const configDigest = writeBlob(outDir, configBytes);
    const manifestBytes = imageManifestBytes({ digest: configDigest, sizeBytes: configBytes.length }, layers, input.annotations);
    const manifestDigest = writeBlob(outDir, manifestBytes);
    const indexBytes = Buffer.from(
      canonicalJson({
        schemaVersion: 2,
        mediaType: ociMediaTypes.index,
        manifests: [
          {
            mediaType: ociMediaTypes.manifest,
            digest: manifestDigest,
            size: manifestBytes.length,
            annotations: { 'org.opencontainers.image.ref.name': input.refName },
          },
        ],
      }),
      'utf8',
    );
    writeFileSync(join(outDir, 'index.json'), indexBytes);
    writeFileSync(join(outDir, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));
    return { configDigest, manifestDigest, diffIds, layerDigests: layers.map((l) => l.blobDigest) };
  } finally {
    removeScratch(scratch);
    // Permissions independent of the umask: the layout may itself be archived or compared.
    for (const dir of [outDir, join(outDir, 'blobs'), blobDir]) chmodSync(dir, 0o755);
    for (const name of ['index.json', 'oci-layout']) {
      try {
        chmodSync(join(outDir, name), 0o644);
      } catch {
        // Not written when an earlier step failed; the error from that step is thrown.
      }
    }
    for (const name of readdirSync(blobDir)) chmodSync(join(blobDir, name), 0o644);
  }
}

/**
 * The bytes of an OCI image manifest (canonical JSON) for a config blob and layer
 * blobs, bottom first, with optional annotations. Pure: the layout writer and the
 * image assembly (lib/image/assemble.ts) make the same bytes from the same image.
 */
export function imageManifestBytes(
  config: { digest: Sha256Digest; sizeBytes: number },
  layers: ReadonlyArray<Pick<PreparedLayer, 'blobDigest' | 'blobSizeBytes' | 'codec'>>,
  annotations?: Record<string, string>,
): Buffer {
  return Buffer.from(
    canonicalJson({
      schemaVersion: 2,
      mediaType: ociMediaTypes.manifest,
      config: { mediaType: ociMediaTypes.config, digest: config.digest, size: config.sizeBytes },
      layers: layers.map((l) => ({
        mediaType: layerMediaTypes[l.codec],
        digest: l.blobDigest,
        size: l.blobSizeBytes,
      })),
      annotations,
    }),
    'utf8',
  );
}

/** The bytes of an artifact's manifest (see addOciArtifact) whose one blob and empty config have the given digests. Pure. */
export function artifactManifestBytes(input: OciArtifactInput, blobDigest: Sha256Digest, emptyDigest: Sha256Digest): Buffer {
  return Buffer.from(
    canonicalJson({
      schemaVersion: 2,
      mediaType: ociMediaTypes.manifest,
      artifactType: input.artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: emptyJson.length },
      layers: [{ mediaType: input.blobMediaType, digest: blobDigest, size: input.blob.length }],
      subject: { mediaType: ociMediaTypes.manifest, digest: input.subject.digest, size: input.subject.sizeBytes },
      ...(input.annotations !== undefined ? { annotations: input.annotations } : {}),
    }),
    'utf8',
  );
}

/** An artifact to attach to an image in a layout (OCI image-spec 1.1 `subject`/referrers). */
export interface OciArtifactInput {
  /** The image manifest the artifact refers to (its digest and size in the layout). */
  subject: { digest: Sha256Digest; sizeBytes: number };
  /** The artifact's type, e.g. `application/spdx+json`. */
  artifactType: string;
  /** Its one blob and the blob's media type. */
  blob: Buffer;
  blobMediaType: string;
  annotations?: Record<string, string>;
  /** A ref name for index.json (`org.opencontainers.image.ref.name`), so `oci:DIR:REF` names the artifact. */
  refName?: string;
}

/** The empty JSON descriptor artifacts use as their config (image-spec 1.1, "Guidance for an empty descriptor"). */
export const emptyJson = Buffer.from('{}', 'utf8');

/**
 * Adds an artifact manifest to the OCI layout at `layoutDir`: its blob, the empty
 * `{}` config (`application/vnd.oci.empty.v1+json`) and a manifest with `artifactType`
 * and `subject` = the image manifest, all under blobs/sha256/, and a descriptor of it
 * (with `artifactType`, and `refName` when given) appended to index.json, which is how a
 * layout lists the referrers of a manifest. Files get mode 0644. Returns the artifact manifest's
 * digest. Deterministic: same input, same bytes.
 */
export function addOciArtifact(layoutDir: string, input: OciArtifactInput): Sha256Digest {
  const blobDigest = writeBlob(layoutDir, input.blob);
  const emptyDigest = writeBlob(layoutDir, emptyJson);
  const manifestBytes = artifactManifestBytes(input, blobDigest, emptyDigest);
  const manifestDigest = writeBlob(layoutDir, manifestBytes);
  const indexPath = join(layoutDir, 'index.json');
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { manifests: unknown[] };
  index.manifests.push({
    mediaType: ociMediaTypes.manifest,
    digest: manifestDigest,
    size: manifestBytes.length,
    artifactType: input.artifactType,
    ...(input.refName !== undefined ? { annotations: { 'org.opencontainers.image.ref.name': input.refName } } : {}),
  });
  writeFileSync(indexPath, canonicalJson(index));
  for (const digest of [blobDigest, emptyDigest, manifestDigest]) chmodSync(join(layoutDir, 'blobs', 'sha256', digestHex(digest)), 0o644);
  chmodSync(indexPath, 0o644);
  return manifestDigest;
}

/** Size in bytes of a blob of the layout. */
export function ociBlobSize(layoutDir: string, digest: Sha256Digest): number {
  return statSync(join(layoutDir, 'blobs', 'sha256', digestHex(digest))).size;
}

/** Input of writeOciImageIndex: one image per platform (its config names the platform), one ref name. */
export interface OciIndexInput {
  images: ImageInput[];
  refName: string;
}

/** What writeOciImageIndex produced: the index's digest and each platform's manifest. */
export interface OciIndexResult {
  indexDigest: Sha256Digest;
  manifests: { platform: string; result: ImageResult }[];
}

/**
 * Writes a multi-platform OCI image layout into `outDir`: each image as with
 * writeOciLayout (blobs shared), then an image index blob listing every manifest with
 * its platform (os, architecture, variant from the image's config), in input order;
 * index.json names that index with the ref name:
 *
 *     index.json  →  index blob (application/vnd.oci.image.index.v1+json)
 *                       → manifest (linux/amd64) → config, layers
 *                       → manifest (linux/arm64) → config, layers
 *
 * Deterministic like writeOciLayout. Returns the index digest (what a push of the
 * layout publishes) and each manifest's digests.
 */
export async function writeOciImageIndex(input: OciIndexInput, outDir: string): Promise<OciIndexResult> {
  const manifests: OciIndexResult['manifests'] = [];
  const descriptors: unknown[] = [];
  for (const image of input.images) {
    const result = await writeOciLayout({ ...image, refName: input.refName }, outDir);
    const { architecture, os, variant } = image.config;
    manifests.push({ platform: `${os}/${architecture}${variant === undefined ? '' : `/${variant}`}`, result });
    descriptors.push({
      mediaType: ociMediaTypes.manifest,
      digest: result.manifestDigest,
      size: statSync(join(outDir, 'blobs', 'sha256', digestHex(result.manifestDigest))).size,
      platform: { architecture, os, variant },
    });
  }
  const indexBytes = Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: ociMediaTypes.index, manifests: descriptors }), 'utf8');
  const indexDigest = writeBlob(outDir, indexBytes);
  chmodSync(join(outDir, 'blobs', 'sha256', digestHex(indexDigest)), 0o644);
  const top = Buffer.from(
    canonicalJson({
      schemaVersion: 2,
      mediaType: ociMediaTypes.index,
      manifests: [{ mediaType: ociMediaTypes.index, digest: indexDigest, size: indexBytes.length, annotations: { 'org.opencontainers.image.ref.name': input.refName } }],
    }),
    'utf8',
  );
  writeFileSync(join(outDir, 'index.json'), top);
  chmodSync(join(outDir, 'index.json'), 0o644);
  return { indexDigest, manifests };
}
