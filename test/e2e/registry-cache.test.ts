// The remote build cache between clones of this project, through a loopback docker-registry:
// a fresh clone with an empty source cache gets the identical image without running a
// fragment rule; edits miss and are stored; read-only stores nothing; bad entries fail.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../lib/registry/client.js';
import { cacheMediaTypes } from '../../lib/registry/remote-cache.js';
import { freePort, hasTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';
import { copyProject, type ProjectCopy } from '../helpers/project-copy.js';

const missing = ['docker-registry'].filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`remote cache tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

/** "redo  TARGET  (reason)[ from cache]" lines as "TARGET" or "TARGET from cache", sorted. */
function builtLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('redo  '))
    .map((line) => `${line.split(/\s+/)[1]}${line.endsWith(' from cache') ? ' from cache' : ''}`)
    .sort();
}

async function tagsOf(registry: LoopbackRegistry, repository: string): Promise<string[]> {
  const response = await fetch(`http://${registry.address}/v2/${repository}/tags/list`);
  if (response.status === 404) return [];
  return (((await response.json()) as { tags: string[] | null }).tags ?? []).sort();
}

describeIf('--remote-cache between two clones', () => {
  let registry: LoopbackRegistry;
  let cacheRef: string;
  const clones: ProjectCopy[] = [];
  const sourceCaches: string[] = [];
  const clone = (): { project: ProjectCopy; env: NodeJS.ProcessEnv; sourceCache: string } => {
    const project = copyProject('redo-ts-remote-');
    clones.push(project);
    const sourceCache = join(mkdtempSync(join(tmpdir(), 'redo-ts-src-')), 'cache');
    sourceCaches.push(sourceCache);
    return { project, env: { REDO_TS_CACHE: sourceCache }, sourceCache };
  };
  let first: ReturnType<typeof clone>;

  beforeAll(async () => {
    registry = await startRegistry();
    cacheRef = `${registry.address}/redo-ts/cache`;
    first = clone();
  });
  afterAll(async () => {
    await registry?.stop();
    for (const project of clones) project.remove();
    for (const dir of sourceCaches) rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  it('the first clone builds everything and stores each cacheable target', async () => {
    const result = await first.project.redo(['--remote-cache', cacheRef, 'image.tar'], { env: first.env });
    expect(result.stderr).not.toMatch(/^(redo:|warning:) /m);
    expect(result.status).toBe(0);
    expect(builtLines(result.stderr)).toEqual(['image.image.json', 'image.tar', 'targets/build-environment.fragment.tar', 'targets/busybox.fragment.tar', 'targets/greet.fragment.tar']);
    expect(result.stderr).toContain(`redo-ts: remote cache ${cacheRef}: 0 from cache, 5 stored\n`);
    const tags = await tagsOf(registry, 'redo-ts/cache');
    expect(tags.filter((t) => t.startsWith('rule-'))).toHaveLength(5);
    expect(tags.filter((t) => t.startsWith('deps-'))).toHaveLength(5);
    // Entries are artifacts, not images: their config is ours, not an image config.
    const manifest = await fetch(`http://${registry.address}/v2/redo-ts/cache/manifests/${tags[0]}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(((await manifest.json()) as { config: { mediaType: string } }).config.mediaType).toBe(cacheMediaTypes.entry);
  });

  it('a fresh clone with an empty source cache gets the identical image.tar from the cache, running no rule and fetching no source', async () => {
    const second = clone();
    const result = await second.project.redo(['image.tar'], { env: { ...second.env, REDO_TS_REMOTE_CACHE: cacheRef } });
    expect(result.stderr).not.toMatch(/^(redo:|warning:) /m);
    expect(result.status).toBe(0);
    expect(builtLines(result.stderr)).toEqual(['image.image.json from cache', 'image.tar from cache', 'targets/build-environment.fragment.tar from cache', 'targets/busybox.fragment.tar from cache', 'targets/greet.fragment.tar from cache']);
    expect(result.stderr).not.toContain('fragment:');
    expect(existsSync(second.sourceCache)).toBe(false);
    for (const output of ['image.tar', 'image.image.json', 'targets/busybox.fragment.tar']) expect(second.project.sha256(output)).toBe(first.project.sha256(output));
    const again = await second.project.redo(['--remote-cache', cacheRef, 'image.tar'], { env: second.env });
    expect(builtLines(again.stderr)).toEqual([]);
    // The assembly came from the cache, so the local image store was empty: the OCI view
    // fills it again from the record's own bytes and the layer targets, fetching nothing.
    const layout = await second.project.redo(['image.oci.tar'], { env: second.env });
    expect(layout.status, layout.stderr).toBe(0);
    expect(builtLines(layout.stderr)).toEqual(['image.oci.tar']);
    expect(existsSync(second.sourceCache)).toBe(false);
  });

  it('after an edit, the edited fragment and the images miss, build and are stored; busybox stays a hit', async () => {
    const third = clone();
    writeFileSync(join(third.project.dir, 'app/greet.sh'), readFileSync(join(third.project.dir, 'app/greet.sh'), 'utf8').replace('Hello', 'Howdy'));
    const result = await third.project.redo(['--remote-cache', cacheRef, 'image.tar'], { env: third.env });
    expect(result.status).toBe(0);
    expect(builtLines(result.stderr)).toEqual(['image.image.json', 'image.tar', 'targets/build-environment.fragment.tar from cache', 'targets/busybox.fragment.tar from cache', 'targets/greet.fragment.tar']);
    expect(result.stderr).toContain(`redo-ts: remote cache ${cacheRef}: 2 from cache, 3 stored\n`);
  });

  it('--remote-cache-readonly reads but never stores', async () => {
    const fourth = clone();
    writeFileSync(join(fourth.project.dir, 'app/greet.sh'), readFileSync(join(fourth.project.dir, 'app/greet.sh'), 'utf8').replace('Hello', 'Ahoy'));
    const before = await tagsOf(registry, 'redo-ts/cache');
    const result = await fourth.project.redo(['--remote-cache', cacheRef, '--remote-cache-readonly', 'image.tar'], { env: fourth.env });
    expect(result.status).toBe(0);
    expect(builtLines(result.stderr)).toEqual(['image.image.json', 'image.tar', 'targets/build-environment.fragment.tar from cache', 'targets/busybox.fragment.tar from cache', 'targets/greet.fragment.tar']);
    expect(result.stderr).toContain(`redo-ts: remote cache ${cacheRef}: 2 from cache, 0 stored\n`);
    expect(await tagsOf(registry, 'redo-ts/cache')).toEqual(before);
  });

  it('an unreachable cache is a warning and the build goes on locally', async () => {
    const fifth = clone();
    const dead = `127.0.0.1:${await freePort()}/redo-ts/cache`;
    const result = await fifth.project.redo(['--remote-cache', dead, 'targets/greet.fragment.tar'], { env: fifth.env });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(`warning: redo: "${dead.replace(':latest', '')}": cannot reach the registry at http://${dead.split('/')[0]}\n`);
    expect(result.stderr).toContain('  the build goes on without the remote cache\n');
    expect(builtLines(result.stderr)).toEqual(['targets/build-environment.fragment.tar', 'targets/greet.fragment.tar']);
  });

  it('an entry for another platform under this platform\'s key is refused; nothing is recorded', async () => {
    // Rewrite the busybox fragment's rule entry as if an arm64 machine had stored it there.
    const client = new RegistryClient(registry.address, { env: {} });
    const tags = (await tagsOf(registry, 'redo-ts/cache')).filter((t) => t.startsWith('rule-'));
    let forged = 0;
    for (const tag of tags) {
      const manifest = await client.getManifest('redo-ts/cache', tag, ['application/vnd.oci.image.manifest.v1+json']);
      const parsed = JSON.parse(manifest!.bytes.toString('utf8')) as { config: { digest: string; size: number } };
      const dir = mkdtempSync(join(tmpdir(), 'redo-ts-forge-'));
      await client.fetchBlob('redo-ts/cache', parsed.config.digest, join(dir, 'entry'));
      const entry = JSON.parse(readFileSync(join(dir, 'entry'), 'utf8')) as { target: string; platform: string };
      rmSync(dir, { recursive: true, force: true });
      if (entry.target !== 'targets/busybox.fragment.tar') continue;
      const other = Buffer.from(JSON.stringify({ ...entry, platform: 'linux/arm64' }));
      const otherDigest = `sha256:${createHash('sha256').update(other).digest('hex')}`;
      await client.pushBlob('redo-ts/cache', otherDigest, other);
      const forgedManifest = { ...parsed, config: { ...parsed.config, digest: otherDigest, size: other.length } };
      await client.putManifest('redo-ts/cache', tag, 'application/vnd.oci.image.manifest.v1+json', Buffer.from(JSON.stringify(forgedManifest)));
      forged += 1;
    }
    client.close();
    expect(forged).toBe(1);
    const sixth = clone();
    const result = await sixth.project.redo(['--remote-cache', cacheRef, 'targets/busybox.fragment.tar'], { env: sixth.env });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`redo: "${registry.address}/redo-ts/cache:rule-[0-9a-f]{64}": cache entry for another platform\\n  wanted: linux/(amd64|arm64|[a-z0-9]+)\\n  found:  linux/arm64\\n  target: targets/busybox.fragment.tar\\n  nothing was recorded or used\\n`));
    expect(existsSync(join(sixth.project.dir, 'targets/busybox.fragment.tar'))).toBe(false);
    expect(readdirSync(join(sixth.project.dir, 'targets')).filter((name) => name.includes('.redo.'))).toEqual([]);
  });

  it('an output whose bytes were altered in the registry is refused: the target fails and is not recorded', async () => {
    const digest = first.project.sha256('targets/greet.fragment.tar');
    const stored = join(registry.storageDir, 'docker/registry/v2/blobs/sha256', digest.slice(0, 2), digest, 'data');
    const original = readFileSync(stored);
    const altered = Buffer.from(original);
    altered[100] = altered[100]! ^ 0x20;
    writeFileSync(stored, altered);
    try {
      const seventh = clone();
      const result = await seventh.project.redo(['--remote-cache', cacheRef, 'targets/greet.fragment.tar'], { env: seventh.env });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`redo: "${registry.address}/redo-ts/cache@sha256:${digest}": the blob the registry sent does not match its digest\n  wanted: sha256:${digest} (${original.length} bytes)\n`);
      expect(existsSync(join(seventh.project.dir, 'targets/greet.fragment.tar'))).toBe(false);
      const targets = await seventh.project.redo(['targets']);
      expect(targets.stdout).not.toContain('greet.fragment.tar');
    } finally {
      writeFileSync(stored, original);
    }
  });
});
