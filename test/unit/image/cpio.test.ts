// Checks the deterministic cpio newc writer byte by byte and against GNU cpio.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeCpio } from '../../../lib/image/cpio.js';
import type { TarEntry } from '../../../lib/image/tar.js';
import { isRedoError } from '../../../lib/errors.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-cpio-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let counter = 0;
const nextPath = (): string => join(scratch, `archive-${counter++}.cpio`);

function file(path: string, text: string, mode = 0o644, uid = 0, gid = 0): TarEntry {
  const bytes = Buffer.from(text);
  return { path: Buffer.from(path), type: 'file', mode, uid, gid, sizeBytes: bytes.length, content: { kind: 'buffer', bytes } };
}
function dir(path: string, mode = 0o755): TarEntry {
  return { path: Buffer.from(path), type: 'directory', mode, uid: 0, gid: 0, sizeBytes: 0 };
}
function symlink(path: string, target: string): TarEntry {
  return { path: Buffer.from(path), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from(target) };
}
function hardlink(path: string, target: string): TarEntry {
  return { path: Buffer.from(path), type: 'hardlink', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from(target) };
}

/** Parses a newc archive into its headers, for checking fields exactly. */
function parseNewc(bytes: Buffer): { name: string; fields: number[]; data: Buffer }[] {
  const members = [];
  let at = 0;
  for (;;) {
    expect(bytes.subarray(at, at + 6).toString('latin1')).toBe('070701');
    const fields = [];
    for (let i = 0; i < 13; i++) fields.push(parseInt(bytes.subarray(at + 6 + 8 * i, at + 14 + 8 * i).toString('latin1'), 16));
    const nameSize = fields[11]!;
    const name = bytes.subarray(at + 110, at + 110 + nameSize - 1).toString('latin1');
    expect(bytes[at + 110 + nameSize - 1]).toBe(0);
    let dataAt = at + 110 + nameSize;
    dataAt += (4 - (dataAt % 4)) % 4;
    const size = fields[6]!;
    const data = bytes.subarray(dataAt, dataAt + size);
    members.push({ name, fields, data });
    at = dataAt + size;
    at += (4 - (at % 4)) % 4;
    if (name === 'TRAILER!!!') break;
  }
  expect(at).toBe(bytes.length);
  return members;
}

const sample = (): TarEntry[] => [
  file('bin/hello', '#!/bin/sh\necho hi\n', 0o755),
  dir('etc'),
  file('etc/motd', 'welcome\n', 0o644, 1000, 100),
  symlink('bin/sh', 'busybox'),
  file('bin/busybox', 'pretend busybox', 0o755),
  hardlink('bin/ls', 'bin/busybox'),
  { path: Buffer.from('dev/console'), type: 'character-device', mode: 0o600, uid: 0, gid: 0, sizeBytes: 0, deviceMajor: 5, deviceMinor: 1 },
];

describe('writeCpio', () => {
  it('writes the exact newc header GNU cpio writes for a single file', async () => {
    const out = nextPath();
    await writeCpio([file('a', 'xyz', 0o640, 7, 8)], out, { mtimeSeconds: 0x5f5e100 });
    const bytes = readFileSync(out);
    const head = bytes.subarray(0, 110 + 2).toString('latin1');
    // magic, ino 1, mode 0100640, uid 7, gid 8, nlink 1, mtime, size 3, dev 0/0, rdev 0/0, namesize 2, check 0
    expect(head).toBe(
      '070701' + '00000001' + '000081A0' + '00000007' + '00000008' + '00000001' + '05F5E100' + '00000003' +
        '00000000' + '00000000' + '00000000' + '00000000' + '00000002' + '00000000' + 'a\0',
    );
    // 112 bytes of header and name are already aligned; then "xyz" and one pad byte.
    expect(bytes.subarray(112, 116)).toEqual(Buffer.from('xyz\0'));
    expect(bytes.subarray(116, 122).toString('latin1')).toBe('070701');
  });

  it.each([
    ['entries given in another order', (e: TarEntry[]) => [...e].reverse()],
    ['entries given in the same order', (e: TarEntry[]) => e],
  ])('gives the same bytes with %s', async (_name, reorder) => {
    const a = nextPath();
    const b = nextPath();
    await writeCpio(sample(), a, { mtimeSeconds: 0 });
    const result = await writeCpio(reorder(sample()), b, { mtimeSeconds: 0 });
    expect(readFileSync(b)).toEqual(readFileSync(a));
    expect(result.sizeBytes).toBe(statSync(b).size);
    expect(result.memberCount).toBe(9);
  });

  it('sorts by path bytes, adds parents, numbers inodes in that order and shares them with hardlinks', async () => {
    const out = nextPath();
    await writeCpio(sample(), out, { mtimeSeconds: 0 });
    const members = parseNewc(readFileSync(out));
    expect(members.map((m) => m.name)).toEqual([
      'bin',
      'bin/busybox',
      'bin/hello',
      'bin/ls',
      'bin/sh',
      'dev',
      'dev/console',
      'etc',
      'etc/motd',
      'TRAILER!!!',
    ]);
    const byName = new Map(members.map((m) => [m.name, m]));
    const ino = (n: string): number => byName.get(n)!.fields[0]!;
    const nlink = (n: string): number => byName.get(n)!.fields[4]!;
    expect([ino('bin'), ino('bin/busybox'), ino('bin/hello'), ino('bin/sh'), ino('dev')]).toEqual([1, 2, 3, 4, 5]);
    expect(ino('bin/ls')).toBe(ino('bin/busybox'));
    expect([nlink('bin/busybox'), nlink('bin/ls'), nlink('bin/hello'), nlink('bin')]).toEqual([2, 2, 1, 2]);
    expect(byName.get('bin/busybox')!.data.toString()).toBe('pretend busybox');
    expect(byName.get('bin/ls')!.fields[6]).toBe(0);
    expect(byName.get('bin/sh')!.fields[1]).toBe(0o120777);
    expect(byName.get('bin/sh')!.data.toString()).toBe('busybox');
    expect(byName.get('dev/console')!.fields.slice(9, 11)).toEqual([5, 1]);
    expect(byName.get('dev/console')!.fields[1]).toBe(0o020600);
    expect(byName.get('etc/motd')!.fields.slice(2, 4)).toEqual([1000, 100]);
    const trailer = byName.get('TRAILER!!!')!.fields;
    expect(trailer).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0]);
  });

  it('takes every mtime from SOURCE_DATE_EPOCH when no mtime is given', async () => {
    const out = nextPath();
    const saved = process.env['SOURCE_DATE_EPOCH'];
    process.env['SOURCE_DATE_EPOCH'] = '1700000000';
    try {
      await writeCpio([file('x', '1'), dir('d')], out);
    } finally {
      if (saved === undefined) delete process.env['SOURCE_DATE_EPOCH'];
      else process.env['SOURCE_DATE_EPOCH'] = saved;
    }
    const members = parseNewc(readFileSync(out)).filter((m) => m.name !== 'TRAILER!!!');
    expect(members.map((m) => m.fields[5])).toEqual([1700000000, 1700000000]);
  });

  it('streams file content from a path, at an offset', async () => {
    const source = join(scratch, 'source.bin');
    writeFileSync(source, 'HEADERpayload-bytesTAIL');
    const out = nextPath();
    await writeCpio(
      [{ path: Buffer.from('p'), type: 'file', mode: 0o600, uid: 0, gid: 0, sizeBytes: 13, content: { kind: 'path', path: source, offsetBytes: 6 } }],
      out,
      { mtimeSeconds: 0 },
    );
    expect(parseNewc(readFileSync(out))[0]!.data.toString()).toBe('payload-bytes');
  });

  it('is unpacked by GNU cpio with content, modes, symlinks and hardlinks intact', async () => {
    const out = nextPath();
    await writeCpio(sample().filter((e) => e.type !== 'character-device'), out, { mtimeSeconds: 0 });
    const into = mkdtempSync(join(scratch, 'unpack-'));
    execFileSync('cpio', ['-i', '-d', '--quiet', '--no-absolute-filenames'], { cwd: into, input: readFileSync(out) });
    expect(readFileSync(join(into, 'bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(statSync(join(into, 'bin/hello')).mode & 0o7777).toBe(0o755);
    expect(readlinkSync(join(into, 'bin/sh'))).toBe('busybox');
    expect(statSync(join(into, 'bin/ls')).ino).toBe(statSync(join(into, 'bin/busybox')).ino);
    expect(readFileSync(join(into, 'bin/ls'), 'utf8')).toBe('pretend busybox');
    const listing = execFileSync('cpio', ['-t', '-v', '--numeric-uid-gid', '--quiet'], { input: readFileSync(out) }).toString();
    expect(listing).toMatch(/-rw-r--r-- +1 1000 +100 .* etc\/motd/);
  });

  it.each([
    ['a uid over 32 bits', { ...file('big', ''), uid: 2 ** 32 }, 'ERR_CPIO_FIELD'],
    ['a path with ..', file('../escape', 'x'), 'ERR_LAYER_PATH'],
    ['a path given twice', file('bin/sh', 'x'), 'ERR_LAYER_CONFLICT'],
    ['content shorter than its size', { ...file('short', 'ab'), sizeBytes: 5 }, 'ERR_LAYER_READ'],
  ] as const)('refuses %s', async (_name, bad, code) => {
    const entries = code === 'ERR_LAYER_CONFLICT' ? [symlink('bin/sh', 'busybox'), bad] : [bad];
    const error = await writeCpio(entries, nextPath(), { mtimeSeconds: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isRedoError(error), String(error)).toBe(true);
    expect((error as { code: string }).code).toBe(code);
  });
});
