// pushLayout picks the image out of a layout that also holds an artifact (an SBOM beside it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectEntries, writeOciLayout, writeTar } from '../../../lib/index.js';
import { pushLayout } from '../../../lib/registry/push.js';
import { hasTool, startRegistry, type LoopbackRegistry } from '../../helpers/clients.js';

const describeIf = hasTool('docker-registry') ? describe : describe.skip;

describeIf('pushLayout', () => {
  let registry: LoopbackRegistry;
  let dir: string;
  beforeAll(async () => {
    registry = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'redo-ts-push-unit-'));
  });
  afterAll(async () => {
    await registry?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('pushes the image, then an SBOM naming it as subject by digest and in the referrers tag index', async () => {
    let artifactDigest = '';
    writeFileSync(join(dir, 'motd'), 'hi\n');
    await writeTar([{ path: Buffer.from('etc/motd'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 3, content: { kind: 'path', path: join(dir, 'motd') } }], join(dir, 'layer.tar'));
    const layout = join(dir, 'layout');
    const image = await writeOciLayout({ layers: [join(dir, 'layer.tar')], config: { architecture: 'amd64', os: 'linux' }, refName: 'latest' }, layout);
    // An SBOM artifact naming the image as its subject, listed in index.json beside it.
    const put = (bytes: Buffer): string => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      writeFileSync(join(layout, 'blobs/sha256', digest.slice(7)), bytes);
      return digest;
    };
    const sbom = Buffer.from('{"spdxVersion":"SPDX-2.3"}');
    const empty = Buffer.from('{}');
    const imageManifest = readFileSync(join(layout, 'blobs/sha256', image.manifestDigest.slice(7)));
    const artifact = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: put(empty), size: empty.length },
      layers: [{ mediaType: 'application/spdx+json', digest: put(sbom), size: sbom.length }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.manifestDigest, size: imageManifest.length },
    }));
    artifactDigest = put(artifact);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: unknown[] };
    index.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: artifactDigest, size: artifact.length });
    writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
    await writeTar(collectEntries(layout), join(dir, 'image.oci.tar'));
    const report = await pushLayout(join(dir, 'image.oci.tar'), `${registry.address}/unit/app:1`, { env: {} });
    expect(report.digest).toBe(image.manifestDigest);
    expect(report.blobs.map((b) => `${b.action} ${b.role}`)).toEqual([
      'uploaded config',
      'uploaded layer 1',
      'uploaded referrer application/spdx+json',
      'uploaded referrer application/spdx+json',
    ]);
    const stored = await fetch(`http://${registry.address}/v2/unit/app/manifests/${artifactDigest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(stored.status).toBe(200);
    const referrers = await fetch(`http://${registry.address}/v2/unit/app/manifests/sha256-${image.manifestDigest.slice(7)}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
    expect(((await referrers.json()) as { manifests: { digest: string; artifactType: string }[] }).manifests).toEqual([
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: artifactDigest, size: expect.any(Number), artifactType: 'application/spdx+json' },
    ]);
  });
});
