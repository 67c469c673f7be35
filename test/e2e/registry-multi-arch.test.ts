// `platforms: [linux/amd64, linux/arm64]`: image.oci.tar holds an OCI image index, pushed
// as an index and read back by skopeo (inspect --raw, --override-arch, copy --all).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyFixture, type ProjectCopy } from '../helpers/project-copy.js';
import { hasTool, runTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';
import { blobActions, layoutDigest } from '../helpers/registry-fixtures.js';

const missing = ['docker-registry', 'skopeo', 'oci-image-tool'].filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`multi-arch tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

interface Index {
  mediaType: string;
  manifests: { digest: string; platform: { os: string; architecture: string } }[];
}

describeIf('platforms: [linux/amd64, linux/arm64]', () => {
  let registry: LoopbackRegistry;
  let project: ProjectCopy;
  let scratch: string;
  beforeAll(async () => {
    registry = await startRegistry();
    project = copyFixture('603-multi-arch');
    scratch = mkdtempSync(join(tmpdir(), 'redo-ts-multi-'));
  });
  afterAll(async () => {
    await registry?.stop();
    project?.remove();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  it('image.oci.tar is an OCI image index with one manifest per platform, each with its own layer', async () => {
    const result = await project.redo(['image.tar', 'image.oci.tar']);
    expect(result.status).toBe(0);
    const index = JSON.parse(runTool('skopeo', ['inspect', '--raw', `oci-archive:${join(project.dir, 'image.oci.tar')}:latest`]).stdout) as Index;
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);
    const arm = JSON.parse(runTool('skopeo', ['inspect', '--override-arch', 'arm64', `oci-archive:${join(project.dir, 'image.oci.tar')}:latest`]).stdout) as { Architecture: string; Layers: string[] };
    const amd = JSON.parse(runTool('skopeo', ['inspect', '--override-arch', 'amd64', `oci-archive:${join(project.dir, 'image.oci.tar')}:latest`]).stdout) as { Architecture: string; Layers: string[] };
    expect([amd.Architecture, arm.Architecture]).toEqual(['amd64', 'arm64']);
    expect(arm.Layers[0]).toBe(amd.Layers[0]);
    expect(arm.Layers[1]).not.toBe(amd.Layers[1]);
    // The docker archive has no manifest list: it holds the first platform.
    const docker = JSON.parse(runTool('skopeo', ['inspect', `docker-archive:${join(project.dir, 'image.tar')}`]).stdout) as { Architecture: string; Layers: string[] };
    expect(docker.Architecture).toBe('amd64');
    expect(docker.Layers).toEqual(amd.Layers);
    runTool('tar', ['-xf', join(project.dir, 'image.oci.tar'), '-C', scratch]);
    // oci-image-tool predates image-spec 1.1 (artifacts, several refs): it validates the
    // index with each platform's SBOM descriptors left out of index.json (as sbom.test.ts).
    const layoutIndex = JSON.parse(readFileSync(join(scratch, 'index.json'), 'utf8')) as { manifests: Array<{ artifactType?: string }> };
    expect(layoutIndex.manifests.filter((m) => m.artifactType !== undefined)).toHaveLength(4);
    layoutIndex.manifests = layoutIndex.manifests.filter((m) => m.artifactType === undefined);
    writeFileSync(join(scratch, 'index.json'), JSON.stringify(layoutIndex));
    expect(runTool('oci-image-tool', ['validate', '--type', 'image', scratch]).stdout).toContain('Validation succeeded');
  });

  it('push uploads both platforms, the shared layer once, then the index under the tag; skopeo copy --all reads it back', async () => {
    const reference = `${registry.address}/redo-ts/multi:1`;
    const result = await project.redo(['push', 'image.tar', reference]);
    expect(result.status).toBe(0);
    expect(blobActions(result.stdout)).toEqual([
      'uploaded linux/amd64 config',
      'uploaded linux/amd64 layer 1',
      'uploaded linux/amd64 layer 2',
      'uploaded linux/arm64 config',
      'skipped linux/arm64 layer 1',
      'uploaded linux/arm64 layer 2',
    ]);
    const digest = layoutDigest(project, 'image.oci.tar');
    expect(result.stdout).toContain(`pushed ${reference}@${digest}: 5 blobs uploaded`);
    const raw = runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reference}`]).stdout;
    expect(raw).toBe(runTool('tar', ['-xOf', join(project.dir, 'image.oci.tar'), `blobs/sha256/${digest.slice(7)}`]).stdout);
    // Each platform's SBOMs are its referrers: a referrers tag per platform manifest.
    const tags = (await (await fetch(`http://${registry.address}/v2/redo-ts/multi/tags/list`)).json()) as { tags: string[] };
    const platforms = (JSON.parse(raw) as Index).manifests.map((m) => `sha256-${m.digest.slice(7)}`);
    expect(tags.tags.filter((tag) => tag.startsWith('sha256-')).sort()).toEqual([...platforms].sort());
    const arm = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${reference}`]).stdout) as { Architecture: string };
    expect(arm.Architecture).toBe('arm64');
    const copied = join(scratch, 'copied');
    runTool('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${reference}`, `oci:${copied}:x`]);
    // skopeo compresses our uncompressed layers as it writes an OCI layout, so its manifests
    // differ; each platform's config (architecture, diff_ids) is ours byte for byte.
    const blob = (dir: string, digest: string): Buffer => readFileSync(join(dir, 'blobs/sha256', digest.slice(7)));
    const configsOf = (index: Index, read: (digest: string) => Buffer): string[] =>
      index.manifests.map((m) => `${m.platform.architecture} ${(JSON.parse(read(m.digest).toString('utf8')) as { config: { digest: string } }).config.digest}`);
    const copiedTop = JSON.parse(readFileSync(join(copied, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const copiedIndex = JSON.parse(blob(copied, copiedTop.manifests[0]!.digest).toString('utf8')) as Index;
    const layoutDir = join(scratch, 'ours');
    runTool('mkdir', ['-p', layoutDir]);
    runTool('tar', ['-xf', join(project.dir, 'image.oci.tar'), '-C', layoutDir]);
    const ours = configsOf(JSON.parse(raw) as Index, (d) => blob(layoutDir, d));
    expect(configsOf(copiedIndex, (d) => blob(copied, d))).toEqual(ours);
    expect(ours.map((line) => line.split(' ')[0])).toEqual(['amd64', 'arm64']);
  });

  it('a platform that is not OS/ARCHITECTURE is refused with its line', async () => {
    const other = copyFixture('603-multi-arch');
    try {
      const file = join(other.dir, 'image.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('linux/arm64', 'arm64'));
      const result = await other.redo(['image.oci.tar']);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('redo: "image.yaml": invalid image description\n  image.yaml:3: platforms: "arm64" is not OS/ARCHITECTURE[/VARIANT], e.g. linux/arm64\n');
    } finally {
      other.remove();
    }
  });
});
