/**
 * Image signatures as cosign stores them and containers/image (skopeo, podman) checks
 * them under a `sigstoreSigned` policy: a simple-signing payload signed with ECDSA P-256,
 * in a manifest under the tag `sha256-<hex>.sig`.
 */

import type { RegistryClient } from '../registry/client.js';
import { signBytes, verifyBytes, type SigningKey } from './key.js';
import { addReferrers, emptyConfig, ociManifestType, pushArtifact, sha256Digest, type ReferrerDescriptor } from './referrers.js';

/** Layer media type of a cosign simple-signing payload. */
export const simpleSigningMediaType = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** Annotation holding the base64 signature of the payload. */
export const signatureAnnotation = 'dev.cosignproject.cosign/signature';
/** Artifact type of a signature manifest listed as a referrer (cosign's, for OCI 1.1). */
export const signatureArtifactType = 'application/vnd.dev.cosign.artifact.sig.v1+json';
/**
 * `critical.type` of a sigstore payload. containers/image refuses any other value for
 * sigstoreSigned; "atomic container signature" is the GPG simple-signing type (signedBy).
 */
export const sigstorePayloadType = 'cosign container image signature';

/**
 * The simple-signing payload for `dockerReference` (`HOST/REPO[:TAG]`) and
 * `manifestDigest`: keys in the order cosign writes them, `optional` null (no creator,
 * no timestamp), so the same image and name give the same bytes.
 */
export function simpleSigningPayload(dockerReference: string, manifestDigest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': manifestDigest }, type: sigstorePayloadType },
      optional: null,
    }),
  );
}

/** The tag cosign and containers/image look up the signatures of `manifestDigest` under. */
export function signatureTag(manifestDigest: string): string {
  return `${manifestDigest.replace(':', '-')}.sig`;
}

/** What pushSignature did. */
export interface PushedSignature {
  tag: string;
  manifestDigest: string;
  payloadBytes: number;
  manifestBytes: number;
  /** Signature layers in the manifest (earlier signatures by other keys are kept). */
  signatureCount: number;
  /** True when this key had already signed this payload there: nothing was pushed. */
  isReused: boolean;
}

/**
 * Signs `manifestDigest` as `dockerReference` with `key` and stores it as cosign does:
 * the payload as a layer of type simpleSigningMediaType with the signature in the
 * annotation signatureAnnotation, in an OCI manifest (config: a minimal image config
 * naming the layers) under signatureTag(). Signatures already there are kept; when one
 * of the same payload by the same key is there, nothing is pushed (isReused). The manifest also
 * names the image as `subject` (with `manifestMediaType`: an index's own type for an
 * index) and goes into the referrers index. Throws ERR_REGISTRY_*.
 */
export async function pushSignature(client: RegistryClient, repository: string, dockerReference: string, manifestDigest: string, manifestSize: number, key: SigningKey, manifestMediaType: string = ociManifestType): Promise<PushedSignature> {
  const payload = simpleSigningPayload(dockerReference, manifestDigest);
  const payloadDigest = sha256Digest(payload);
  const tag = signatureTag(manifestDigest);
  const existing = await client.getManifest(repository, tag, [ociManifestType]);
  const existingLayers = existing === undefined ? [] : ((JSON.parse(existing.bytes.toString('utf8')) as { layers?: ReferrerDescriptor[] }).layers ?? []);
  const isOurs = (layer: ReferrerDescriptor): boolean => layer.digest === payloadDigest && verifyBytes(key.publicKey, payload, Buffer.from(layer.annotations?.[signatureAnnotation] ?? '', 'base64'));
  // Already signed by this key for this name: keep it, so the .sig manifest does not change for the same push.
  if (existing !== undefined && existingLayers.some(isOurs)) {
    return { tag, manifestDigest: existing.digest, payloadBytes: payload.length, manifestBytes: existing.bytes.length, signatureCount: existingLayers.length, isReused: true };
  }
  const signature = signBytes(key, payload).toString('base64');
  const kept = existingLayers.filter((layer) => !isOurs(layer));
  const layers: ReferrerDescriptor[] = [...kept, { mediaType: simpleSigningMediaType, digest: payloadDigest, size: payload.length, annotations: { [signatureAnnotation]: signature } }];
  const config = Buffer.from(JSON.stringify({ architecture: '', config: {}, os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
  const manifest = {
    schemaVersion: 2,
    mediaType: ociManifestType,
    artifactType: signatureArtifactType,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.length },
    layers,
    subject: { mediaType: manifestMediaType, digest: manifestDigest, size: manifestSize },
  };
  const pushed = await pushArtifact(client, repository, manifest, [config, payload], tag);
  await addReferrers(client, repository, manifestDigest, [pushed.descriptor], (d) => d.artifactType === signatureArtifactType);
  return { tag, manifestDigest: pushed.descriptor.digest, payloadBytes: payload.length, manifestBytes: pushed.manifestBytes.length, signatureCount: layers.length, isReused: false };
}

