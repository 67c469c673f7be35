/**
 * Provenance: an in-toto statement (v1) with a SLSA provenance v1 predicate, made only
 * from what the build used, so the same build gives the same bytes; signed in a DSSE
 * envelope and attached to the image as an OCI referrer.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../image/image-config.js';
import type { RegistryClient } from '../registry/client.js';
import { inTotoPayloadType, parseEnvelope, signEnvelope, verifyEnvelope } from './dsse.js';
import type { SigningKey } from './key.js';
import { addReferrers, emptyConfig, listReferrers, ociManifestType, pushArtifact, sha256Digest } from './referrers.js';

/** in-toto Statement v1 `_type`. */
export const statementType = 'https://in-toto.io/Statement/v1';
/** SLSA provenance v1 predicate type. */
export const provenancePredicateType = 'https://slsa.dev/provenance/v1';
/** The build type this statement describes: a redo-ts image target built from a project tree. */
export const redoBuildType = 'urn:redo-ts:build-type:image:v1';
/** Layer media type of a DSSE envelope (cosign, in-toto attestation layout). */
export const dsseMediaType = 'application/vnd.dsse.envelope.v1+json';
/** Annotation naming the predicate type of an attestation layer and referrer. */
export const predicateTypeAnnotation = 'in-toto.io/predicate-type';

/** One input of the build (a SLSA ResourceDescriptor). */
export interface Material {
  name: string;
  uri?: string;
  /** Algorithm → lowercase hex (`sha256`, `sha512`, `gitCommit`). */
  digest: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Everything a provenance statement says: all of it comes from the build, none from the clock or the host. */
export interface ProvenanceInput {
  /** The image target, root-relative (`image.oci.tar`): the subject's name. */
  target: string;
  /** The image's manifest (or index) digest. */
  manifestDigest: string;
  /** SOURCE_DATE_EPOCH the build used (0 when unset). */
  sourceDateEpoch: number;
  redoVersion: string;
  /** The project's git commit, when the project is a git work tree. */
  gitCommit?: string;
  /** Whether the work tree had changes to tracked files (then the commit alone does not name the tree). */
  isTreeDirty?: boolean;
  materials: Material[];
}

/**
 * The statement's bytes: canonical JSON (sorted keys, no whitespace), materials sorted
 * by name then uri. No timestamp but SOURCE_DATE_EPOCH, no invocation id, no host path,
 * so two builds of the same commit anywhere give the same bytes.
 */
export function provenanceStatement(input: ProvenanceInput): Buffer {
  const materials = [...input.materials].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : (a.uri ?? '') < (b.uri ?? '') ? -1 : 1));
  const git: Material[] = input.gitCommit === undefined ? [] : [{ name: 'project', uri: 'git+commit', digest: { gitCommit: input.gitCommit }, ...(input.isTreeDirty === true ? { annotations: { 'redo-ts.tree': 'modified' } } : {}) }];
  const statement = {
    _type: statementType,
    subject: [{ name: input.target, digest: { sha256: input.manifestDigest.replace(/^sha256:/, '') } }],
    predicateType: provenancePredicateType,
    predicate: {
      buildDefinition: {
        buildType: redoBuildType,
        externalParameters: { target: input.target },
        internalParameters: { SOURCE_DATE_EPOCH: String(input.sourceDateEpoch) },
        resolvedDependencies: [...git, ...materials],
      },
      runDetails: {
        builder: { id: `pkg:npm/redo-ts@${input.redoVersion}`, version: { 'redo-ts': input.redoVersion } },
        metadata: {},
      },
    },
  };
  return Buffer.from(canonicalJson(statement));
}

/** What attachProvenance pushed. */
export interface PushedProvenance {
  manifestDigest: string;
  statementBytes: number;
  envelopeBytes: number;
  manifestBytes: number;
  /** True when the same statement, signed by the same key, was already attached: nothing was pushed. */
  isReused: boolean;
}

/**
 * Signs `statement` in a DSSE envelope and pushes it as an OCI artifact referring to
 * the image: artifactType application/vnd.in-toto+json, the empty config, one layer of
 * dsseMediaType annotated with `predicateType`, `subject` = the image; then lists it in
 * the referrers index, replacing an earlier statement of the same predicate type. The
 * image's own manifest or index is not touched: no platform entry is added anywhere.
 * When the attached statement of that type already has these bytes and a signature by
 * this key, it is kept as it is (ECDSA signatures are randomised: re-signing would
 * change the referrer's digest for the same build). Throws ERR_REGISTRY_*.
 */
export async function attachStatement(client: RegistryClient, repository: string, subject: { digest: string; size: number; mediaType: string }, statement: Buffer, key: SigningKey, predicateType: string): Promise<PushedProvenance> {
  const existing = await findSignedStatement(client, repository, subject.digest, predicateType, statement, key);
  if (existing !== undefined) return { ...existing, statementBytes: statement.length, isReused: true };
  const envelope = signEnvelope(key, inTotoPayloadType, statement);
  const manifest = {
    schemaVersion: 2,
    mediaType: ociManifestType,
    artifactType: inTotoPayloadType,
    config: { mediaType: emptyConfig.mediaType, digest: sha256Digest(emptyConfig.bytes), size: emptyConfig.bytes.length },
    layers: [{ mediaType: dsseMediaType, digest: sha256Digest(envelope), size: envelope.length, annotations: { [predicateTypeAnnotation]: predicateType } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { [predicateTypeAnnotation]: predicateType },
  };
  const pushed = await pushArtifact(client, repository, manifest, [emptyConfig.bytes, envelope]);
  const descriptor = { ...pushed.descriptor, annotations: { [predicateTypeAnnotation]: predicateType } };
  await addReferrers(client, repository, subject.digest, [descriptor], (d) => d.artifactType === inTotoPayloadType && d.annotations?.[predicateTypeAnnotation] === predicateType);
  return { manifestDigest: descriptor.digest, statementBytes: statement.length, envelopeBytes: envelope.length, manifestBytes: pushed.manifestBytes.length, isReused: false };
}

/** The referrer of `subjectDigest` holding exactly `statement` signed by `key`, if there is one. */
async function findSignedStatement(client: RegistryClient, repository: string, subjectDigest: string, predicateType: string, statement: Buffer, key: SigningKey): Promise<{ manifestDigest: string; envelopeBytes: number; manifestBytes: number } | undefined> {
  const entry = (await listReferrers(client, repository, subjectDigest)).find((d) => d.artifactType === inTotoPayloadType && d.annotations?.[predicateTypeAnnotation] === predicateType);
  if (entry === undefined) return undefined;
  const manifest = await client.getManifest(repository, entry.digest, [ociManifestType]);
  const layer = manifest === undefined ? undefined : (JSON.parse(manifest.bytes.toString('utf8')) as { layers?: { digest: string }[] }).layers?.[0];
  if (manifest === undefined || layer === undefined) return undefined;
  const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-envelope-'));
  try {
    const file = join(scratch, 'envelope');
    if ((await client.fetchBlob(repository, layer.digest, file)) === undefined) return undefined;
    const bytes = readFileSync(file);
    const envelope = parseEnvelope(bytes);
    if (envelope === undefined || !Buffer.from(envelope.payload, 'base64').equals(statement) || !verifyEnvelope(envelope, key.publicKey)) return undefined;
    return { manifestDigest: entry.digest, envelopeBytes: bytes.length, manifestBytes: manifest.bytes.length };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** attachStatement for a SLSA provenance statement. */
export async function attachProvenance(client: RegistryClient, repository: string, subject: { digest: string; size: number; mediaType: string }, statement: Buffer, key: SigningKey): Promise<PushedProvenance> {
  return attachStatement(client, repository, subject, statement, key, provenancePredicateType);
}
