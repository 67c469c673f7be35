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
 * when pushed by digest) and, when a statement is given, attaches it signed
 * (attachProvenance). Returns what was attached, in that order. Throws ERR_REGISTRY_*.
 */
export async function attachToPushedImage(input: AttachInput): Promise<Attached[]> {
  const { client, reference, manifestDigest, manifestBytes, key } = input;
  const identity = `${reference.host}/${reference.repository}${reference.tag === undefined ? '' : `:${reference.tag}`}`;
  const signature = await pushSignature(client, reference.repository, identity, manifestDigest, manifestBytes.length, key);
  const attached: Attached[] = [{ kind: 'signature', manifestDigest: signature.manifestDigest, tag: signature.tag, sizes: { payload: signature.payloadBytes, manifest: signature.manifestBytes }, isReused: signature.isReused }];
  if (input.statement !== undefined) {
    const subject = { digest: manifestDigest, size: manifestBytes.length, mediaType: input.mediaType };
    const provenance = await attachProvenance(client, reference.repository, subject, input.statement, key);
    attached.push({ kind: 'provenance', manifestDigest: provenance.manifestDigest, sizes: { statement: provenance.statementBytes, envelope: provenance.envelopeBytes, manifest: provenance.manifestBytes }, isReused: provenance.isReused });
  }
  return attached;
}
