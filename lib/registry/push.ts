/** Push an image to a registry, from the image store or an OCI layout archive: only the blobs it lacks, then the manifests, then the tag. */

import { createReadStream, existsSync, readFileSync } from 'node:fs';
import type { AssembledImage } from '../image/assemble.js';
import type { BlobStore } from '../image/blob-store.js';
import { toSha256Digest } from '../image/digest.js';
import { RedoError } from '../errors.js';
import { RegistryClient, type BlobAction, type RegistryClientOptions } from './client.js';
import { openLayoutArchive, readJsonBlob, type Descriptor, type LayoutArchive } from './layout-archive.js';
import { formatReference, parseReference, type RegistryReference } from './reference.js';

/** One blob of a push and what happened to it. */
export interface PushedBlob {
  digest: string;
  sizeBytes: number;
  /** "config", "layer 1" (bottom first), with the platform for multi-arch images. */
  role: string;
  action: BlobAction;
}

/** What a push did. `digest` is the pushed manifest (or index) digest, equal to the layout's. */
export interface PushReport {
  reference: string;
  digest: string;
  mediaType: string;
  blobs: PushedBlob[];
  /** Manifests and indexes uploaded, children before parents. */
  manifests: { digest: string; sizeBytes: number; mediaType: string; role: string }[];
}

const indexTypes = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
/** Annotation naming the base image a manifest was built on (image-spec annotations.md). */
export const baseNameAnnotation = 'org.opencontainers.image.base.name';

interface Manifest {
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/**
 * Pushes the image in the layout archive at `archivePath` to `reference`
 * (`HOST[:PORT]/REPO[:TAG]`). The image is index.json's only manifest, or the one whose
 * ref name equals the tag. For each manifest (each platform's, for an index): every
 * blob is checked with HEAD and uploaded only when missing (mounted from the base
 * image's repository when the manifest names a base on the same registry), then the
 * manifest by digest; last the top manifest or index under the tag. Blobs go up to
 * four at a time. Throws ERR_REGISTRY_* errors naming the reference.
 */
export async function pushLayout(archivePath: string, referenceText: string, options: RegistryClientOptions): Promise<PushReport> {
  return pushFrom(openLayoutArchive(archivePath), parseReference(referenceText), options, undefined);
}

/**
 * Pushes the assembled image `record` (NAME.image.json) from the blob store, as
 * pushLayout pushes a layout archive (the same blobs, manifests, tag and referrers, so
 * the same digest), reading each blob from the store: no archive is needed. The store
 * remembers which repositories of the registry hold which blobs; a blob the registry
 * lacks in this repository but holds in another it is known to be in is mounted from
 * there (one POST, no upload), else uploaded. Throws ERR_IMAGE_STORE when a blob is not
 * in the store, ERR_REGISTRY_* errors naming the reference.
 */
export async function pushStoredImage(record: AssembledImage, store: BlobStore, referenceText: string, options: RegistryClientOptions): Promise<PushReport> {
  const reference = parseReference(referenceText);
  const sizes = new Map<string, number>([...record.blobs, record.layoutIndex].map((blob) => [blob.digest, blob.sizeBytes]));
  store.blobs([...record.blobs, record.layoutIndex], `"${reference.text}"`);
  const pathOf = (digest: string): string => {
    if (!sizes.has(digest)) {
      throw new RedoError('ERR_IMAGE_STORE', `redo: "${reference.text}": blob ${digest} is not part of the image`, { hint: 'rebuild the image with -f (redo-ts -f NAME.image.json)' });
    }
    return store.blobPath(toSha256Digest(digest));
  };
  const layout: LayoutArchive = {
    path: store.dir,
    index: JSON.parse(readFileSync(pathOf(record.layoutIndex.digest), 'utf8')) as LayoutArchive['index'],
    hasBlob: (digest) => sizes.has(digest) && existsSync(store.blobPath(toSha256Digest(digest))),
    sizeOf: (digest) => (pathOf(digest), sizes.get(digest)!),
    readBlob: (digest) => readFileSync(pathOf(digest)),
    openBlob: (digest) => createReadStream(pathOf(digest), { highWaterMark: 1 << 20 }),
  };
  return pushFrom(layout, reference, options, store);
}

async function pushFrom(layout: LayoutArchive, reference: RegistryReference, options: RegistryClientOptions, memory: BlobStore | undefined): Promise<PushReport> {
  const top = chooseImage(layout, reference);
  const client = new RegistryClient(reference.host, { ...options, label: reference.text });
  const report: PushReport = { reference: reference.text, digest: top.digest, mediaType: top.mediaType, blobs: [], manifests: [] };
  const known = memory?.knownRepositories(reference.host) ?? new Map<string, string[]>();
  const elsewhere = (digest: string): string | undefined => known.get(digest)?.find((repository) => repository !== reference.repository);
  try {
    await pushNode(client, layout, reference, top, '', report, true, elsewhere);
    await pushReferrers(client, layout, reference, top, report, elsewhere);
    // A multi-platform image's SBOMs name each platform's manifest as their subject.
    if (indexTypes.has(top.mediaType)) {
      const children = (JSON.parse(layout.readBlob(top.digest).toString('utf8')) as { manifests: Descriptor[] }).manifests;
      for (const child of children) await pushReferrers(client, layout, reference, child, report, elsewhere);
    }
  } finally {
    client.close();
    // Whatever reached the registry (even in a push that failed later) is remembered.
    memory?.rememberRepositories(reference.host, reference.repository, report.blobs.map((blob) => blob.digest));
  }
  return report;
}

function chooseImage(layout: LayoutArchive, reference: RegistryReference): Descriptor {
  const manifests = layout.index.manifests;
  if (manifests.length === 1) return manifests[0]!;
  const named = manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] === reference.tag);
  if (named.length === 1) return named[0]!;
  // Artifacts beside the image (an SBOM naming it as subject, say) are not the image.
  const images = manifests.filter((m) => (m as { artifactType?: unknown }).artifactType === undefined && !hasSubject(layout, m));
  if (images.length === 1) return images[0]!;
  throw new RedoError('ERR_REGISTRY_LAYOUT', `redo: "${layout.path}": holds ${manifests.length} images; none is named "${reference.tag ?? ''}"`, {
    details: manifests.map((m) => `${m.digest} ${m.annotations?.['org.opencontainers.image.ref.name'] ?? '(no ref name)'}`),
    hint: 'push with the tag of the image you mean',
  });
}

function hasSubject(layout: LayoutArchive, descriptor: Descriptor): boolean {
  if (indexTypes.has(descriptor.mediaType) || !layout.hasBlob(descriptor.digest)) return false;
  try {
    return readJsonBlob<{ subject?: unknown }>(layout, descriptor.digest).subject !== undefined;
  } catch {
    return false;
  }
}

/** The other repository of the registry a blob is known to be in, if any (for a cross-repository mount). */
type KnownElsewhere = (digest: string) => string | undefined;

async function pushNode(client: RegistryClient, layout: LayoutArchive, reference: RegistryReference, node: Descriptor, prefix: string, report: PushReport, isTop: boolean, elsewhere: KnownElsewhere): Promise<void> {
  const bytes = layout.readBlob(node.digest);
  const repository = reference.repository;
  if (indexTypes.has(node.mediaType)) {
    const index = JSON.parse(bytes.toString('utf8')) as { manifests: Descriptor[] };
    for (const child of index.manifests) {
      const platform = child.platform === undefined ? '' : `${child.platform.os}/${child.platform.architecture}${child.platform.variant === undefined ? '' : `/${child.platform.variant}`} `;
      await pushNode(client, layout, reference, child, platform, report, false, elsewhere);
    }
  } else {
    const manifest = readJsonBlob<Manifest>(layout, node.digest);
    const mountFrom = mountSource(manifest, reference);
    const jobs = [
      { descriptor: manifest.config, role: `${prefix}config` },
      ...manifest.layers.map((layer, i) => ({ descriptor: layer, role: `${prefix}layer ${i + 1}` })),
    ];
    const done: PushedBlob[] = [];
    await runLimited(jobs.map((job, i) => ({ ...job, i })), 4, async ({ descriptor, role, i }) => {
      const sizeBytes = layout.sizeOf(descriptor.digest);
      const action = await client.pushBlob(repository, descriptor.digest, { sizeBytes, open: () => layout.openBlob(descriptor.digest) }, elsewhere(descriptor.digest) ?? mountFrom);
      done[i] = { digest: descriptor.digest, sizeBytes, role, action };
    });
    report.blobs.push(...done);
  }
  // Children go by digest; the image the user named goes under its tag (or digest).
  const target = isTop ? reference.tag ?? reference.digest ?? node.digest : node.digest;
  if (isTop && reference.digest !== undefined && reference.digest !== node.digest) {
    throw new RedoError('ERR_REGISTRY_REFERENCE', `redo: "${reference.text}": the image's digest is not the one in the reference`, {
      details: [`reference: ${reference.digest}`, `image:     ${node.digest}`],
      hint: `push to ${formatReference(reference, { tag: 'TAG' })} instead`,
    });
  }
  await client.putManifest(repository, target, node.mediaType, bytes);
  report.manifests.push({ digest: node.digest, sizeBytes: bytes.length, mediaType: node.mediaType, role: isTop ? 'top' : prefix.trim() });
}

/**
 * Artifacts in the layout whose manifest names the pushed image as its `subject` (an
 * SBOM, say) go up too: their blobs, the manifest by digest, and a descriptor in the
 * referrers tag schema's index (`sha256-<hex>` tag, image-spec 1.1), which is how
 * registries without the referrers API (distribution 2.8) let clients find them.
 */
async function pushReferrers(client: RegistryClient, layout: LayoutArchive, reference: RegistryReference, image: Descriptor, report: PushReport, elsewhere: KnownElsewhere): Promise<void> {
  const referrers: Descriptor[] = [];
  for (const candidate of layout.index.manifests) {
    if (candidate.digest === image.digest || indexTypes.has(candidate.mediaType)) continue;
    const manifest = readJsonBlob<Manifest & { subject?: Descriptor; artifactType?: string }>(layout, candidate.digest);
    if (manifest.subject?.digest !== image.digest) continue;
    const role = `referrer ${manifest.artifactType ?? manifest.config.mediaType}`;
    for (const blob of [manifest.config, ...manifest.layers]) {
      const sizeBytes = layout.sizeOf(blob.digest);
      const action = await client.pushBlob(reference.repository, blob.digest, { sizeBytes, open: () => layout.openBlob(blob.digest) }, elsewhere(blob.digest));
      report.blobs.push({ digest: blob.digest, sizeBytes, role, action });
    }
    const bytes = layout.readBlob(candidate.digest);
    await client.putManifest(reference.repository, candidate.digest, candidate.mediaType, bytes);
    report.manifests.push({ digest: candidate.digest, sizeBytes: bytes.length, mediaType: candidate.mediaType, role });
    referrers.push({
      mediaType: candidate.mediaType,
      digest: candidate.digest,
      size: bytes.length,
      ...(manifest.artifactType === undefined ? {} : { artifactType: manifest.artifactType }),
    } as Descriptor);
  }
  if (referrers.length === 0) return;
  const tag = `sha256-${image.digest.slice('sha256:'.length)}`;
  const existing = await client.getManifest(reference.repository, tag, ['application/vnd.oci.image.index.v1+json']);
  const listed = existing === undefined ? [] : ((JSON.parse(existing.bytes.toString('utf8')) as { manifests?: Descriptor[] }).manifests ?? []);
  const merged = [...listed.filter((d) => !referrers.some((r) => r.digest === d.digest)), ...referrers];
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: merged }));
  await client.putManifest(reference.repository, tag, 'application/vnd.oci.image.index.v1+json', index);
}

/** The base image's repository, when the manifest names one on the same registry. */
function mountSource(manifest: Manifest, reference: RegistryReference): string | undefined {
  const base = manifest.annotations?.[baseNameAnnotation];
  if (base === undefined) return undefined;
  try {
    const parsed = parseReference(base);
    return parsed.host === reference.host && parsed.repository !== reference.repository ? parsed.repository : undefined;
  } catch {
    return undefined;
  }
}

async function runLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next]!;
      next += 1;
      await work(item);
    }
  });
  await Promise.all(workers);
}
