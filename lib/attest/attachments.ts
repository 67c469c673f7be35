/** What is attached to an image in a registry (signatures, provenance, SBOMs, other referrers) and whether each checks out. */

import type { KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedoError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import type { RegistryReference } from '../registry/reference.js';
import { inTotoPayloadType, parseEnvelope, verifyEnvelope } from './dsse.js';
import { dsseMediaType, predicateTypeAnnotation } from './provenance.js';
import { listReferrers, ociManifestType } from './referrers.js';
import { signatureAnnotation, signatureArtifactType, signatureTag, simpleSigningMediaType } from './simple-signing.js';
import { verifyBytes } from './key.js';

/**
 * The verdict on one attachment: `verified` (signature good, for this digest and name),
 * `unchecked` (no key given), `unsigned` (an SBOM, say), or what failed.
 */
export type Verdict = 'verified' | 'unchecked' | 'unsigned' | 'bad-signature' | 'other-digest' | 'other-identity' | 'malformed';

/** One thing attached to the image. */
export interface Attachment {
  kind: 'signature' | 'attestation' | 'sbom' | 'artifact';
  /** The manifest holding it (for signatures, the `.sig` tag's). */
  manifestDigest: string;
  /** Media or predicate type: the signed name for signatures, the predicate type for attestations, the artifact type otherwise. */
  what: string;
  sizeBytes: number;
  verdict: Verdict;
}

/** The image a reference names and what is attached to it. */
export interface AttachmentReport {
  digest: string;
  attachments: Attachment[];
}

/**
 * Resolves `reference` (tag or digest) to its manifest digest and lists what is
 * attached: the signatures under `sha256-<hex>.sig` (each checked, with `publicKey`,
 * for a valid ECDSA signature, the digest, and the name: the reference's `HOST/REPO:TAG`
 * when it has a tag, as containers/image's default matchRepoDigestOrExact wants, else
 * the repository), then each referrer in the referrers tag schema's index (in-toto
 * attestations have their DSSE envelope checked and their subject compared). Throws
 * ERR_REGISTRY_* (ERR_REGISTRY_REFERENCE when the reference names nothing).
 */
export async function listAttachments(client: RegistryClient, reference: RegistryReference, publicKeys: KeyObject[]): Promise<AttachmentReport> {
  const repository = reference.repository;
  const image = await client.getManifest(repository, reference.digest ?? reference.tag ?? 'latest');
  if (image === undefined) {
    throw new RedoError('ERR_REGISTRY_REFERENCE', `redo: "${reference.text}": no such image in the registry`, { hint: 'check the tag, or push it first' });
  }
  const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-attestations-'));
  const blob = async (digest: string): Promise<Buffer> => {
    const file = join(scratch, digest.replace(':', '-'));
    if ((await client.fetchBlob(repository, digest, file)) === undefined) return Buffer.alloc(0);
    return readFileSync(file);
  };
  const attachments: Attachment[] = [];
  try {
    const signatures = await client.getManifest(repository, signatureTag(image.digest), [ociManifestType]);
    if (signatures !== undefined) {
      const manifest = JSON.parse(signatures.bytes.toString('utf8')) as { layers?: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[] };
      for (const layer of (manifest.layers ?? []).filter((l) => l.mediaType === simpleSigningMediaType)) {
        const payload = await blob(layer.digest);
        attachments.push({ kind: 'signature', manifestDigest: signatures.digest, sizeBytes: layer.size, ...judgeSignature(payload, layer.annotations?.[signatureAnnotation], image.digest, reference, publicKeys) });
      }
    }
    for (const referrer of await listReferrers(client, repository, image.digest)) {
      if (referrer.artifactType === signatureArtifactType) continue;
      const found = await client.getManifest(repository, referrer.digest, [ociManifestType]);
      if (found === undefined) continue;
      const manifest = JSON.parse(found.bytes.toString('utf8')) as { subject?: { digest: string }; layers?: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[] };
      const layer = manifest.layers?.[0];
      const sizeBytes = layer?.size ?? 0;
      if (referrer.artifactType === inTotoPayloadType && layer?.mediaType === dsseMediaType) {
        const envelope = parseEnvelope(await blob(layer.digest));
        const what = layer.annotations?.[predicateTypeAnnotation] ?? referrer.annotations?.[predicateTypeAnnotation] ?? inTotoPayloadType;
        attachments.push({ kind: 'attestation', manifestDigest: referrer.digest, what, sizeBytes, verdict: judgeAttestation(envelope, image.digest, manifest.subject?.digest, publicKeys) });
      } else {
        const artifactType = referrer.artifactType ?? '?';
        const isSbom = /spdx|cyclonedx/.test(artifactType);
        attachments.push({ kind: isSbom ? 'sbom' : 'artifact', manifestDigest: referrer.digest, what: artifactType, sizeBytes, verdict: 'unsigned' });
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return { digest: image.digest, attachments };
}

function judgeSignature(payload: Buffer, signatureBase64: string | undefined, digest: string, reference: RegistryReference, publicKeys: KeyObject[]): { what: string; verdict: Verdict } {
  let critical: { identity?: { 'docker-reference'?: string }; image?: { 'docker-manifest-digest'?: string } } | undefined;
  try {
    critical = (JSON.parse(payload.toString('utf8')) as { critical?: typeof critical }).critical;
  } catch {
    critical = undefined;
  }
  const identity = critical?.identity?.['docker-reference'];
  if (identity === undefined || critical?.image?.['docker-manifest-digest'] === undefined) return { what: '(unreadable payload)', verdict: 'malformed' };
  if (publicKeys.length === 0) return { what: identity, verdict: 'unchecked' };
  if (!publicKeys.some((key) => verifyBytes(key, payload, Buffer.from(signatureBase64 ?? '', 'base64')))) return { what: identity, verdict: 'bad-signature' };
  if (critical.image['docker-manifest-digest'] !== digest) return { what: identity, verdict: 'other-digest' };
  const repository = `${reference.host}/${reference.repository}`;
  const wanted = reference.tag !== undefined && reference.digest === undefined ? `${repository}:${reference.tag}` : undefined;
  const isNameOk = wanted !== undefined ? identity === wanted : identity === repository || identity.startsWith(`${repository}:`) || identity.startsWith(`${repository}@`);
  return { what: identity, verdict: isNameOk ? 'verified' : 'other-identity' };
}

function judgeAttestation(envelope: ReturnType<typeof parseEnvelope>, digest: string, subjectDigest: string | undefined, publicKeys: KeyObject[]): Verdict {
  if (envelope === undefined || envelope.payloadType !== inTotoPayloadType) return 'malformed';
  let subjects: { digest?: { sha256?: string } }[] = [];
  try {
    subjects = (JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as { subject?: typeof subjects }).subject ?? [];
  } catch {
    return 'malformed';
  }
  if (publicKeys.length === 0) return 'unchecked';
  if (!publicKeys.some((key) => verifyEnvelope(envelope, key))) return 'bad-signature';
  const isAboutImage = subjectDigest === digest && subjects.some((s) => `sha256:${s.digest?.sha256 ?? ''}` === digest);
  return isAboutImage ? 'verified' : 'other-digest';
}

/** A signed statement found attached to an image. */
export interface FoundStatement {
  manifestDigest: string;
  statement: Buffer;
  verdict: Verdict;
}

/**
 * The in-toto statement of `predicateType` attached to `digest` (through the referrers
 * index), with its envelope checked against `publicKeys`; undefined when none is attached.
 */
export async function fetchStatement(client: RegistryClient, repository: string, digest: string, predicateType: string, publicKeys: KeyObject[]): Promise<FoundStatement | undefined> {
  const entry = (await listReferrers(client, repository, digest)).find((d) => d.artifactType === inTotoPayloadType && d.annotations?.[predicateTypeAnnotation] === predicateType);
  if (entry === undefined) return undefined;
  const found = await client.getManifest(repository, entry.digest, [ociManifestType]);
  if (found === undefined) return undefined;
  const manifest = JSON.parse(found.bytes.toString('utf8')) as { subject?: { digest: string }; layers?: { digest: string }[] };
  const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-statement-'));
  try {
    const file = join(scratch, 'envelope');
    const layer = manifest.layers?.[0];
    if (layer === undefined || (await client.fetchBlob(repository, layer.digest, file)) === undefined) return { manifestDigest: entry.digest, statement: Buffer.alloc(0), verdict: 'malformed' };
    const envelope = parseEnvelope(readFileSync(file));
    const statement = envelope === undefined ? Buffer.alloc(0) : Buffer.from(envelope.payload, 'base64');
    return { manifestDigest: entry.digest, statement, verdict: judgeAttestation(envelope, digest, manifest.subject?.digest, publicKeys) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
