/** One image computed once: layers checked, config and manifests made, every blob in the store; the archives are views of it. */

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RedoError } from '../errors.js';
import type { BlobStore } from './blob-store.js';
import { compressFile, layerFileSuffixes, type LayerCompression } from './compress.js';
import { digestBytes, digestHex, type Sha256Digest } from './digest.js';
import { checkElfClosureInFacts, elfFactsOfTar, type LayerElfFacts } from './elf-closure.js';
import { canonicalJson, compressionOf, imageConfigJson, type ImageInput } from './image-config.js';
import { checkLayersDisjoint } from './layer-merge.js';
import { artifactManifestBytes, emptyJson, imageManifestBytes, ociMediaTypes, type OciArtifactInput } from './oci.js';
import { writeOrderedArchive, type OrderedArchiveResult, type OrderedMember, type PreviousArchive } from './ordered-archive.js';
import { checkTar } from './tar-check.js';
import { entriesOfTar, mtimeFromEnvironment } from './tar.js';
import type { TarEntry } from './tar-header.js';

/** A blob of an assembled image: its digest and size in the store. */
export interface StoredBlob {
  digest: Sha256Digest;
  sizeBytes: number;
}

/**
 * A layer of an assembled image: its blob, its diffID (digest of the uncompressed tar,
 * which the store holds too, with the layer's facts keyed by it), how the blob is
 * compressed (level 0 for a base layer, kept as its registry has it), how the
 * description names it.
 */
export interface AssembledLayer extends StoredBlob {
  diffId: Sha256Digest;
  compression: LayerCompression;
  label: string;
}

/** One platform's image of an assembly: manifest, config and layers (bottom first, base layers included). */
export interface AssembledPlatformImage {
  /** `os/architecture[/variant]`. */
  platform: string;
  manifest: StoredBlob;
  config: StoredBlob;
  layers: AssembledLayer[];
  /** The config's `created` (seconds): also the mtime of every member of the docker archive. */
  createdSeconds: number;
}

/**
 * The record of an assembled image (NAME.image.json, canonical JSON): everything a view
 * needs, by digest, and nothing of the machine that made it. Its blobs are in the store.
 */
export interface AssembledImage {
  format: 'redo-ts.image.v1';
  /** The OCI ref name (`org.opencontainers.image.ref.name`). */
  refName: string;
  /** The docker archive's RepoTags. */
  repoTags: string[];
  /** What a push publishes under the tag: the image manifest, or the index of a multi-platform image. */
  top: StoredBlob & { mediaType: string };
  /** index.json of the OCI layout (stored as a blob too). */
  layoutIndex: StoredBlob;
  /** Each platform's image; the docker archive holds the first. */
  images: AssembledPlatformImage[];
  /** Every blob of the OCI layout, sorted by digest. */
  blobs: StoredBlob[];
  /**
   * The bytes (base64) of every blob that is not a layer (configs, manifests, the index,
   * SBOMs, index.json), by digest: with them and the layer targets, the store can be
   * filled again (ensureImageStored) when the record comes from a remote build cache or
   * the store was removed.
   */
  inline: Record<string, string>;
}

/** An artifact to attach to the image (an SBOM): as OciArtifactInput, the subject filled in by the assembly. */
export type ArtifactForImage = Omit<OciArtifactInput, 'subject'>;

/** Input of assembleImage. */
export interface AssembleInput {
  /** One image per platform (each config names its platform); one for a single-platform image. */
  images: ImageInput[];
  /** Whether the layout's top is an image index (a description with `platforms:`). */
  isIndex: boolean;
  refName: string;
  repoTags: string[];
  /** Whether every ELF file's libraries must be in the image (checkElfClosure), per platform. */
  shouldCheckElfClosure: boolean;
  /** How the image is named in errors, e.g. `"image.tar"`. */
  subject: string;
  /** Checks run after the layer checks and before the ELF closure check (requires, audit); a throw stops the assembly. */
  checks?: () => Promise<void>;
  /**
   * Artifacts whose subject is an image manifest, e.g. its SBOMs: called once per
   * platform image, with its manifest and its index in `images` (0 for a
   * single-platform image).
   */
  artifacts?: (subject: StoredBlob, platformIndex: number) => Promise<ArtifactForImage[]>;
}

/** What the assembly knows about a layer blob, computed once per digest (BlobStore.facts, kind "layer"). */
export interface LayerFacts {
  /** Members, as checkTar counted them: the tar passed the check for an image layer (no devices). */
  memberCount: number;
  /** Every member as `[latin1 path key, "type mode uid gid"]`, for the overlap check. */
  members: Array<[string, string]>;
  /** What the ELF closure check needs. */
  elf: LayerElfFacts;
}

/**
 * The facts of the layer tar at `path`: runs checkTar (throwing its errors, naming
 * `label`), then reads the member headers and the ELF headers. Reads no file content
 * but ELF headers and the loader's configuration.
 */
export function layerFactsOfTar(path: string, label: string): LayerFacts {
  const memberCount = checkTar(path, label, { isDeviceAllowed: false, isAbsoluteNameAllowed: false });
  const members: Array<[string, string]> = entriesOfTar(path).map((entry) => [entry.path.toString('latin1'), `${entry.type} ${entry.mode} ${entry.uid} ${entry.gid}`]);
  return { memberCount, members, elf: elfFactsOfTar(path) };
}

/**
 * Assembles the image once, in this order, so that an image failing any check gets no
 * record (and so no view and no push):
 * 1. each layer tar is stored by digest (BlobStore.putFile: a layer already stored from
 *    the same file is not read again) and checked (checkTar, through its facts, computed
 *    once per digest);
 * 2. unless `isOverlapAllowed`, no path is delivered by two layers (ERR_LAYER_CONFLICT);
 * 3. `input.checks()` (the rule's: requires, audit);
 * 4. with `shouldCheckElfClosure`, every platform's ELF closure (ERR_ELF_NEEDED);
 * 5. compressed blobs (once per diffID, codec and level), configs, manifests, the index, the artifacts and the
 *    layout's index.json are stored.
 * Returns the record; the caller writes it (canonicalJson) as NAME.image.json. The bytes
 * of every blob are those writeOciLayout / writeOciImageIndex / addOciArtifact write.
 */
export async function assembleImage(input: AssembleInput, store: BlobStore): Promise<AssembledImage> {
  const factsOf = new Map<string, { digest: Sha256Digest; sizeBytes: number; facts: LayerFacts }>();
  const layerOf = (path: string, label: string): { digest: Sha256Digest; sizeBytes: number; facts: LayerFacts } => {
    let known = factsOf.get(path);
    if (known === undefined) {
      const stored = store.putFile(path);
      known = { ...stored, facts: store.facts(stored.digest, 'layer', () => layerFactsOfTar(path, label)) };
      factsOf.set(path, known);
    }
    return known;
  };
  for (const image of input.images) {
    const labelled = image.layers.map((path, index) => ({ path, label: image.layerLabels?.[index] ?? path }));
    const layers = labelled.map((layer) => ({ ...layer, ...layerOf(layer.path, layer.label) }));
    if (image.isOverlapAllowed === false && hasOverlap(layers.map((layer) => layer.facts))) {
      // The facts say two layers share a path: the reading check names it and the field.
      checkLayersDisjoint(labelled);
    }
  }
  if (input.checks !== undefined) await input.checks();
  if (input.shouldCheckElfClosure) {
    for (const image of input.images) {
      checkElfClosureInFacts(
        image.layers.map((path, index) => ({ label: image.layerLabels?.[index] ?? path, facts: factsOf.get(path)!.facts.elf })),
        input.subject,
      );
    }
  }

  const blobs = new Map<string, StoredBlob>();
  const inline: Record<string, string> = {};
  const keep = (blob: StoredBlob): StoredBlob => {
    blobs.set(blob.digest, { digest: blob.digest, sizeBytes: blob.sizeBytes });
    return blob;
  };
  const putInline = (bytes: Buffer): StoredBlob => {
    const stored = store.putBytes(bytes);
    inline[stored.digest] = bytes.toString('base64');
    return stored;
  };
  const images: AssembledPlatformImage[] = [];
  for (const image of input.images) {
    const layers: AssembledLayer[] = [];
    for (const base of image.baseLayers ?? []) {
      const stored = store.putFile(base.blobPath, base.blobDigest);
      if (stored.digest !== base.blobDigest) {
        throw new RedoError('ERR_IMAGE_STORE', `redo: ${input.subject}: a base layer's bytes do not match its digest`, { details: [`wanted: ${base.blobDigest}`, `found:  ${stored.digest}`] });
      }
      layers.push({ ...keep(stored), diffId: base.diffId, compression: { codec: base.codec, level: 0 }, label: `base ${base.blobDigest}` });
    }
    const compression = compressionOf(image);
    for (const [index, path] of image.layers.entries()) {
      const { digest: diffId, sizeBytes } = factsOf.get(path)!;
      const label = image.layerLabels?.[index] ?? path;
      const blob = compression.codec === 'none' ? { digest: diffId, sizeBytes } : await compressedBlob(store, path, diffId, compression);
      layers.push({ ...keep(blob), diffId, compression, label });
    }
    const createdSeconds = image.config.createdSeconds ?? mtimeFromEnvironment();
    const config = keep(putInline(imageConfigJson(image.config, layers.map((layer) => layer.diffId))));
    const manifestBytes = imageManifestBytes(config, layers.map((layer) => ({ blobDigest: layer.digest, blobSizeBytes: layer.sizeBytes, codec: layer.compression.codec })), image.annotations);
    const manifest = keep(putInline(manifestBytes));
    const { architecture, os, variant } = image.config;
    images.push({ platform: `${os}/${architecture}${variant === undefined ? '' : `/${variant}`}`, manifest, config, layers, createdSeconds });
  }

  const refAnnotation = { 'org.opencontainers.image.ref.name': input.refName };
  let top: StoredBlob & { mediaType: string };
  const indexManifests: unknown[] = [];
  if (input.isIndex) {
    const descriptors = input.images.map((image, i) => {
      const { architecture, os, variant } = image.config;
      return { mediaType: ociMediaTypes.manifest, digest: images[i]!.manifest.digest, size: images[i]!.manifest.sizeBytes, platform: { architecture, os, variant } };
    });
    const index = keep(putInline(Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: ociMediaTypes.index, manifests: descriptors }), 'utf8')));
    top = { ...index, mediaType: ociMediaTypes.index };
    indexManifests.push({ mediaType: ociMediaTypes.index, digest: index.digest, size: index.sizeBytes, annotations: refAnnotation });
  } else {
    const manifest = images[0]!.manifest;
    top = { ...manifest, mediaType: ociMediaTypes.manifest };
    indexManifests.push({ mediaType: ociMediaTypes.manifest, digest: manifest.digest, size: manifest.sizeBytes, annotations: refAnnotation });
  }
  // Each platform's artifacts (its SBOMs) name its own manifest as their subject.
  for (const [platformIndex, image] of images.entries()) {
    const manifest = image.manifest;
    for (const artifact of input.artifacts === undefined ? [] : await input.artifacts(manifest, platformIndex)) {
      const withSubject: OciArtifactInput = { ...artifact, subject: { digest: manifest.digest, sizeBytes: manifest.sizeBytes } };
      const blob = keep(putInline(artifact.blob));
      const empty = keep(putInline(emptyJson));
      const artifactManifest = keep(putInline(artifactManifestBytes(withSubject, blob.digest, empty.digest)));
      indexManifests.push({
        mediaType: ociMediaTypes.manifest,
        digest: artifactManifest.digest,
        size: artifactManifest.sizeBytes,
        artifactType: artifact.artifactType,
        ...(artifact.refName !== undefined ? { annotations: { 'org.opencontainers.image.ref.name': artifact.refName } } : {}),
      });
    }
  }
  // index.json as writeOciLayout writes it (and addOciArtifact rewrites it): canonical JSON.
  const layoutIndex = putInline(Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: ociMediaTypes.index, manifests: indexManifests }), 'utf8'));
  const sorted = [...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  const sortedInline = Object.fromEntries(Object.entries(inline).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { format: 'redo-ts.image.v1', refName: input.refName, repoTags: input.repoTags, top, layoutIndex, images, blobs: sorted, inline: sortedInline };
}

/**
 * The kind of the fact that names the compressed blob of a layer, kept under the
 * layer's diffID (the uncompressed digest, which keys every fact of a layer):
 * `gzip-6`, `zstd-3`...
 */
export function compressedFactKind(compression: LayerCompression): string {
  return `${compression.codec}-${compression.level}`;
}

/** The compressed blob of a layer: compressed once per diffID, codec and level (its digest kept as a fact), else taken from the store. */
async function compressedBlob(store: BlobStore, path: string, diffId: Sha256Digest, compression: LayerCompression): Promise<StoredBlob> {
  const kind = compressedFactKind(compression);
  const known = store.peekFacts<StoredBlob>(diffId, kind);
  if (known !== undefined && store.hasSize(known.digest, known.sizeBytes)) {
    store.freshen(known.digest);
    return known;
  }
  const blob = await store.putWritten((temporary) => compressFile(path, temporary, compression));
  store.facts(diffId, kind, () => blob);
  return blob;
}

/** Whether two layers deliver one path (directories with the same type, mode and owner excepted). */
function hasOverlap(layers: readonly LayerFacts[]): boolean {
  const seen = new Map<string, string>();
  for (const layer of layers) {
    for (const [key, shape] of layer.members) {
      const previous = seen.get(key);
      if (previous === undefined) {
        seen.set(key, shape);
        continue;
      }
      if (!(shape.startsWith('directory ') && previous === shape)) return true;
    }
  }
  return false;
}

/** Parses a record written from assembleImage (NAME.image.json); ERR_IMAGE_STORE when it is not one. */
export function readAssembledImage(path: string, label: string): AssembledImage {
  let record: AssembledImage;
  try {
    record = JSON.parse(readFileSync(path, 'utf8')) as AssembledImage;
  } catch (cause) {
    throw new RedoError('ERR_IMAGE_STORE', `redo: "${label}": not a readable image record`, { details: [String((cause as Error).message)], cause, hint: `rebuild it: redo-ts -f ${label}` });
  }
  if (record.format !== 'redo-ts.image.v1') {
    throw new RedoError('ERR_IMAGE_STORE', `redo: "${label}": not an image record of this redo-ts`, { details: [`wanted format: redo-ts.image.v1`, `found: ${String(record.format)}`], hint: `rebuild it: redo-ts -f ${label}` });
  }
  // A record written before layers had a codec said `isGzip` (always level 6).
  for (const image of record.images) {
    for (const layer of image.layers as Array<AssembledLayer & { isGzip?: boolean }>) {
      if (layer.compression === undefined) layer.compression = layer.isGzip === true ? { codec: 'gzip', level: 6 } : { codec: 'none', level: 0 };
      delete layer.isGzip;
    }
  }
  return record;
}

/**
 * The kind of the fact, kept under an image record's digest, that holds the record
 * without its inline bytes (`inline: {}`): what a view reads when the store holds every
 * blob (the rule writing NAME.image.json keeps it).
 */
export const recordHeadFactKind = 'image-record-head';

/** Whether the store holds every blob of `record` with its size (then ensureImageStored has nothing to do). */
export function isImageStored(record: AssembledImage, store: BlobStore): boolean {
  return [...record.blobs, record.layoutIndex].every((blob) => store.hasSize(blob.digest, blob.sizeBytes));
}

/**
 * Makes sure the store holds every blob of `record` (a record restored from a remote
 * build cache, or a store that was removed): a blob that is missing is written from the
 * record's inline bytes or, for a layer, stored again from its layer target (its path
 * relative to `recordDir`, compressed again as the record says), and its
 * digest checked. Throws ERR_IMAGE_STORE naming the blob when neither can give it back
 * (a base image's layer, or a layer target that changed since).
 */
export async function ensureImageStored(record: AssembledImage, store: BlobStore, recordDir: string, subject: string): Promise<void> {
  const layers = new Map(record.images.flatMap((image) => image.layers.map((layer) => [layer.digest as string, layer] as const)));
  for (const blob of [...record.blobs, record.layoutIndex]) {
    if (store.hasSize(blob.digest, blob.sizeBytes)) continue;
    const bytes = record.inline[blob.digest];
    const layer = layers.get(blob.digest);
    let stored: StoredBlob | undefined;
    if (bytes !== undefined) stored = store.putBytes(Buffer.from(bytes, 'base64'));
    else if (layer !== undefined && !layer.label.startsWith('base ')) {
      const path = resolve(recordDir, layer.label);
      try {
        const diff = store.putFile(path);
        stored = layer.compression.codec !== 'none' && diff.digest === layer.diffId ? await compressedBlob(store, path, layer.diffId, layer.compression) : diff;
      } catch {
        stored = undefined;
      }
    }
    if (stored?.digest !== blob.digest) {
      throw new RedoError('ERR_IMAGE_STORE', `redo: ${subject}: blob ${blob.digest} is missing from the image store and cannot be restored`, {
        details: [`store: ${store.dir}`, ...(layer !== undefined ? [`layer: ${layer.label}${stored === undefined ? '' : `, now ${stored.digest}`}`] : [])],
        hint: 'assemble the image again: redo-ts -f NAME.image.json',
      });
    }
  }
}

/** The bytes of the OCI layout's `oci-layout` file. */
const ociLayoutFile = Buffer.from(canonicalJson({ imageLayoutVersion: '1.0.0' }), 'utf8');

function member(name: string, sizeBytes: number, content: TarEntry['content']): TarEntry {
  return { path: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes, ...(content === undefined ? {} : { content }) };
}

/**
 * Writes the OCI layout view of an assembled image to `outPath` (NAME.oci.tar): a
 * deterministic tar of the folders `blobs/` and `blobs/sha256/`, `oci-layout`, each
 * layer's blob in image order (bottom first, platform by platform), the other blobs
 * (configs, manifests, SBOMs, the index) by digest, then `index.json`: every blob read
 * from the store (ERR_IMAGE_STORE when one is missing). Clients find members by name,
 * not place; this order puts what an edit leaves unchanged first, so with `previous`
 * (the target's previous output, taken back at `outPath`) those bytes are kept in place
 * (writeOrderedArchive). `subject` names the output in errors. Returns the archive's
 * sha256 and size, hashed as it was written, and the bytes kept.
 */
export async function writeOciArchiveView(record: AssembledImage, store: BlobStore, outPath: string, subject: string, previous?: PreviousArchive): Promise<OrderedArchiveResult> {
  const paths = store.blobs([...record.blobs, record.layoutIndex], subject);
  const pathOf = new Map(record.blobs.map((blob, i) => [blob.digest as string, paths[i]!]));
  const folder = (name: string): OrderedMember => ({ entry: { path: Buffer.from(name), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 }, contentDigest: 'directory' });
  const members: OrderedMember[] = [
    folder('blobs'),
    folder('blobs/sha256'),
    { entry: member('oci-layout', ociLayoutFile.length, { kind: 'buffer', bytes: ociLayoutFile }), contentDigest: digestBytes(ociLayoutFile) },
  ];
  const added = new Set<string>();
  const addBlob = (blob: StoredBlob): void => {
    if (added.has(blob.digest)) return;
    added.add(blob.digest);
    members.push({ entry: member(`blobs/sha256/${digestHex(blob.digest)}`, blob.sizeBytes, { kind: 'path', path: pathOf.get(blob.digest)! }), contentDigest: blob.digest });
  };
  for (const image of record.images) for (const layer of image.layers) addBlob(layer);
  for (const blob of record.blobs) addBlob(blob);
  members.push({ entry: member('index.json', record.layoutIndex.sizeBytes, { kind: 'path', path: paths[paths.length - 1]! }), contentDigest: record.layoutIndex.digest });
  return writeArchiveView(members, store, outPath, mtimeFromEnvironment(), subject, previous);
}

/**
 * Writes the docker archive view of an assembled image (its first platform) to
 * `outPath` (NAME.tar): the layers in image order (bottom first: `<blob-hex>.tar` /
 * `.tar.gz` / `.tar.zst`), then `<config-hex>.json`, then manifest.json with the record's
 * RepoTags, every member's mtime the image's created time; blobs come from the store.
 * Clients find members by name, not place; this order puts what an edit leaves unchanged
 * (the lower layers) first, so with `previous` (the target's previous output, taken
 * back at `outPath`: RuleContext.takePreviousOutput) those bytes are kept in place and
 * only the rest is written (writeOrderedArchive, its states kept under the store's
 * `archives/`). Returns the archive's sha256 and size, hashed as it was written, and the
 * bytes kept.
 */
export async function writeDockerArchiveView(record: AssembledImage, store: BlobStore, outPath: string, subject: string, previous?: PreviousArchive): Promise<OrderedArchiveResult> {
  const image = record.images[0]!;
  const [configPath, ...layerPaths] = store.blobs([image.config, ...image.layers], subject);
  const configName = `${digestHex(image.config.digest)}.json`;
  const layerNames = image.layers.map((layer) => `${digestHex(layer.digest)}${layerFileSuffixes[layer.compression.codec]}`);
  const manifestBytes = Buffer.from(canonicalJson([{ Config: configName, RepoTags: record.repoTags, Layers: layerNames }]), 'utf8');
  // A layer given twice is one member, at its first place.
  const members = new Map<string, OrderedMember>();
  image.layers.forEach((layer, i) => {
    if (!members.has(layerNames[i]!)) members.set(layerNames[i]!, { entry: member(layerNames[i]!, layer.sizeBytes, { kind: 'path', path: layerPaths[i]! }), contentDigest: layer.digest });
  });
  members.set(configName, { entry: member(configName, image.config.sizeBytes, { kind: 'path', path: configPath! }), contentDigest: image.config.digest });
  members.set('manifest.json', { entry: member('manifest.json', manifestBytes.length, { kind: 'buffer', bytes: manifestBytes }), contentDigest: digestBytes(manifestBytes) });
  return writeArchiveView([...members.values()], store, outPath, image.createdSeconds, subject, previous);
}

/** Writes an archive view's `members` in order (writeOrderedArchive), its states kept under the store's `archives/`. */
function writeArchiveView(members: OrderedMember[], store: BlobStore, outPath: string, mtimeSeconds: number, subject: string, previous: PreviousArchive | undefined): Promise<OrderedArchiveResult> {
  return writeOrderedArchive(members, outPath, {
    mtimeSeconds,
    label: subject,
    statesDir: join(store.dir, 'archives'),
    ...(previous === undefined ? {} : { previous }),
  });
}
