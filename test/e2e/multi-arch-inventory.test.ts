// sbom, audit and origin of a multi-platform image (`platforms:`, "${arch}" in its layer
// paths) describe its first platform, the image NAME.tar holds, instead of failing on
// the unexpanded layer path; the assembly audits every platform and gives each its own
// SBOMs in image.oci.tar, whose subject is that platform's manifest (issue 20).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFixture, type ProjectCopy } from '../helpers/project-copy.js';

describe('inventory of a multi-platform image', () => {
  let project: ProjectCopy;
  beforeAll(async () => {
    project = copyFixture('603-multi-arch');
    const built = await project.redo(['image.tar']);
    expect(built.status, built.stderr).toBe(0);
  });
  afterAll(() => project?.remove());

  it('sbom lists the first platform\'s files under the docker archive\'s config digest', async () => {
    const result = await project.redo(['sbom', 'image.tar']);
    expect(result.stderr).not.toContain('${arch}');
    expect(result.status, result.stderr).toBe(0);
    const sbom = JSON.parse(result.stdout) as { documentNamespace: string; files: { fileName: string }[] };
    expect(sbom.files.map((file) => file.fileName).sort()).toEqual(['./etc/arch', './usr/bin/greet']);
    const manifest = spawnSync('tar', ['-xOf', join(project.dir, 'image.tar'), 'manifest.json'], { encoding: 'utf8' });
    const config = (JSON.parse(manifest.stdout) as { Config: string }[])[0]!.Config.replace(/\.json$/, '').replace(/^blobs\/sha256\//, '');
    expect(sbom.documentNamespace.endsWith(config)).toBe(true);
  });

  it('audit and origin read the first platform\'s layers', async () => {
    const audit = await project.redo(['audit', 'image.tar']);
    expect(audit.stdout + audit.stderr).toContain('audit: "image.tar": no findings in 5 members of 2 layers');
    expect(audit.status).toBe(0);
    const origin = await project.redo(['origin', 'image.tar', '/etc/arch']);
    expect(origin.status, origin.stderr).toBe(0);
    expect(origin.stdout).toContain('arch-amd64.layer.tar');
    expect(origin.stdout).toContain('projectFile: arch-amd64/etc/arch');
  });

  it('image.oci.tar holds SBOMs for every platform, each naming its own manifest and listing its own files', async () => {
    const built = await project.redo(['image.oci.tar']);
    expect(built.status, built.stderr).toBe(0);
    const layout = join(project.dir, 'layout');
    mkdirSync(layout);
    spawnSync('tar', ['-xf', join(project.dir, 'image.oci.tar'), '-C', layout]);
    const blob = (digest: string): string => readFileSync(join(layout, 'blobs/sha256', digest.slice(7)), 'utf8');
    const layoutIndex = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }> };
    const top = JSON.parse(blob(layoutIndex.manifests[0]!.digest)) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
    const spdx = layoutIndex.manifests.filter((m) => m.artifactType === 'application/spdx+json');
    expect(spdx.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toEqual(['latest.linux-amd64.sbom.spdx', 'latest.linux-arm64.sbom.spdx']);
    expect(layoutIndex.manifests.filter((m) => m.artifactType === 'application/vnd.cyclonedx+json')).toHaveLength(2);
    for (const [i, platform] of top.manifests.entries()) {
      const artifact = JSON.parse(blob(spdx[i]!.digest)) as { subject: { digest: string }; layers: Array<{ digest: string }> };
      expect(artifact.subject.digest).toBe(platform.digest);
      const document = JSON.parse(blob(artifact.layers[0]!.digest)) as { files: Array<{ fileName: string; checksums: Array<{ algorithm: string; checksumValue: string }> }> };
      const arch = document.files.find((file) => file.fileName === './etc/arch')!;
      const wanted = createHash('sha256').update(readFileSync(join(project.dir, `arch-${platform.platform.architecture}/etc/arch`))).digest('hex');
      expect(arch.checksums.find((sum) => sum.algorithm === 'SHA256')!.checksumValue, platform.platform.architecture).toBe(wanted);
    }
  });

  it('the assembly audits every platform: a finding only in the arm64 layer fails the build, naming the platform', async () => {
    mkdirSync(join(project.dir, 'arch-arm64/root/.ssh'), { recursive: true });
    writeFileSync(join(project.dir, 'arch-arm64/root/.ssh/id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n');
    writeFileSync(join(project.dir, 'image.yaml'), `${readFileSync(join(project.dir, 'image.yaml'), 'utf8')}audit: true\n`);
    // A file added to a layer list's folder input does not rebuild the layer by itself
    // (the rule depends on the files it saw, not on the folder's listing): rebuild it.
    const layer = await project.redo(['-f', 'arch-arm64.layer.tar']);
    expect(layer.status, layer.stderr).toBe(0);
    const result = await project.redo(['image.oci.tar']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('redo: "image.tar" (linux/arm64): the audit found 1 problem');
    expect(result.stderr).toContain('private-key  /root/.ssh/id_ed25519');
  });
});
