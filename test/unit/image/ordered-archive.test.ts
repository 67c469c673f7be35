// writeOrderedArchive: writeTar's bytes for members in writeTar's order, and a rewrite
// that keeps the previous archive's unchanged leading members only when its states file
// and its headers on disk say they are the same, giving a fresh write's bytes either way.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestBytes } from '../../../lib/image/digest.js';
import { writeOrderedArchive, type OrderedMember } from '../../../lib/image/ordered-archive.js';
import { writeTar } from '../../../lib/image/tar.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-ordered-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A file member whose content is a file of `size` bytes filled with `fill`. */
function fileMember(name: string, size: number, fill: number): OrderedMember {
  const path = join(dir, `content-${name}-${fill}`);
  const bytes = Buffer.alloc(size, fill);
  writeFileSync(path, bytes);
  return { entry: { path: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: size, content: { kind: 'path', path } }, contentDigest: digestBytes(bytes) };
}

function bufferMember(name: string, text: string): OrderedMember {
  const bytes = Buffer.from(text);
  return { entry: { path: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'buffer', bytes } }, contentDigest: digestBytes(bytes) };
}

describe('writeOrderedArchive', () => {
  it("writes writeTar's bytes for members in writeTar's order, and its sha256", async () => {
    const members = [fileMember('a.tar', 70_000, 1), fileMember('b.json', 700, 2), bufferMember('manifest.json', '[{"x":1}]')];
    const ordered = await writeOrderedArchive(members, join(dir, 'ordered.tar'), { mtimeSeconds: 1234, label: 'test', statesDir: join(dir, 'states') });
    const plain = await writeTar(members.map((member) => member.entry), join(dir, 'plain.tar'), { mtimeSeconds: 1234 });
    expect(sha256(join(dir, 'ordered.tar'))).toBe(sha256(join(dir, 'plain.tar')));
    expect(ordered.diffId).toBe(plain.diffId);
    expect(ordered.sizeBytes).toBe(statSync(join(dir, 'plain.tar')).size);
    expect(ordered.reusedBytes).toBe(0);
  });

  it('keeps the unchanged leading members in place and gives the bytes of a fresh write', async () => {
    const statesDir = join(dir, 'states');
    const out = join(dir, 'out.tar');
    const base = fileMember('base.tar', 300_000, 1);
    const first = await writeOrderedArchive([base, fileMember('top.tar', 5_000, 2), bufferMember('manifest.json', 'one')], out, { mtimeSeconds: 0, label: 'test', statesDir });
    const next = [base, fileMember('top.tar', 6_000, 3), bufferMember('manifest.json', 'two')];
    const kept = await writeOrderedArchive(next, out, { mtimeSeconds: 0, label: 'test', statesDir, previous: { path: out, sha256Hex: first.diffId.slice(7), sizeBytes: first.sizeBytes } });
    expect(kept.reusedBytes).toBe(512 + 300_032);
    const fresh = await writeOrderedArchive(next, join(dir, 'fresh.tar'), { mtimeSeconds: 0, label: 'test', statesDir: join(dir, 'other') });
    expect(sha256(out)).toBe(sha256(join(dir, 'fresh.tar')));
    expect(kept.diffId).toBe(fresh.diffId);
    expect(kept.diffId).toBe(`sha256:${sha256(out)}`);
    // The full write saved no hash state; the rewrite saved the one after the kept prefix (read once) and after each member it wrote.
    const saved = JSON.parse(readFileSync(join(statesDir, `${sha256(out)}.json`), 'utf8')) as { members: Array<{ state: string | null }> };
    expect(saved.members.map((member) => member.state !== null)).toEqual([true, true, true]);
    const third = [base, fileMember('top.tar', 7_000, 4), bufferMember('manifest.json', 'three')];
    const again = await writeOrderedArchive(third, out, { mtimeSeconds: 0, label: 'test', statesDir, previous: { path: out, sha256Hex: kept.diffId.slice(7), sizeBytes: kept.sizeBytes } });
    expect(again.reusedBytes).toBe(512 + 300_032);
    expect(again.diffId).toBe(`sha256:${sha256(out)}`);
  });

  it('keeps nothing when the states file is missing, names other content, or the header on disk differs', async () => {
    const statesDir = join(dir, 'states');
    const out = join(dir, 'out.tar');
    const members = [fileMember('base.tar', 20_000, 1), bufferMember('manifest.json', 'one')];
    const first = await writeOrderedArchive(members, out, { mtimeSeconds: 0, label: 'test', statesDir });
    const previous = { path: out, sha256Hex: first.diffId.slice(7), sizeBytes: first.sizeBytes };
    const statesFile = join(statesDir, `${previous.sha256Hex}.json`);
    copyFileSync(out, join(dir, 'saved.tar'));
    copyFileSync(statesFile, join(dir, 'saved.json'));
    // Same name and size, other content: the states file's content digest differs.
    const other = [fileMember('base.tar', 20_000, 9), bufferMember('manifest.json', 'one')];
    const changed = await writeOrderedArchive(other, out, { mtimeSeconds: 0, label: 'test', statesDir, previous });
    expect(changed.reusedBytes).toBe(0);
    expect(sha256(out)).toBe((await writeOrderedArchive(other, join(dir, 'fresh.tar'), { mtimeSeconds: 0, label: 'test', statesDir: join(dir, 'x') })).diffId.slice(7));
    // Same members, another mtime: the header on disk is not the one this write makes.
    copyFileSync(join(dir, 'saved.tar'), out);
    copyFileSync(join(dir, 'saved.json'), statesFile);
    const later = await writeOrderedArchive(members, out, { mtimeSeconds: 99, label: 'test', statesDir, previous });
    expect(later.reusedBytes).toBe(0);
    expect(later.diffId).toBe(`sha256:${sha256(out)}`);
    // No states file for the previous archive: written in full.
    copyFileSync(join(dir, 'saved.tar'), out);
    rmSync(statesDir, { recursive: true });
    const missing = await writeOrderedArchive(members, out, { mtimeSeconds: 0, label: 'test', statesDir, previous });
    expect(missing.reusedBytes).toBe(0);
    expect(`sha256:${sha256(out)}`).toBe(first.diffId);
  });
});
