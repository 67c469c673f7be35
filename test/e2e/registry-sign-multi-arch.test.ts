// `redo-ts push --sign` of a multi-arch image (an OCI index, fixture 603): the index and
// each platform manifest are signed as cosign stores signatures (`cosign sign
// --recursive`), openssl verifies each payload's signature; the provenance statement's
// subject is the index digest, its DSSE signature verified by openssl; the signatures
// and the provenance are referrers of the index (and each platform's signature of its
// manifest); the index keeps exactly its two platforms, and skopeo under a
// sigstoreSigned policy finds the signatures for the tag and for a platform's digest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyFixture, type ProjectCopy } from '../helpers/project-copy.js';
import { hasTool, runTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';
import { copyUnderPolicy, layoutDigest } from '../helpers/registry-fixtures.js';

const tools = ['docker-registry', 'skopeo', 'openssl'];
const missing = tools.filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`multi-arch sign tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

const indexType = 'application/vnd.oci.image.index.v1+json';
const manifestType = 'application/vnd.oci.image.manifest.v1+json';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

async function getJson<T>(url: string, accept: string): Promise<T> {
  const response = await fetch(url, { headers: { accept } });
  expect(response.status, url).toBe(200);
  return (await response.json()) as T;
}

async function getBytes(url: string, accept = '*/*'): Promise<Buffer> {
  const response = await fetch(url, { headers: { accept } });
  expect(response.status, url).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

describeIf('redo-ts push --sign of a multi-arch image (an index)', () => {
  let registry: LoopbackRegistry;
  let project: ProjectCopy;
  let work: string;
  let keyPrefix: string;
  beforeAll(async () => {
    registry = await startRegistry();
    project = copyFixture('603-multi-arch');
    work = mkdtempSync(join(tmpdir(), 'redo-ts-sign-multi-'));
    keyPrefix = join(work, 'release');
    expect((await project.redo(['key', 'generate', '--out', keyPrefix])).status).toBe(0);
  });
  afterAll(async () => {
    await registry?.stop();
    project?.remove();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  /** Checks with openssl that the cosign signature manifest under `sha256-<hex>.sig` signs `digest` as `reference`; returns that manifest. */
  async function checkSignature(repository: string, digest: string, mediaType: string, size: number, reference: string): Promise<{ layers: Descriptor[]; subject: Descriptor }> {
    const base = `http://${registry.address}/v2/${repository}`;
    const signature = await getJson<{ artifactType: string; layers: Descriptor[]; subject: Descriptor }>(`${base}/manifests/sha256-${digest.slice(7)}.sig`, manifestType);
    expect(signature.artifactType).toBe('application/vnd.dev.cosign.artifact.sig.v1+json');
    // The subject descriptor names the signed manifest with its own media type (an index's for the index).
    expect(signature.subject).toEqual({ mediaType, digest, size });
    expect(signature.layers).toHaveLength(1);
    const layer = signature.layers[0]!;
    const payload = await getBytes(`${base}/blobs/${layer.digest}`);
    expect(JSON.parse(payload.toString('utf8'))).toEqual({
      critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null,
    });
    writeFileSync(join(work, 'payload'), payload);
    writeFileSync(join(work, 'payload.sig'), Buffer.from(layer.annotations!['dev.cosignproject.cosign/signature']!, 'base64'));
    expect(runTool('openssl', ['dgst', '-sha256', '-verify', `${keyPrefix}.pub`, '-signature', join(work, 'payload.sig'), join(work, 'payload')]).stdout.trim()).toBe('Verified OK');
    return signature;
  }

  it('signs the index and each platform manifest, attaches provenance whose subject is the index, all as referrers; openssl verifies every signature', async () => {
    const repository = 'redo-ts/multi';
    const reference = `${registry.address}/${repository}:1`;
    const pushed = await project.redo(['push', '--sign', `${keyPrefix}.key`, 'image.tar', reference]);
    expect(pushed.stderr).not.toContain('redo: ');
    expect(pushed.status).toBe(0);
    const indexDigest = layoutDigest(project, 'image.oci.tar');
    expect(pushed.stdout).toContain(`pushed ${reference}@${indexDigest}:`);

    // The tag still names the index as built: exactly its two platforms, no attestation entry.
    const base = `http://${registry.address}/v2/${repository}`;
    const indexBytes = await getBytes(`${base}/manifests/${indexDigest}`, indexType);
    const index = JSON.parse(indexBytes.toString('utf8')) as { mediaType: string; manifests: Descriptor[] };
    expect(index.mediaType).toBe(indexType);
    expect(index.manifests.map((m) => `${m.platform!.os}/${m.platform!.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);
    const tagged = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reference}`]).stdout) as { manifests: Descriptor[] };
    expect(tagged.manifests.map((m) => m.digest)).toEqual(index.manifests.map((m) => m.digest));

    // One signature line per signed manifest: the index, then each platform, in index order.
    const signatureTags = [...pushed.stdout.matchAll(/^signature +sha256:[0-9a-f]{12}…  payload \d+ B, manifest \d+ B  tag (\S+)$/gm)].map((m) => m[1]);
    expect(signatureTags).toEqual([indexDigest, ...index.manifests.map((m) => m.digest)].map((digest) => `sha256-${digest.slice(7)}.sig`));

    await checkSignature(repository, indexDigest, indexType, indexBytes.length, reference);
    for (const platform of index.manifests) await checkSignature(repository, platform.digest, manifestType, platform.size, reference);

    // The index's referrers: its signature and the provenance (and the image's SBOMs, if any).
    const referrers = await getJson<{ manifests: Descriptor[] }>(`${base}/manifests/sha256-${indexDigest.slice(7)}`, indexType);
    const kinds = referrers.manifests.map((m) => m.artifactType);
    expect(kinds).toContain('application/vnd.dev.cosign.artifact.sig.v1+json');
    expect(kinds.filter((kind) => kind === 'application/vnd.in-toto+json')).toHaveLength(1);
    // Each platform manifest's referrers: its own signature and its own SBOMs (SPDX and
    // CycloneDX, made per platform), no provenance (that is the index's).
    for (const platform of index.manifests) {
      const listed = await getJson<{ manifests: Descriptor[] }>(`${base}/manifests/sha256-${platform.digest.slice(7)}`, indexType);
      expect(listed.manifests.map((m) => m.artifactType).sort()).toEqual(['application/spdx+json', 'application/vnd.cyclonedx+json', 'application/vnd.dev.cosign.artifact.sig.v1+json']);
    }

    // Provenance: subject = the index digest, under the layout's name; DSSE signature checked by openssl.
    const provenanceEntry = referrers.manifests.find((m) => m.artifactType === 'application/vnd.in-toto+json')!;
    const provenanceManifest = await getJson<{ subject: Descriptor; layers: Descriptor[] }>(`${base}/manifests/${provenanceEntry.digest}`, manifestType);
    expect(provenanceManifest.subject).toEqual({ mediaType: indexType, digest: indexDigest, size: indexBytes.length });
    const envelope = JSON.parse((await getBytes(`${base}/blobs/${provenanceManifest.layers[0]!.digest}`)).toString('utf8')) as { payloadType: string; payload: string; signatures: { sig: string }[] };
    const statement = Buffer.from(envelope.payload, 'base64');
    const parsed = JSON.parse(statement.toString('utf8')) as { subject: { name: string; digest: { sha256: string } }[]; predicateType: string };
    expect(parsed.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(parsed.subject).toEqual([{ name: 'image.oci.tar', digest: { sha256: indexDigest.slice(7) } }]);
    const pae = Buffer.concat([Buffer.from(`DSSEv1 ${envelope.payloadType.length} ${envelope.payloadType} ${statement.length} `), statement]);
    writeFileSync(join(work, 'pae'), pae);
    writeFileSync(join(work, 'pae.sig'), Buffer.from(envelope.signatures[0]!.sig, 'base64'));
    expect(runTool('openssl', ['dgst', '-sha256', '-verify', `${keyPrefix}.pub`, '-signature', join(work, 'pae.sig'), join(work, 'pae')]).stdout.trim()).toBe('Verified OK');

    // Signing again keeps every signature and the statement as they are.
    const again = await project.redo(['push', '--sign', `${keyPrefix}.key`, 'image.tar', reference]);
    expect(again.status).toBe(0);
    expect([...again.stdout.matchAll(/^(signature|provenance) .*  \(already attached\)$/gm)]).toHaveLength(4);
  });

  it('redo-ts attestations checks the index signature and the provenance with the public key', async () => {
    const reference = `${registry.address}/redo-ts/multi:1`;
    const listed = await project.redo(['attestations', '--key', `${keyPrefix}.pub`, reference]);
    expect(listed.stderr).toBe('');
    expect(listed.status).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^signature +sha256:[0-9a-f]{12}… +\\d+ B  ${reference.replace(/[.]/g, '\\.')}  verified$`, 'm'));
    expect(listed.stdout).toMatch(/^attestation +sha256:[0-9a-f]{12}… +[\d.]+ (B|KiB)  https:\/\/slsa\.dev\/provenance\/v1  verified$/m);
  });

  it('skopeo under a sigstoreSigned policy finds a signature for the tag (the index) and for one platform pulled by its own digest', async () => {
    const index = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${registry.address}/redo-ts/multi:1`]).stdout) as { manifests: Descriptor[] };
    const arm = index.manifests.find((m) => m.platform!.architecture === 'arm64')!;
    const copy = (source: string, extra: string[] = []): { status: number | null; stderr: string } => copyUnderPolicy(work, registry.address, source, `${keyPrefix}.pub`, extra);
    for (const result of [copy(`${registry.address}/redo-ts/multi:1`, ['--override-arch', 'arm64']), copy(`${registry.address}/redo-ts/multi@${arm.digest}`)]) {
      if (result.stderr.includes('sigstore disabled')) {
        // Debian 12's skopeo has sigstore verification patched out: it found the signature
        // (else it would say none exists) and stops there; openssl checked it above.
        expect(result.status).toBe(1);
        expect(result.stderr).not.toContain('no signature exists');
      } else {
        expect(result.stderr).toBe('');
        expect(result.status).toBe(0);
      }
    }
    // An unsigned multi-arch image is refused: no signature for its index.
    const unsigned = await project.redo(['push', 'image.tar', `${registry.address}/redo-ts/unsigned:1`]);
    expect(unsigned.status).toBe(0);
    const refused = copy(`${registry.address}/redo-ts/unsigned:1`, ['--override-arch', 'arm64']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('A signature was required, but no signature exists');
  });
});
