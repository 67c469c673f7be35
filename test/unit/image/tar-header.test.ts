// Byte-exact headers as writeTar's tar-stream pack writes them: golden bytes, GNU tar reading them back, the reading decoder, member paths.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { packedHeaderBlocks } from '../../../lib/image/tar.js';
import { decodeHeader, decodePaxRecords, toMemberPath, type TarEntry } from '../../../lib/image/tar-header.js';
import { isRedoError } from '../../../lib/errors.js';

const goldenPath = fileURLToPath(new URL('../../golden/tar-headers.json', import.meta.url));

function entry(path: string | Buffer, fields: Partial<TarEntry> = {}): TarEntry {
  return { path: typeof path === 'string' ? Buffer.from(path) : path, type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 0, ...fields };
}

const cases: Array<[string, TarEntry, number]> = [
  ['small file', entry('etc/hostname', { sizeBytes: 8 }), 0],
  ['directory gets a trailing slash', entry('usr/share', { type: 'directory', mode: 0o755 }), 0],
  ['symlink outside the rootfs is kept', entry('bin/escape', { type: 'symlink', mode: 0o777, linkTarget: Buffer.from('../../../etc/shadow') }), 0],
  ['hardlink', entry('bin/b', { type: 'hardlink', linkTarget: Buffer.from('bin/a') }), 0],
  ['mtime from SOURCE_DATE_EPOCH', entry('etc/motd', { sizeBytes: 1, uid: 1000, gid: 1000, mode: 0o4755 }), 1700000000],
  ['mode 0 stays 0 (no tar-stream default)', entry('etc/secret', { mode: 0 }), 0],
  ['name of 150 bytes uses the ustar prefix', entry('d'.repeat(60) + '/' + 'f'.repeat(89)), 0],
  ['name of 300 bytes needs a pax path', entry('d'.repeat(150) + '/' + 'f'.repeat(149)), 0],
  ['non-ASCII UTF-8 name goes to a pax path', entry('etc/café'), 0],
  ['link target over 100 bytes needs pax linkpath', entry('l', { type: 'symlink', mode: 0o777, linkTarget: Buffer.from('t'.repeat(120)) }), 0],
  ['size over 8 GiB needs pax size', entry('big', { sizeBytes: 8 * 1024 ** 3 + 1 }), 0],
  ['uid over 262143 needs pax uid', entry('owned', { uid: 3000000, gid: 3000001 }), 0],
  ['mtime after 2038 needs pax mtime', entry('late', { sizeBytes: 1 }), 4102444800],
  ['fifo', entry('run/pipe', { type: 'fifo' }), 0],
  ['character device', entry('dev/null', { type: 'character-device', mode: 0o666, deviceMajor: 1, deviceMinor: 3 }), 0],
];

// UPDATE_GOLDEN=1 rewrites the golden file from the current writer (review the diff!).
if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(goldenPath)) {
  const fresh: Record<string, string> = {};
  for (const [name, e, mtime] of cases) fresh[name] = createHash('sha256').update(await packedHeaderBlocks(e, mtime)).digest('hex');
  writeFileSync(goldenPath, JSON.stringify(fresh, null, 2) + '\n');
}
const golden = JSON.parse(readFileSync(goldenPath, 'utf8')) as Record<string, string>;

function gnuList(headers: Buffer, e: TarEntry): { status: number | null; stdout: string; stderr: string } {
  const content = Buffer.alloc(e.type === 'file' ? Math.ceil(e.sizeBytes / 512) * 512 : 0);
  return spawnSync('tar', ['--numeric-owner', '--full-time', '-tvf', '-'], { input: Buffer.concat([headers, content, Buffer.alloc(1024)]), encoding: 'utf8' });
}

describe('the headers writeTar writes (tar-stream pack)', () => {
  it.each(cases)('%s: bytes equal the golden digest', async (name, e, mtime) => {
    const bytes = await packedHeaderBlocks(e, mtime);
    expect(bytes.length % 512).toBe(0);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(golden[name]);
  });

  it('a small file header is byte-for-byte the documented ustar layout', async () => {
    const block = await packedHeaderBlocks(entry('etc/hostname', { sizeBytes: 8 }), 0);
    expect(block.length).toBe(512);
    expect(block.toString('latin1', 0, 100)).toBe('etc/hostname'.padEnd(100, '\0'));
    // tar-stream writes numbers as 6 (or 11) octal digits and a space, then NUL padding.
    expect(block.toString('latin1', 100, 108)).toBe('000644 \0');
    expect(block.toString('latin1', 108, 124)).toBe('000000 \u0000000000 \0');
    expect(block.toString('latin1', 124, 136)).toBe('00000000010 ');
    expect(block.toString('latin1', 136, 148)).toBe('00000000000 ');
    expect(block.toString('latin1', 148, 156)).toMatch(/^[0-7]{6} \0$/);
    expect(block.toString('latin1', 156, 157)).toBe('0');
    expect(block.subarray(157, 257).every((b) => b === 0)).toBe(true);
    expect(block.toString('latin1', 257, 265)).toBe('ustar\u000000');
    // Empty uname and gname: no host account names.
    expect(block.subarray(265, 329).every((b) => b === 0)).toBe(true);
    expect(block.toString('latin1', 329, 345)).toBe('000000 \u0000000000 \0');
    expect(block.subarray(345, 512).every((b) => b === 0)).toBe(true);
    // The reading decoder agrees, checksum included.
    const decoded = decodeHeader(block, 'golden');
    expect([decoded.path.toString(), decoded.mode, decoded.sizeBytes, decoded.mtimeSeconds, decoded.uname]).toEqual(['etc/hostname', 0o644, 8, 0, '']);
  });

  it('a pax member is deterministic: named PaxHeader, with the member own mode, ids and mtime, and only the needed records', async () => {
    const bytes = await packedHeaderBlocks(entry('d'.repeat(150) + '/' + 'f'.repeat(149), { uid: 7, gid: 8, mode: 0o640 }), 1700000000);
    const pax = decodeHeader(bytes.subarray(0, 512), 'pax');
    expect([pax.typeflag, pax.path.toString(), pax.mode, pax.uid, pax.gid, pax.mtimeSeconds, pax.uname, pax.gname]).toEqual(['x', 'PaxHeader', 0o640, 7, 8, 1700000000, '', '']);
    const records = decodePaxRecords(bytes.subarray(512, 512 + pax.sizeBytes), 'pax');
    expect(Object.keys(records)).toEqual(['path']);
    expect(records['path']!.toString()).toBe('d'.repeat(150) + '/' + 'f'.repeat(149));
    const member = decodeHeader(bytes.subarray(bytes.length - 512), 'member');
    expect([member.typeflag, member.mode, member.uid, member.gid, member.mtimeSeconds]).toEqual(['0', 0o640, 7, 8, 1700000000]);
  });

  it('ids, sizes and times tar-stream cannot hold go to pax records, in key order', async () => {
    const bytes = await packedHeaderBlocks(entry('big', { sizeBytes: 8 * 1024 ** 3 + 1, uid: 300000, gid: 300001 }), 4102444800);
    const pax = decodeHeader(bytes.subarray(0, 512), 'pax');
    const records = decodePaxRecords(bytes.subarray(512, 512 + pax.sizeBytes), 'pax');
    expect(Object.fromEntries(Object.entries(records).map(([k, v]) => [k, v.toString()]))).toEqual({
      path: 'big',
      gid: '300001',
      mtime: '4102444800',
      size: '8589934593',
      uid: '300000',
    });
  });

  it.each(cases.filter(([name]) => !name.startsWith('size over')))('%s: GNU tar lists it with the declared fields', async (_name, e, mtime) => {
    const result = gnuList(await packedHeaderBlocks(e, mtime), e);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(` ${e.uid}/${e.gid} `);
    const name = e.path.toString() + (e.type === 'directory' ? '/' : '');
    expect(result.stdout).toContain(` ${name}`);
    const when = new Date(mtime * 1000).toISOString().slice(0, 19).replace('T', ' ');
    expect(result.stdout).toContain(` ${when} `);
  });

  it('size over 8 GiB is read back by GNU tar', async () => {
    const headers = await packedHeaderBlocks(entry('big', { sizeBytes: 8 * 1024 ** 3 + 1 }), 0);
    const result = spawnSync('tar', ['-tvf', '-'], { input: Buffer.concat([headers, Buffer.alloc(1024)]), encoding: 'latin1' });
    expect(result.stdout).toContain('8589934593');
  });

  it.each([
    ['a name', entry(Buffer.from([0x65, 0x74, 0x63, 0x2f, 0x6e, 0xe9, 0xff])), /"etc\/n\\xe9\\xff": its name is not valid UTF-8/],
    ['a link target', entry('bin/l', { type: 'symlink', mode: 0o777, linkTarget: Buffer.from([0x61, 0xc3]) }), /"bin\/l": its link target is not valid UTF-8/],
  ])('refuses %s that is not UTF-8, showing the bytes escaped', async (_what, e, message) => {
    const failure = await packedHeaderBlocks(e, 0).then(() => undefined, (error: unknown) => error);
    expect(isRedoError(failure, 'ERR_LAYER_UNREPRESENTABLE')).toBe(true);
    expect((failure as Error).message).toMatch(message);
    expect((failure as { hint?: string }).hint).toMatch(/UTF-8/);
  });

  it('refuses a device number tar-stream cannot hold', async () => {
    const e = entry('dev/big', { type: 'character-device', deviceMajor: 1, deviceMinor: 1 << 20 });
    await expect(packedHeaderBlocks(e, 0)).rejects.toSatisfy((error) => isRedoError(error, 'ERR_LAYER_UNREPRESENTABLE'));
  });
});

describe('toMemberPath', () => {
  it.each([
    ['./etc/passwd', 'etc/passwd'],
    ['/usr//bin/', 'usr/bin'],
    ['a/./b', 'a/b'],
  ])('normalises %j to %j', (input, wanted) => {
    expect(toMemberPath(input).toString()).toBe(wanted);
  });

  it.each(['../etc', 'a/../../b', '', '/', './'])('refuses %j naming it', (input) => {
    try {
      toMemberPath(input);
      expect.unreachable();
    } catch (error) {
      expect(isRedoError(error, 'ERR_LAYER_PATH')).toBe(true);
      expect((error as Error).message).toContain(`"${input}"`);
    }
  });
});
