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

  it('pushes the image, not an artifact listed beside it in index.json, and skips nothing the first time', async () => {
    writeFileSync(join(dir, 'motd'), 'hi\n');
    await writeTar([{ path: Buffer.from('etc/motd'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 3, content: { kind: 'path', path: join(dir, 'motd') } }], join(dir, 'layer.tar'));
    const layout = join(dir, 'layout');
    const image = await writeOciLayout({ layers: [join(dir, 'layer.tar')], config: { architecture: 'amd64', os: 'linux' }, refName: 'latest' }, layout);
    const sbom = Buffer.from('{"spdxVersion":"SPDX-2.3"}');
    const sbomDigest = `sha256:${createHash('sha256').update(sbom).digest('hex')}`;
    writeFileSync(join(layout, 'blobs/sha256', sbomDigest.slice(7)), sbom);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: unknown[] };
    index.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/spdx+json', digest: sbomDigest, size: sbom.length });
    writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
    await writeTar(collectEntries(layout), join(dir, 'image.oci.tar'));
    const report = await pushLayout(join(dir, 'image.oci.tar'), `${registry.address}/unit/app:1`, { env: {} });
    expect(report.digest).toBe(image.manifestDigest);
    expect(report.blobs.map((b) => `${b.action} ${b.role}`)).toEqual(['uploaded config', 'uploaded layer 1']);
  });
});
