// Byte-exact ustar/pax headers: golden bytes, and GNU tar reading them back.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeHeader, toMemberPath, type TarEntry } from '../../../lib/image/tar-header.js';
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
  ['name of 150 bytes uses the ustar prefix', entry('d'.repeat(60) + '/' + 'f'.repeat(89)), 0],
  ['name of 300 bytes needs a pax path', entry('d'.repeat(150) + '/' + 'f'.repeat(149)), 0],
  ['non-UTF-8 short name stays raw in ustar', entry(Buffer.from([0x6e, 0xe9, 0xff])), 0],
  ['non-UTF-8 long name gets pax hdrcharset=BINARY', entry(Buffer.concat([Buffer.from('x'.repeat(120)), Buffer.from([0xff])])), 0],
  ['link target over 100 bytes needs pax linkpath', entry('l', { type: 'symlink', mode: 0o777, linkTarget: Buffer.from('t'.repeat(120)) }), 0],
  ['size over 8 GiB needs pax size', entry('big', { sizeBytes: 8 * 1024 ** 3 + 1 }), 0],
  ['uid over 2097151 needs pax uid', entry('owned', { uid: 3000000, gid: 3000001 }), 0],
  ['fifo', entry('run/pipe', { type: 'fifo' }), 0],
];

// UPDATE_GOLDEN=1 rewrites the golden file from the current encoder (review the diff!).
if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(goldenPath)) {
  const fresh = Object.fromEntries(cases.map(([name, e, mtime]) => [name, createHash('sha256').update(encodeHeader(e, mtime)).digest('hex')]));
  writeFileSync(goldenPath, JSON.stringify(fresh, null, 2) + '\n');
}
const golden = JSON.parse(readFileSync(goldenPath, 'utf8')) as Record<string, string>;

describe('encodeHeader', () => {
  it.each(cases)('%s: bytes equal the golden digest', (name, e, mtime) => {
    const bytes = encodeHeader(e, mtime);
    expect(bytes.length % 512).toBe(0);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(golden[name]);
  });

  it('a small file header is byte-for-byte the documented ustar layout', () => {
    const block = encodeHeader(entry('etc/hostname', { sizeBytes: 8 }), 0);
    expect(block.length).toBe(512);
    expect(block.toString('latin1', 0, 12)).toBe('etc/hostname');
    expect(block.toString('latin1', 100, 108)).toBe('0000644\0');
    expect(block.toString('latin1', 108, 124)).toBe('0000000\u00000000000\0');
    expect(block.toString('latin1', 124, 136)).toBe('00000000010\0');
    expect(block.toString('latin1', 136, 148)).toBe('00000000000\0');
    expect(block.toString('latin1', 156, 157)).toBe('0');
    expect(block.toString('latin1', 257, 265)).toBe('ustar\u000000');
    // Empty uname and gname: no host account names.
    expect(block.subarray(265, 329).every((b) => b === 0)).toBe(true);
  });

  it.each(cases.filter(([name]) => !name.startsWith('size over')))('%s: GNU tar lists it', (_name, e, mtime) => {
    const archive = Buffer.concat([encodeHeader(e, mtime), Buffer.alloc(e.type === 'file' ? Math.ceil(e.sizeBytes / 512) * 512 : 0), Buffer.alloc(1024)]);
    const result = spawnSync('tar', ['--numeric-owner', '-tvf', '-'], { input: archive, encoding: 'latin1' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(` ${e.uid}/${e.gid} `);
  });

  it('size over 8 GiB is read back by GNU tar from the pax record', () => {
    const header = encodeHeader(entry('big', { sizeBytes: 8 * 1024 ** 3 + 1 }), 0);
    const result = spawnSync('tar', ['-tvf', '-'], { input: Buffer.concat([header, Buffer.alloc(1024)]), encoding: 'latin1' });
    expect(result.stdout).toContain('8589934593');
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
