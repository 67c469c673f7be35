// `redo-ts push --sign` against a loopback docker-registry: the signature is stored as
// cosign stores it, openssl verifies it, and skopeo under a sigstoreSigned policy finds
// it (or, for an unsigned image or a moved tag, finds none and refuses).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyUnderPolicy, layoutDigest, registryFixture } from '../helpers/registry-fixtures.js';
import type { ProjectCopy } from '../helpers/project-copy.js';
import { hasTool, runTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';

const tools = ['docker-registry', 'skopeo', 'openssl'];
const missing = tools.filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`registry sign tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

async function blob(address: string, repository: string, digest: string): Promise<Buffer> {
  const response = await fetch(`http://${address}/v2/${repository}/blobs/${digest}`);
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

describeIf('redo-ts push --sign', () => {
  let registry: LoopbackRegistry;
  let project: ProjectCopy;
  let work: string;
  let keyPrefix: string;
  beforeAll(async () => {
    registry = await startRegistry();
    project = registryFixture();
    work = mkdtempSync(join(tmpdir(), 'redo-ts-sign-'));
    keyPrefix = join(work, 'release');
    const generated = await project.redo(['key', 'generate', '--out', keyPrefix]);
    expect(generated.status).toBe(0);
  });
  afterAll(async () => {
    await registry?.stop();
    project?.remove();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('stores the signature as cosign does (tag sha256-<hex>.sig, simple-signing layer, base64 annotation), and openssl verifies it over the payload', async () => {
    const reference = `${registry.address}/redo-ts/app:v1`;
    const pushed = await project.redo(['push', '--sign', `${keyPrefix}.key`, 'image.tar', reference]);
    expect(pushed.status).toBe(0);
    const digest = layoutDigest(project, 'image.oci.tar');
    const tag = `sha256-${digest.slice(7)}.sig`;
    expect(pushed.stdout).toMatch(new RegExp(`^signature +sha256:[0-9a-f]{12}…  payload 2\\d\\d B, manifest \\d+ B  tag ${tag}$`, 'm'));

    // skopeo, a second client, reads the signature manifest by its tag.
    const manifest = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${registry.address}/redo-ts/app:${tag}`]).stdout) as {
      mediaType: string;
      layers: { mediaType: string; digest: string; annotations: Record<string, string> }[];
      subject: { digest: string };
    };
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.subject.digest).toBe(digest);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.dev.cosign.simplesigning.v1+json']);
    const layer = manifest.layers[0]!;
    const payload = await blob(registry.address, 'redo-ts/app', layer.digest);
    expect(JSON.parse(payload.toString('utf8'))).toEqual({
      critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null,
    });
    writeFileSync(join(work, 'payload'), payload);
    writeFileSync(join(work, 'payload.sig'), Buffer.from(layer.annotations['dev.cosignproject.cosign/signature']!, 'base64'));
    expect(runTool('openssl', ['dgst', '-sha256', '-verify', `${keyPrefix}.pub`, '-signature', join(work, 'payload.sig'), join(work, 'payload')]).stdout.trim()).toBe('Verified OK');

    // The signature is also a referrer of the image (referrers tag schema).
    const referrers = (await (await fetch(`http://${registry.address}/v2/redo-ts/app/manifests/sha256-${digest.slice(7)}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })).json()) as { manifests: { artifactType: string }[] };
    expect(referrers.manifests.map((m) => m.artifactType)).toContain('application/vnd.dev.cosign.artifact.sig.v1+json');

    // Signing again replaces this key's signature of the same payload instead of piling up.
    const again = await project.redo(['push', '--sign', `${keyPrefix}.key`, 'image.tar', reference]);
    expect(again.status).toBe(0);
    const after = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${registry.address}/redo-ts/app:${tag}`]).stdout) as { layers: unknown[] };
    expect(after.layers).toHaveLength(1);
  });

  it('skopeo copy under a sigstoreSigned policy: the signed image is accepted (where skopeo has sigstore: not Debian 12), an unsigned image and a tag moved to an unsigned manifest are refused', async () => {
    const signed = copyUnderPolicy(work, registry.address, `${registry.address}/redo-ts/app:v1`, `${keyPrefix}.pub`);
    if (signed.stderr.includes('sigstore disabled')) {
      // Debian 12 builds containers/image 5.23 with sigstore verification patched out: every
      // sigstoreSigned requirement ends here, after the signature was found (docs/signing.md).
      console.warn('skopeo here is built without sigstore verification ("Debian-local change: sigstore disabled"); the signature was found, openssl checked it');
      expect(signed.status).toBe(1);
    } else {
      expect(signed.stderr).toBe('');
      expect(signed.status).toBe(0);
    }

    writeFileSync(join(project.dir, 'app/etc/greeting'), 'hello, unsigned\n');
    const unsigned = await project.redo(['push', 'image.tar', `${registry.address}/redo-ts/app:v2`]);
    expect(unsigned.status).toBe(0);
    const refused = copyUnderPolicy(work, registry.address, `${registry.address}/redo-ts/app:v2`, `${keyPrefix}.pub`);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('Source image rejected: A signature was required, but no signature exists');

    // Move v1 to the unsigned manifest: the signature of the old one does not follow.
    const moved = await project.redo(['push', 'image.tar', `${registry.address}/redo-ts/app:v1`]);
    expect(moved.status).toBe(0);
    const refusedMoved = copyUnderPolicy(work, registry.address, `${registry.address}/redo-ts/app:v1`, `${keyPrefix}.pub`);
    expect(refusedMoved.status).toBe(1);
    expect(refusedMoved.stderr).toContain('Source image rejected: A signature was required, but no signature exists');
  });

  it('signs with the key in REDO_TS_SIGNING_KEY (encrypted, passphrase in REDO_TS_KEY_PASSPHRASE); a wrong passphrase fails before anything is built', async () => {
    const encrypted = join(work, 'ci');
    expect((await project.redo(['key', 'generate', '--out', encrypted], { env: { REDO_TS_KEY_PASSPHRASE: 'right' } })).status).toBe(0);
    const reference = `${registry.address}/redo-ts/app:ci`;
    const wrong = await project.redo(['push', 'image.tar', reference], { env: { REDO_TS_SIGNING_KEY: `${encrypted}.key`, REDO_TS_KEY_PASSPHRASE: 'wrong' } });
    expect(wrong.status).toBe(1);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toContain(`redo: "${encrypted}.key": not a usable private key (wrong passphrase?)`);
    expect(wrong.stderr).toContain('hint: check REDO_TS_KEY_PASSPHRASE');
    const right = await project.redo(['push', 'image.tar', reference], { env: { REDO_TS_SIGNING_KEY: `${encrypted}.key`, REDO_TS_KEY_PASSPHRASE: 'right' } });
    expect(right.status).toBe(0);
    expect(right.stdout).toMatch(/^signature /m);
  });

  it('redo-ts attestations lists the signature, provenance and SBOMs and checks them; another key, or a tag moved onto an image signed under another name, fails', async () => {
    writeFileSync(join(project.dir, 'app/etc/greeting'), 'hello, attested\n');
    const reference = `${registry.address}/redo-ts/attested:t1`;
    expect((await project.redo(['push', '--sign', `${keyPrefix}.key`, 'image.tar', reference])).status).toBe(0);
    const digest = layoutDigest(project, 'image.oci.tar');
    const listed = await project.redo(['attestations', '--key', `${keyPrefix}.pub`, reference]);
    expect(listed.stderr).toBe('');
    expect(listed.status).toBe(0);
    const shape = (stdout: string): string[] => stdout.trim().split('\n').map((line) => line.replace(/sha256:[0-9a-f]{12}…/g, 'DIGEST…').replace(/ +[\d.]+ (B|KiB)  /, '  SIZE  ').replace(/ +/g, ' '));
    expect(shape(listed.stdout)).toEqual([
      `image ${reference}@${digest}`,
      `signature DIGEST… SIZE ${reference} verified`,
      'sbom DIGEST… SIZE application/spdx+json unsigned',
      'sbom DIGEST… SIZE application/vnd.cyclonedx+json unsigned',
      'attestation DIGEST… SIZE https://slsa.dev/provenance/v1 verified',
    ]);

    expect((await project.redo(['key', 'generate', '--out', join(work, 'stranger')])).status).toBe(0);
    const stranger = await project.redo(['attestations', '--key', join(work, 'stranger.pub'), reference]);
    expect(stranger.status).toBe(1);
    expect(stranger.stderr).toContain(`redo: "${reference}": no signature by the key for this image and name`);
    expect(stranger.stderr).toMatch(/attestation sha256:[0-9a-f]{64}: https:\/\/slsa.dev\/provenance\/v1: bad signature \(not by this key, or altered\)/);

    // Another image, signed as :t2; then :t1 is moved onto it (as anyone with push rights could).
    writeFileSync(join(project.dir, 'app/etc/greeting'), 'hello, other\n');
    expect((await project.redo(['push', '--sign', `${keyPrefix}.key`, 'image.tar', `${registry.address}/redo-ts/attested:t2`])).status).toBe(0);
    writeFileSync(join(work, 'accept.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    runTool('skopeo', ['--policy', join(work, 'accept.json'), 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${registry.address}/redo-ts/attested:t2`, `docker://${reference}`]);
    const moved = await project.redo(['attestations', '--key', `${keyPrefix}.pub`, reference]);
    expect(moved.status).toBe(1);
    expect(moved.stdout).toMatch(new RegExp(`^signature +sha256:[0-9a-f]{12}… +\\d+ B  ${registry.address}/redo-ts/attested:t2  valid, but for another name$`, 'm'));
    expect(moved.stderr).toContain(`redo: "${reference}": no signature by the key for this image and name`);
    expect(moved.stderr).toContain('hint: the image was not signed with this key under this name (was the tag moved?); do not use it');
  });
});
