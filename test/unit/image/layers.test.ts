// Layer composition: merging fragments, splitting a rootfs by assignment, and diffs with whiteouts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeTars } from '../../../lib/image/layer-merge.js';
import { diffEntries, writeDiffLayer } from '../../../lib/image/layer-diff.js';
import { partitionEntries } from '../../../lib/image/layer-partition.js';
import { writeTar } from '../../../lib/image/tar.js';
import type { TarEntry } from '../../../lib/image/tar-header.js';
import { isRedoError } from '../../../lib/errors.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-layers-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(path: string, text: string, fields: Partial<TarEntry> = {}): TarEntry {
  const bytes = Buffer.from(text);
  return { path: Buffer.from(path), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'buffer', bytes }, ...fields };
}
function folder(path: string, fields: Partial<TarEntry> = {}): TarEntry {
  return { path: Buffer.from(path), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0, ...fields };
}
const names = (entries: TarEntry[]) => entries.map((e) => e.path.toString()).sort();
const listing = (path: string) => spawnSync('tar', ['--numeric-owner', '-tvf', path], { encoding: 'utf8' }).stdout.trim().split('\n');

describe('mergeTars', () => {
  it('merges fragments in any order into the same bytes, identical directories and files once', async () => {
    const a = join(dir, 'a.tar');
    const b = join(dir, 'b.tar');
    await writeTar([file('usr/bin/app', 'app'), file('etc/shared', 'same')], a, { mtimeSeconds: 0 });
    await writeTar([file('usr/lib/libc.so', 'libc'), file('etc/shared', 'same')], b, { mtimeSeconds: 0 });
    const ab = await mergeTars([a, b], join(dir, 'ab.tar'), { mtimeSeconds: 0 });
    const ba = await mergeTars([b, a], join(dir, 'ba.tar'), { mtimeSeconds: 0 });
    expect(ab).toEqual(ba);
    expect(listing(join(dir, 'ab.tar')).map((l) => l.split(/\s+/).pop())).toEqual(['etc/', 'etc/shared', 'usr/', 'usr/bin/', 'usr/bin/app', 'usr/lib/', 'usr/lib/libc.so']);
  });

  it('refuses a path delivered twice with different content, naming both fragments', async () => {
    const a = join(dir, 'c1.tar');
    const b = join(dir, 'c2.tar');
    await writeTar([file('etc/os-release', 'one')], a, { mtimeSeconds: 0 });
    await writeTar([file('etc/os-release', 'two')], b, { mtimeSeconds: 0 });
    try {
      await mergeTars([a, b], join(dir, 'c.tar'));
      expect.unreachable();
    } catch (error) {
      expect(isRedoError(error, 'ERR_LAYER_CONFLICT')).toBe(true);
      const text = (error as import('../../../lib/errors.js').RedoError).render();
      expect(text).toContain('"etc/os-release": delivered twice with different content');
      expect(text).toContain(`"${a}"`);
      expect(text).toContain(`"${b}"`);
    }
  });

  it('refuses a directory delivered twice with different modes', async () => {
    const a = join(dir, 'd1.tar');
    const b = join(dir, 'd2.tar');
    await writeTar([folder('tmp', { mode: 0o1777 })], a, { mtimeSeconds: 0 });
    await writeTar([folder('tmp')], b, { mtimeSeconds: 0 });
    await expect(mergeTars([a, b], join(dir, 'd.tar'))).rejects.toThrow(/"tmp": delivered twice with different mode/);
  });
});

describe('partitionEntries', () => {
  it('assigns each path to the first matching layer, carrying real parent metadata, rest to the last', () => {
    const entries = [folder('usr', { mode: 0o750 }), folder('usr/share'), file('usr/share/doc', 'd'), folder('usr/bin'), file('usr/bin/app', 'a'), file('etc/x', 'x'), folder('etc')];
    const [docs, rest] = partitionEntries(entries, [['usr/share/**'], []]);
    expect(names(docs!)).toEqual(['usr', 'usr/share', 'usr/share/doc']);
    expect(docs!.find((e) => e.path.toString() === 'usr')!.mode).toBe(0o750);
    expect(names(rest!)).toEqual(['etc', 'etc/x', 'usr', 'usr/bin', 'usr/bin/app']);
  });

  it('refuses a pattern that matches nothing', () => {
    expect(() => partitionEntries([file('a', 'a')], [['opt/**'], []])).toThrow(/"opt\/\*\*"/);
  });
});

describe('diffEntries', () => {
  const base = [folder('etc'), file('etc/a', 'a'), file('etc/b', 'b'), folder('var'), folder('var/cache'), file('var/cache/1', '1'), file('var/cache/2', '2'), file('keep', 'k')];

  it('keeps changed and new paths with their parents and whites out deletions', () => {
    const next = [folder('etc'), file('etc/a', 'A'), folder('var'), folder('var/cache'), file('var/cache/1', '1'), file('var/cache/2', '2'), file('keep', 'k'), file('new', 'n')];
    expect(names(diffEntries(base, next))).toEqual(['etc', 'etc/.wh.b', 'etc/a', 'new']);
  });

  it('marks a directory opaque when all of its old contents were deleted', () => {
    const next = [folder('etc'), file('etc/a', 'a'), file('etc/b', 'b'), folder('var'), folder('var/cache'), file('var/cache/3', '3'), file('keep', 'k')];
    expect(names(diffEntries(base, next))).toEqual(['var', 'var/cache', 'var/cache/.wh..wh..opq', 'var/cache/3']);
  });

  it('whites out a deleted top-level path and writes a tar umoci-style readers understand', async () => {
    const baseTar = join(dir, 'base.tar');
    const nextTar = join(dir, 'next.tar');
    await writeTar(base, baseTar, { mtimeSeconds: 0 });
    await writeTar(base.filter((e) => e.path.toString() !== 'keep'), nextTar, { mtimeSeconds: 0 });
    const out = join(dir, 'diff.tar');
    await writeDiffLayer(baseTar, nextTar, out, { mtimeSeconds: 0 });
    expect(listing(out).map((l) => l.split(/\s+/).pop())).toEqual(['.wh.keep']);
    expect(readFileSync(out).length).toBe(512 * 3);
  });
});
