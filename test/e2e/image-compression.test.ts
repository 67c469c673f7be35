// Compressed layers chosen per image (`compression: zstd` / `gzip:9` in NAME.yaml): the
// manifest names the codec's media type, the config keeps the uncompressed diff_ids, and
// real clients take every view: podman loads NAME.tar (a docker archive with .tar.zst
// layers) and runs it, skopeo copies NAME.oci.tar and podman runs it, umoci and
// oci-image-tool take the gzip one (and refuse zstd, which they predate), and `redo-ts push` ships it to a loopback docker-registry that skopeo reads.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivatePodman, hasTool, runTool, startRegistry, type LoopbackRegistry, type PrivatePodman } from '../helpers/clients.js';
import { copyProject, type ProjectCopy } from '../helpers/project-copy.js';

const tools = ['skopeo', 'umoci', 'oci-image-tool', 'podman', 'runc', 'docker-registry', 'zstd'];
const missing = tools.filter((tool) => !hasTool(tool));
if (missing.length > 0) console.warn(`image compression tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

/** The default image's description with another tag and a `compression:` line. */
function description(dir: string, tag: string, compression: string): string {
  return readFileSync(join(dir, 'image.yaml'), 'utf8').replace('tags: [localhost/redo-ts/hello:latest]', `tags: [localhost/redo-ts/${tag}:latest]\ncompression: ${compression}`);
}

interface Record {
  images: Array<{ config: { digest: string }; manifest: { digest: string }; layers: Array<{ digest: string; diffId: string; compression: { codec: string; level: number } }> }>;
}

describeIf('compressed layers, chosen per image', () => {
  let project: ProjectCopy;
  let podman: PrivatePodman;
  let registry: LoopbackRegistry;
  let cache: string;
  let plain: Record;
  const env = (): NodeJS.ProcessEnv => ({ REDO_TS_CACHE: cache });

  beforeAll(async () => {
    cache = mkdtempSync(join(tmpdir(), 'redo-ts-cache-'));
    project = copyProject('redo-ts-compression-');
    podman = createPrivatePodman();
    registry = await startRegistry();
    writeFileSync(join(project.dir, 'zstd.yaml'), description(project.dir, 'zstd', 'zstd'));
    writeFileSync(join(project.dir, 'gzip9.yaml'), description(project.dir, 'gzip9', 'gzip:9'));
    const build = await project.redo(['image.image.json', 'zstd.tar', 'zstd.oci.tar', 'gzip9.tar', 'gzip9.oci.tar'], { env: env() });
    expect(build.status, build.stderr).toBe(0);
    plain = JSON.parse(readFileSync(join(project.dir, 'image.image.json'), 'utf8')) as Record;
  }, 600_000);
  afterAll(async () => {
    await registry?.stop();
    podman?.remove();
    project?.remove();
    if (cache !== undefined) rmSync(cache, { recursive: true, force: true });
  });

  const recordOf = (name: string): Record => JSON.parse(readFileSync(join(project.dir, `${name}.image.json`), 'utf8')) as Record;

  it('the manifest names the codec, the config keeps the uncompressed diff_ids, the blobs decompress to the layers', () => {
    for (const [name, codec, level, mediaType] of [['zstd', 'zstd', 3, 'application/vnd.oci.image.layer.v1.tar+zstd'], ['gzip9', 'gzip', 9, 'application/vnd.oci.image.layer.v1.tar+gzip']] as const) {
      const record = recordOf(name);
      const image = record.images[0]!;
      expect(image.layers.map((layer) => layer.diffId)).toEqual(plain.images[0]!.layers.map((layer) => layer.diffId));
      for (const layer of image.layers) {
        expect(layer.compression).toEqual({ codec, level });
        expect(layer.digest).not.toBe(layer.diffId);
        const blob = join(project.dir, '.redo/store/blobs/sha256', layer.digest.slice(7));
        const tool = codec === 'zstd' ? runTool('sh', ['-c', `zstd -dcq < '${blob}' | sha256sum`]) : runTool('sh', ['-c', `gzip -dc < '${blob}' | sha256sum`]);
        expect(`sha256:${tool.stdout.slice(0, 64)}`).toBe(layer.diffId);
      }
      const manifest = JSON.parse(readFileSync(join(project.dir, '.redo/store/blobs/sha256', image.manifest.digest.slice(7)), 'utf8')) as { layers: Array<{ mediaType: string; digest: string }> };
      expect(manifest.layers.map((layer) => layer.mediaType)).toEqual([mediaType, mediaType]);
      expect(manifest.layers.map((layer) => layer.digest)).toEqual(image.layers.map((layer) => layer.digest));
      const config = JSON.parse(readFileSync(join(project.dir, '.redo/store/blobs/sha256', image.config.digest.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] } };
      expect(config.rootfs.diff_ids).toEqual(image.layers.map((layer) => layer.diffId));
    }
  });

  it('podman loads the zstd docker archive (.tar.zst layers) and the gzip:9 one, and runs the greeting', () => {
    const members = runTool('tar', ['-tf', join(project.dir, 'zstd.tar')]).stdout.split('\n').filter((line) => line !== '');
    expect(members.filter((member) => member.endsWith('.tar.zst'))).toHaveLength(2);
    for (const name of ['zstd', 'gzip9']) {
      const load = podman.podman(['load', '-i', join(project.dir, `${name}.tar`)]);
      expect(load.stdout).toContain(`localhost/redo-ts/${name}:latest`);
      const run = podman.podman(['run', ...podman.runArgs, `localhost/redo-ts/${name}:latest`]);
      expect(run.stdout).toBe('Hello, world, from an image built by redo-ts!\nThis image holds: bin/busybox bin/sh usr/bin/greet\n');
    }
  });

  it('skopeo copies the zstd OCI archive, podman runs it; umoci 0.4.7 and oci-image-tool refuse zstd by media type', () => {
    const layout = join(project.dir, 'copied.oci');
    runTool('skopeo', ['copy', `oci-archive:${join(project.dir, 'zstd.oci.tar')}:latest`, `oci:${layout}:latest`]);
    const inspected = JSON.parse(runTool('skopeo', ['inspect', '--raw', `oci:${layout}:latest`]).stdout) as { layers: Array<{ mediaType: string; digest: string }> };
    expect(inspected.layers.map((layer) => layer.digest)).toEqual(recordOf('zstd').images[0]!.layers.map((layer) => layer.digest));
    expect(inspected.layers.map((layer) => layer.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd']);
    podman.podman(['pull', `oci-archive:${join(project.dir, 'zstd.oci.tar')}:latest`]);
    const run = podman.podman(['run', ...podman.runArgs, 'localhost/redo-ts/zstd:latest']);
    expect(run.stdout).toContain('Hello, world, from an image built by redo-ts!');
    // Both predate the zstd media type (image-spec 1.1) and say so: docs/image.md lists them.
    const umoci = spawnSync('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, join(project.dir, 'bundle')], { encoding: 'utf8' });
    expect(umoci.status).not.toBe(0);
    expect(umoci.stderr).toContain('blob is not correct mediatype: application/vnd.oci.image.layer.v1.tar+zstd');
    const validate = spawnSync('oci-image-tool', ['validate', '--type', 'image', layout], { encoding: 'utf8' });
    expect(validate.status).not.toBe(0);
    expect(validate.stderr).toContain('invalid descriptor MediaType \\"application/vnd.oci.image.layer.v1.tar+zstd\\"');
  });

  it('oci-image-tool validates the gzip:9 OCI archive, and umoci unpacks it', () => {
    const layout = join(project.dir, 'gzip9.oci');
    runTool('skopeo', ['copy', `oci-archive:${join(project.dir, 'gzip9.oci.tar')}:latest`, `oci:${layout}:latest`]);
    const inspected = JSON.parse(runTool('skopeo', ['inspect', '--raw', `oci:${layout}:latest`]).stdout) as { layers: Array<{ digest: string }> };
    expect(inspected.layers.map((layer) => layer.digest)).toEqual(recordOf('gzip9').images[0]!.layers.map((layer) => layer.digest));
    expect(runTool('oci-image-tool', ['validate', '--type', 'image', layout]).stdout).toContain('Validation succeeded');
    const bundle = join(project.dir, 'bundle-gzip9');
    runTool('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle]);
    expect(readFileSync(join(bundle, 'rootfs/usr/bin/greet'), 'utf8')).toContain('Hello');
  });

  it('redo-ts push ships the zstd image as built: the registry serves its manifest and layers', async () => {
    const pushed = await project.redo(['push', 'zstd.tar', `${registry.address}/compressed/zstd:1`], { env: env() });
    expect(pushed.status, pushed.stderr).toBe(0);
    const inspected = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.address}/compressed/zstd:1`]).stdout) as { Digest: string; Layers: string[] };
    const record = recordOf('zstd');
    expect(inspected.Digest).toBe(record.images[0]!.manifest.digest);
    expect(inspected.Layers).toEqual(record.images[0]!.layers.map((layer) => layer.digest));
    podman.podman(['pull', '--tls-verify=false', `${registry.address}/compressed/zstd:1`]);
    const run = podman.podman(['run', ...podman.runArgs, `${registry.address}/compressed/zstd:1`]);
    expect(run.stdout).toContain('Hello, world, from an image built by redo-ts!');
  });
});
