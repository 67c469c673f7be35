/** Attaching artifacts to a pushed manifest: the referrers tag schema's index and the artifacts listed in it. */

import { createHash } from 'node:crypto';
import { canonicalJson } from '../image/image-config.js';
import type { RegistryClient } from '../registry/client.js';

/** An OCI descriptor as referrers use it. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

const indexType = 'application/vnd.oci.image.index.v1+json';
/** OCI image manifest media type. */
export const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';
/** The empty JSON config of an artifact (image-spec 1.1, "Guidance for an empty descriptor"). */
export const emptyConfig = { bytes: Buffer.from('{}'), mediaType: 'application/vnd.oci.empty.v1+json' };

/** `sha256:HEX` of bytes. */
export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The referrers tag schema's tag for a subject digest: `sha256-<hex>` (image-spec 1.1). */
export function referrersTag(subjectDigest: string): string {
  return subjectDigest.replace(':', '-');
}

/**
 * The artifacts listed for `subjectDigest` in the referrers tag schema's index (tag
 * `sha256-<hex>`), which is how registries without the referrers API (distribution
 * 2.8) let clients find them. Empty when there is no such tag.
 */
export async function listReferrers(client: RegistryClient, repository: string, subjectDigest: string): Promise<ReferrerDescriptor[]> {
  const existing = await client.getManifest(repository, referrersTag(subjectDigest), [indexType]);
  if (existing === undefined) return [];
  return (JSON.parse(existing.bytes.toString('utf8')) as { manifests?: ReferrerDescriptor[] }).manifests ?? [];
}

/**
 * Adds `added` to the referrers index of `subjectDigest`, replacing entries with the
 * same digest and dropping those `shouldDrop` names (an older statement of the same
 * kind), and puts the index back under its tag. Entries keep their order; new ones go last.
 */
export async function addReferrers(client: RegistryClient, repository: string, subjectDigest: string, added: ReferrerDescriptor[], shouldDrop: (d: ReferrerDescriptor) => boolean = () => false): Promise<void> {
  const listed = await listReferrers(client, repository, subjectDigest);
  const kept = listed.filter((d) => !added.some((a) => a.digest === d.digest) && !shouldDrop(d));
  const index = Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: indexType, manifests: [...kept, ...added] }));
  await client.putManifest(repository, referrersTag(subjectDigest), indexType, index);
}

/**
 * Uploads an artifact: each blob (skipped when present), then its manifest by digest.
 * Returns the manifest's descriptor and the bytes uploaded (blobs and manifest).
 */
export async function pushArtifact(client: RegistryClient, repository: string, manifest: object, blobs: Buffer[], tag?: string): Promise<{ descriptor: ReferrerDescriptor; manifestBytes: Buffer; sentBytes: number }> {
  let sentBytes = 0;
  for (const blob of blobs) {
    const action = await client.pushBlob(repository, sha256Digest(blob), blob);
    if (action === 'uploaded') sentBytes += blob.length;
  }
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  const digest = sha256Digest(manifestBytes);
  await client.putManifest(repository, tag ?? digest, ociManifestType, manifestBytes);
  sentBytes += manifestBytes.length;
  const artifactType = (manifest as { artifactType?: string }).artifactType;
  return { descriptor: { mediaType: ociManifestType, digest, size: manifestBytes.length, ...(artifactType === undefined ? {} : { artifactType }) }, manifestBytes, sentBytes };
}
