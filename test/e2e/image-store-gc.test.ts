// `redo-ts store gc` (issue 20): after an edit of the app and a removed second image, the
// image store holds blobs no record reaches; gc removes them (the old app layer, its
// facts, the old config and manifests), keeps everything the current records reach and
// everything used within the grace period, refuses to run beside another collection,
// and a build running at the same time still succeeds with the same bytes. The states
// file of an archive deleted by hand (what lets an archive be rewritten in place) goes
// too; the one of the current image.tar stays.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyProject, type ProjectCopy } from '../helpers/project-copy.js';

interface Record {
  blobs: Array<{ digest: string }>;
  layoutIndex: { digest: string };
  images: Array<{ layers: Array<{ digest: string; diffId: string }> }>;
}

describe('redo-ts store gc', () => {
  let project: ProjectCopy;
  let cache: string;
  let first: Record;
  let otherTarHex: string;
  const env = (): NodeJS.ProcessEnv => ({ REDO_TS_CACHE: cache });
  const store = (): string => join(project.dir, '.redo/store');
  const hexOf = (digest: string): string => digest.slice('sha256:'.length);
  const record = (name: string): Record => JSON.parse(readFileSync(join(project.dir, `${name}.image.json`), 'utf8')) as Record;
  const reached = (r: Record): string[] => [...new Set([...r.blobs.map((b) => b.digest), r.layoutIndex.digest, ...r.images.flatMap((i) => i.layers.flatMap((l) => [l.digest, l.diffId]))])];

  beforeAll(async () => {
    cache = mkdtempSync(join(tmpdir(), 'redo-ts-cache-'));
    project = copyProject('redo-ts-store-gc-');
    // A second image sharing the busybox layer, compressed, then removed: its gzip blobs go, busybox stays.
    writeFileSync(join(project.dir, 'other.yaml'), readFileSync(join(project.dir, 'image.yaml'), 'utf8').replace('tags: [localhost/redo-ts/hello:latest]', 'tags: [localhost/redo-ts/other:1]\ncompression: gzip'));
    const build = await project.redo(['image.tar', 'other.tar'], { env: env() });
    expect(build.status, build.stderr).toBe(0);
    first = record('image');
    rmSync(join(project.dir, 'other.yaml'));
    rmSync(join(project.dir, 'other.image.json'));
    otherTarHex = project.sha256('other.tar');
    rmSync(join(project.dir, 'other.tar'));
    const source = readFileSync(join(project.dir, 'app/greet.sh'), 'utf8');
    writeFileSync(join(project.dir, 'app/greet.sh'), source.replace('Hello, $name,', 'Good morning, $name,'));
    const edited = await project.redo(['image.tar'], { env: env() });
    expect(edited.status, edited.stderr).toBe(0);
  }, 600_000);
  afterAll(() => {
    project?.remove();
    if (cache !== undefined) rmSync(cache, { recursive: true, force: true });
  });

  it('removes nothing within the grace period: everything was written or used just now', async () => {
    const before = readdirSync(join(store(), 'blobs/sha256')).sort();
    const result = await project.redo(['store', 'gc'], { env: env() });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^removed 0 blobs \(0 B\), 0 fact files, 0 path records, 0 temporary files, 0 archive states files\n/);
    expect(readdirSync(join(store(), 'blobs/sha256')).sort()).toEqual(before);
  });

  it('with --grace 0, removes what no record reaches and keeps what the current record reaches', async () => {
    const current = record('image');
    const oldApp = first.images[0]!.layers[1]!;
    expect(current.images[0]!.layers[1]!.diffId).not.toBe(oldApp.diffId);
    expect(existsSync(join(store(), 'blobs/sha256', hexOf(oldApp.diffId)))).toBe(true);
    expect(existsSync(join(store(), 'facts/sha256', `${hexOf(oldApp.diffId)}.layer.json`))).toBe(true);

    const dry = await project.redo(['store', 'gc', '--grace', '0', '--dry-run'], { env: env() });
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would remove [1-9]\d* blobs/);
    expect(existsSync(join(store(), 'blobs/sha256', hexOf(oldApp.diffId)))).toBe(true);

    const statesOf = (hex: string): string => join(store(), 'archives', `${hex}.json`);
    expect(existsSync(statesOf(otherTarHex))).toBe(true);
    expect(existsSync(statesOf(project.sha256('image.tar')))).toBe(true);

    const result = await project.redo(['store', 'gc', '--grace', '0'], { env: env() });
    expect(result.status, result.stderr).toBe(0);
    // other.tar is gone, image.tar is the current target's output.
    expect(result.stdout).toMatch(/, 1 archive states file\n/);
    expect(existsSync(statesOf(otherTarHex))).toBe(false);
    expect(existsSync(statesOf(project.sha256('image.tar')))).toBe(true);
    const removed = /^removed (\d+) blobs? \(([\d.]+ \w+)\), (\d+) fact files?, (\d+) path records?/.exec(result.stdout);
    expect(removed, result.stdout).not.toBeNull();
    // The old app layer, the old config and manifest and index.json, and the other image's
    // config, manifest, index.json and gzip blobs.
    expect(Number(removed![1])).toBeGreaterThanOrEqual(6);
    expect(Number(removed![3])).toBeGreaterThanOrEqual(1);
    expect(result.stdout).toContain('reached from 1 image record or used in the last 0 s');

    const left = new Set(readdirSync(join(store(), 'blobs/sha256')));
    expect(left.has(hexOf(oldApp.diffId))).toBe(false);
    expect(existsSync(join(store(), 'facts/sha256', `${hexOf(oldApp.diffId)}.layer.json`))).toBe(false);
    for (const digest of reached(current)) expect(left.has(hexOf(digest)), digest).toBe(true);
    expect(left.size).toBe(reached(current).length);
    // The busybox layer's facts are kept with it.
    expect(existsSync(join(store(), 'facts/sha256', `${hexOf(current.images[0]!.layers[0]!.diffId)}.layer.json`))).toBe(true);
  });

  it('after a collection, the views are built from the store as before', async () => {
    const tarBefore = project.sha256('image.tar');
    const built = await project.redo(['-f', 'image.tar', 'image.oci.tar'], { env: env() });
    expect(built.status, built.stderr).toBe(0);
    expect(project.sha256('image.tar')).toBe(tarBefore);
  });

  it('refuses to run beside another collection, and takes over the lock of one that is gone', async () => {
    writeFileSync(join(store(), 'gc.lock'), `${process.pid}\n`);
    const refused = await project.redo(['store', 'gc'], { env: env() });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('another store collection is running');
    expect(refused.stderr).toContain(`process: ${process.pid}`);
    // A pid no process has (above the kernel's pid_max).
    writeFileSync(join(store(), 'gc.lock'), '99999999\n');
    const taken = await project.redo(['store', 'gc'], { env: env() });
    expect(taken.status, taken.stderr).toBe(0);
    expect(existsSync(join(store(), 'gc.lock'))).toBe(false);
  });

  it('a build running beside a collection succeeds and gives the same bytes', async () => {
    const source = readFileSync(join(project.dir, 'app/greet.sh'), 'utf8');
    writeFileSync(join(project.dir, 'app/greet.sh'), source.replace('Good morning, $name,', 'Good evening, $name,'));
    const [build, gc] = await Promise.all([project.redo(['image.tar', 'image.oci.tar'], { env: env() }), project.redo(['store', 'gc'], { env: env() })]);
    expect(build.status, build.stderr).toBe(0);
    expect(gc.status, gc.stderr).toBe(0);
    const tar = project.sha256('image.tar');
    const again = await project.redo(['-f', 'image.image.json', 'image.tar'], { env: env() });
    expect(again.status, again.stderr).toBe(0);
    expect(project.sha256('image.tar')).toBe(tar);
  });
});
