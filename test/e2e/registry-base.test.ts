// Pinned base images: an image pushed to a loopback registry becomes the base of another,
// pinned by digest with `redo-ts pin`, fetched once into the cache and run with podman.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProjectCopy } from '../helpers/project-copy.js';
import { createPrivatePodman, freePort, hasTool, runTool, startRegistry, type LoopbackRegistry, type PrivatePodman } from '../helpers/clients.js';
import { blobActions, layoutDigest, onBaseFixture, registryFixture } from '../helpers/registry-fixtures.js';
import { contentPathOf, integrityOfDigest, poisonCacheEntry } from '../helpers/cache-poisoner.js';
import { tracedRedo } from '../helpers/read-trace.js';

const missing = ['docker-registry', 'skopeo', 'podman', 'runc'].filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`registry base image tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

describeIf('base: REGISTRY/REPO@sha256:…', () => {
  let registry: LoopbackRegistry;
  let base: ProjectCopy;
  let upper: ProjectCopy;
  let cache: string;
  let podman: PrivatePodman;
  let baseDigest: string;
  const copies: ProjectCopy[] = [];
  beforeAll(async () => {
    registry = await startRegistry();
    base = registryFixture();
    upper = onBaseFixture(registry.address);
    cache = mkdtempSync(join(tmpdir(), 'redo-ts-base-cache-'));
    podman = createPrivatePodman();
    const pushed = await base.redo(['push', 'image.tar', `${registry.address}/redo-ts/base:1`]);
    expect(pushed.status).toBe(0);
    baseDigest = layoutDigest(base, 'image.oci.tar');
  });
  afterAll(async () => {
    await registry?.stop();
    for (const project of [base, upper, ...copies]) project?.remove();
    if (cache !== undefined) rmSync(cache, { recursive: true, force: true });
    podman?.remove();
  });

  it('a base named by tag only is refused, pointing at `redo-ts pin`', async () => {
    const result = await upper.redo(['image.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      [
        'redo: "image.yaml": invalid image description',
        `  image.yaml:3: base: "${registry.address}/redo-ts/base:1" is not pinned by digest (HOST/REPOSITORY[:TAG]@sha256:…); run \`redo-ts pin image.yaml\` to add the digest the tag points at`,
      ].join('\n'),
    );
    expect(existsSync(join(upper.dir, 'image.tar'))).toBe(false);
  });

  it('`redo-ts pin image.yaml` writes the digest the tag points at into the base line only', async () => {
    const before = readFileSync(join(upper.dir, 'image.yaml'), 'utf8');
    const result = await upper.redo(['pin', 'image.yaml']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`image.yaml:3: base: ${registry.address}/redo-ts/base:1 → ${registry.address}/redo-ts/base:1@${baseDigest}\n`);
    expect(readFileSync(join(upper.dir, 'image.yaml'), 'utf8')).toBe(before.replace('/redo-ts/base:1', `/redo-ts/base:1@${baseDigest}`));
    const again = await upper.redo(['pin', 'image.yaml']);
    expect(again.stdout).toBe(`image.yaml:3: base: unchanged ${registry.address}/redo-ts/base:1@${baseDigest}\n`);
  });

  it('builds on the base: its layers are the bottom ones, byte for byte, and podman runs the result', async () => {
    const result = await upper.redo(['image.tar', 'image.oci.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(result.status).toBe(0);
    const ours = JSON.parse(runTool('skopeo', ['inspect', `oci-archive:${join(upper.dir, 'image.oci.tar')}:latest`]).stdout) as { Layers: string[] };
    const theirs = JSON.parse(runTool('skopeo', ['inspect', `oci-archive:${join(base.dir, 'image.oci.tar')}:latest`]).stdout) as { Layers: string[] };
    expect(ours.Layers.slice(0, 2)).toEqual(theirs.Layers);
    expect(ours.Layers.length).toBe(3);
    podman.podman(['load', '-i', join(upper.dir, 'image.tar')]);
    const run = podman.podman(['run', ...podman.runArgs, 'localhost/redo-ts/on-base:latest']);
    expect(run.stdout).toBe('hello from the registry fixture\nand an extra line from the upper image\n');
  });

  it('pushing it mounts the base layers from the base repository instead of uploading them', async () => {
    const result = await upper.redo(['push', 'image.tar', `${registry.address}/redo-ts/on-base:1`]);
    expect(result.status).toBe(0);
    expect(blobActions(result.stdout)).toEqual(['uploaded config', 'mounted layer 1', 'mounted layer 2', 'uploaded layer 3']);
  });

  it('a second clone builds the identical image from the cache, with no registry at that address', async () => {
    const clone = onBaseFixture(registry.address);
    copies.push(clone);
    // The same pinned digest on a port where nothing listens: only the cache can answer.
    const deadAddress = `127.0.0.1:${await freePort()}`;
    writeFileSync(join(clone.dir, 'image.yaml'), readFileSync(join(upper.dir, 'image.yaml'), 'utf8').replace(registry.address, deadAddress));
    const result = await clone.redo(['image.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(result.stderr).not.toContain('cannot reach');
    expect(result.status).toBe(0);
    expect(clone.sha256('image.tar')).toBe(upper.sha256('image.tar'));
  });

  it('a cached base layer is read once per use: hashed in the pass that copies it into the image store, not in a pass of its own', async () => {
    if (!hasTool('strace')) return console.warn('read-count test skipped: strace not installed (.ci/run installs it)');
    const layers = (JSON.parse(runTool('skopeo', ['inspect', '--raw', `oci-archive:${join(base.dir, 'image.oci.tar')}:latest`]).stdout) as { layers: { digest: string; size: number }[] }).layers;
    const clone = onBaseFixture(registry.address);
    copies.push(clone);
    writeFileSync(join(clone.dir, 'image.yaml'), readFileSync(join(upper.dir, 'image.yaml')));
    // A fresh project (empty image store), a warm cache: every base layer comes from the cache.
    const traced = tracedRedo(clone.dir, ['image.image.json'], { REDO_TS_CACHE: cache });
    expect(traced.status, traced.stderr).toBe(0);
    expect(Math.max(...layers.map((layer) => layer.size))).toBeGreaterThan(256 * 1024);
    for (const layer of layers) {
      const read = traced.bytesByPath.get(contentPathOf(cache, integrityOfDigest(layer.digest))) ?? 0;
      // One full read (the verified copy), not a hash pass and then a copy.
      expect(read, `layer ${layer.digest} (${layer.size} bytes) read ${read} bytes`).toBe(layer.size);
    }
    expect(clone.sha256('image.image.json')).toBe(upper.sha256('image.image.json'));
  });

  it('a cached base layer whose bytes were changed is dropped and fetched again: the image holds the pinned layer, and verify agrees', async () => {
    const layers = JSON.parse(runTool('skopeo', ['inspect', `oci-archive:${join(base.dir, 'image.oci.tar')}:latest`]).stdout).Layers as string[];
    const entry = poisonCacheEntry(cache, integrityOfDigest(layers[1]!));
    const clone = onBaseFixture(registry.address);
    copies.push(clone);
    writeFileSync(join(clone.dir, 'image.yaml'), readFileSync(join(upper.dir, 'image.yaml')));
    const result = await clone.redo(['image.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(result.status).toBe(0);
    expect(clone.sha256('image.tar')).toBe(upper.sha256('image.tar'));
    expect(`sha256:${createHash('sha256').update(readFileSync(entry)).digest('hex')}`).toBe(layers[1]);
    // verify rebuilds through the same cache: a changed entry must not make it agree with itself.
    poisonCacheEntry(cache, integrityOfDigest(layers[0]!));
    const verified = await clone.redo(['verify', 'image.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(verified.stdout).toMatch(/^identical: image\.tar sha256:[0-9a-f]{64}\n$/);
    expect(verified.status).toBe(0);
  });

  it('a base blob whose bytes were altered in the registry is refused and nothing is built', async () => {
    const clone = onBaseFixture(registry.address);
    copies.push(clone);
    writeFileSync(join(clone.dir, 'image.yaml'), readFileSync(join(upper.dir, 'image.yaml')));
    const layer = JSON.parse(runTool('skopeo', ['inspect', `oci-archive:${join(base.dir, 'image.oci.tar')}:latest`]).stdout).Layers[1] as string;
    const stored = join(registry.storageDir, 'docker/registry/v2/blobs/sha256', layer.slice(7, 9), layer.slice(7), 'data');
    const original = readFileSync(stored);
    const altered = Buffer.from(original);
    altered[600] = altered[600]! ^ 1;
    writeFileSync(stored, altered);
    const freshCache = mkdtempSync(join(tmpdir(), 'redo-ts-base-cache-'));
    try {
      const result = await clone.redo(['image.tar'], { env: { REDO_TS_CACHE: freshCache } });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`redo: "${registry.address}/redo-ts/base@${layer}": the blob the registry sent does not match its digest\n  wanted: ${layer} (${original.length} bytes)\n`);
      expect(result.stderr).toContain('  nothing was recorded or used\n');
      expect(existsSync(join(clone.dir, 'image.tar'))).toBe(false);
      expect(existsSync(join(clone.dir, 'image.oci.tar'))).toBe(false);
    } finally {
      writeFileSync(stored, original);
      rmSync(freshCache, { recursive: true, force: true });
    }
  });

  it('`redo-ts pin --update` resolves the tag again after the base moved, printing old → new', async () => {
    writeFileSync(join(base.dir, 'app/etc/greeting'), 'a newer base\n');
    const pushed = await base.redo(['push', 'image.tar', `${registry.address}/redo-ts/base:1`]);
    expect(pushed.status).toBe(0);
    const newDigest = layoutDigest(base, 'image.oci.tar');
    expect(newDigest).not.toBe(baseDigest);
    const result = await upper.redo(['pin', '--update', 'image.yaml']);
    expect(result.stdout).toBe(`image.yaml:3: base: ${registry.address}/redo-ts/base:1@${baseDigest} → ${registry.address}/redo-ts/base:1@${newDigest}\n`);
    expect(readFileSync(join(upper.dir, 'image.yaml'), 'utf8')).toContain(`base: ${registry.address}/redo-ts/base:1@${newDigest}\n`);
  });
});
