/** The push hook: after an image's manifest is in the registry, sign it and attach its provenance. */

import type { RegistryClient } from '../registry/client.js';
import type { RegistryReference } from '../registry/reference.js';
import type { SigningKey } from './key.js';
import { attachProvenance } from './provenance.js';
import { pushSignature } from './simple-signing.js';

/** What to attach to a pushed image. */
export interface AttachInput {
  client: RegistryClient;
  /** The reference pushed to; its tag (if any) is the signed identity. */
  reference: RegistryReference;
  /** The pushed manifest (or index) digest and bytes. */
  manifestDigest: string;
  manifestBytes: Buffer;
  /** The pushed manifest's media type (OCI manifest or index). */
  mediaType: string;
  key: SigningKey;
  /** In-toto statement bytes to sign and attach as a DSSE envelope (provenance), if any. */
  statement?: Buffer;
  /**
   * For an index: its platform manifests (from the index, in its order). Each is signed
   * too, under the same identity (as `cosign sign --recursive` does), so a client that
   * pulls one platform by its own digest finds a signature for it.
   */
  platformManifests?: ReadonlyArray<{ digest: string; size: number; mediaType: string }>;
}

/** One thing attached, for the push report. */
export interface Attached {
  kind: 'signature' | 'provenance';
  /** The manifest holding it (by digest) and, for signatures, the tag. */
  manifestDigest: string;
  tag?: string;
  /** Bytes of what was signed (payload or statement), of the envelope, and of the manifest. */
  sizes: Record<string, number>;
  /** Already there, signed by this key with these bytes: kept, nothing pushed. */
  isReused: boolean;
}

/**
 * Signs the pushed manifest (pushSignature, identity `HOST/REPO:TAG`, or `HOST/REPO`
 * when pushed by digest), then, for an index, each of its platform manifests, and, when
 * a statement is given, attaches it signed (attachProvenance) to the pushed manifest
 * (the index for a multi-arch image: its subject is the index digest). Returns what was
 * attached, in that order. Throws ERR_REGISTRY_*.
 */
export async function attachToPushedImage(input: AttachInput): Promise<Attached[]> {
  const { client, reference, manifestDigest, manifestBytes, key } = input;
  const identity = `${reference.host}/${reference.repository}${reference.tag === undefined ? '' : `:${reference.tag}`}`;
  const attached: Attached[] = [];
  // The index (or the one manifest) first, then each platform manifest of an index.
  for (const subject of [{ digest: manifestDigest, size: manifestBytes.length, mediaType: input.mediaType }, ...(input.platformManifests ?? [])]) {
    const signature = await pushSignature(client, reference.repository, identity, subject.digest, subject.size, key, subject.mediaType);
    attached.push({ kind: 'signature', manifestDigest: signature.manifestDigest, tag: signature.tag, sizes: { payload: signature.payloadBytes, manifest: signature.manifestBytes }, isReused: signature.isReused });
  }
  if (input.statement !== undefined) {
    const subject = { digest: manifestDigest, size: manifestBytes.length, mediaType: input.mediaType };
    const provenance = await attachProvenance(client, reference.repository, subject, input.statement, key);
    attached.push({ kind: 'provenance', manifestDigest: provenance.manifestDigest, sizes: { statement: provenance.statementBytes, envelope: provenance.envelopeBytes, manifest: provenance.manifestBytes }, isReused: provenance.isReused });
  }
  return attached;
}
