// A base image whose layers are zstd-compressed: one of ours built with `compression: zstd`,
// pushed to a loopback registry and pinned as the base of another, which keeps the zstd
// blobs byte for byte; skopeo, umoci (once the zstd command decompressed the layers) and
// podman read the result.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProjectCopy } from '../helpers/project-copy.js';
import { createPrivatePodman, hasTool, runTool, startRegistry, type LoopbackRegistry, type PrivatePodman } from '../helpers/clients.js';
import { blobActions, onBaseFixture, registryFixture } from '../helpers/registry-fixtures.js';

const missing = ['docker-registry', 'skopeo', 'umoci', 'zstd', 'podman', 'runc'].filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`zstd base image tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

const zstdLayer = 'application/vnd.oci.image.layer.v1.tar+zstd';

interface RawManifest {
  layers: { mediaType: string; digest: string; size: number }[];
}

function rawManifest(archive: string): RawManifest {
  return JSON.parse(runTool('skopeo', ['inspect', '--raw', `oci-archive:${archive}:latest`]).stdout) as RawManifest;
}

/**
 * Unpacks the OCI archive at `archive` into `layout` with every zstd layer of its image
 * decompressed by the zstd command (new blob, media type, manifest and index.json), so
 * umoci can read it. Returns `layout`.
 */
function plainLayout(archive: string, layout: string): string {
  mkdirSync(layout);
  runTool('tar', ['-xf', archive, '-C', layout]);
  const blob = (digest: string): string => join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const put = (bytes: Buffer): { digest: string; size: number } => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    writeFileSync(blob(digest), bytes);
    return { digest, size: bytes.length };
  };
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number; mediaType: string }[] };
  const top = index.manifests[0]!;
  const manifest = JSON.parse(readFileSync(blob(top.digest), 'utf8')) as RawManifest;
  for (const layer of manifest.layers) {
    if (layer.mediaType !== zstdLayer) continue;
    const plain = spawnSync('zstd', ['-d', '-c', blob(layer.digest)], { maxBuffer: 1 << 30 });
    expect(plain.status, String(plain.stderr)).toBe(0);
    Object.assign(layer, { mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(plain.stdout) });
  }
  Object.assign(top, put(Buffer.from(JSON.stringify(manifest))));
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
  return layout;
}

describeIf('base: an image whose layers are zstd-compressed', () => {
  let registry: LoopbackRegistry;
  let base: ProjectCopy;
  let upper: ProjectCopy;
  let cache: string;
  let work: string;
  let podman: PrivatePodman;
  beforeAll(async () => {
    registry = await startRegistry();
    base = registryFixture();
    appendFileSync(join(base.dir, 'image.yaml'), 'compression: zstd\n');
    upper = onBaseFixture(registry.address);
    const file = join(upper.dir, 'image.yaml');
    // The same fixture, on the zstd base's repository.
    runTool('sed', ['-i', 's#/redo-ts/base:1#/redo-ts/base-zstd:1#', file]);
    cache = mkdtempSync(join(tmpdir(), 'redo-ts-base-zstd-cache-'));
    work = mkdtempSync(join(tmpdir(), 'redo-ts-base-zstd-'));
    podman = createPrivatePodman();
    const pushed = await base.redo(['push', 'image.tar', `${registry.address}/redo-ts/base-zstd:1`]);
    expect(pushed.status, pushed.stderr).toBe(0);
    // The archive is a view of the same assembly the push read.
    const archived = await base.redo(['image.oci.tar']);
    expect(archived.status, archived.stderr).toBe(0);
    const pinned = await upper.redo(['pin', 'image.yaml']);
    expect(pinned.status, pinned.stderr).toBe(0);
  });
  afterAll(async () => {
    await registry?.stop();
    for (const project of [base, upper]) project?.remove();
    for (const dir of [cache, work]) if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    podman?.remove();
  });

  it('builds on it: the base layers stay zstd blobs, byte for byte, and skopeo, umoci and podman read the image', async () => {
    const result = await upper.redo(['image.tar', 'image.oci.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(result.status, result.stderr).toBe(0);
    const theirs = rawManifest(join(base.dir, 'image.oci.tar')).layers;
    expect(theirs.map((layer) => layer.mediaType)).toEqual([zstdLayer, zstdLayer]);
    const ours = rawManifest(join(upper.dir, 'image.oci.tar')).layers;
    expect(ours.slice(0, 2)).toEqual(theirs);
    expect(ours.length).toBe(3);

    // umoci 0.4.7 refuses zstd blobs: the zstd command decompresses each into a copy
    // of the layout, and umoci unpacks that, checking every layer against the config's
    // diff_ids.
    const layout = plainLayout(join(upper.dir, 'image.oci.tar'), join(work, 'layout'));
    const bundle = join(work, 'bundle');
    const unpacked = runTool('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle]);
    expect(unpacked.status, unpacked.stderr).toBe(0);
    expect(readFileSync(join(bundle, 'rootfs', 'etc', 'greeting'), 'utf8')).toBe('hello from the registry fixture\n');
    expect(readFileSync(join(bundle, 'rootfs', 'etc', 'extra'), 'utf8')).toBe('and an extra line from the upper image\n');

    podman.podman(['load', '-i', join(upper.dir, 'image.tar')]);
    const run = podman.podman(['run', ...podman.runArgs, 'localhost/redo-ts/on-base:latest']);
    expect(run.stdout).toBe('hello from the registry fixture\nand an extra line from the upper image\n');
  });

  it('pushing it mounts the zstd layers from the base repository, and skopeo copies it back', async () => {
    const result = await upper.redo(['push', 'image.tar', `${registry.address}/redo-ts/on-zstd:1`], { env: { REDO_TS_CACHE: cache } });
    expect(result.status, result.stderr).toBe(0);
    expect(blobActions(result.stdout)).toEqual(['uploaded config', 'mounted layer 1', 'mounted layer 2', 'uploaded layer 3']);
    const copied = runTool('skopeo', ['copy', '--src-tls-verify=false', `docker://${registry.address}/redo-ts/on-zstd:1`, `oci:${join(work, 'copied')}:latest`]);
    expect(copied.status, copied.stderr).toBe(0);
  });
});
