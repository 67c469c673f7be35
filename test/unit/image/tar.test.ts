// writeTar / readTar / indexTar: ordering, parents, determinism, streaming, errors, and reading what GNU tar writes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entriesOfTar, indexTar, mtimeFromEnvironment, normaliseEntries, packedHeaderBlocks, plainHeaderBlock, readTar, writeTar } from '../../../lib/image/tar.js';
import type { TarEntry } from '../../../lib/image/tar-header.js';
import { isRedoError } from '../../../lib/errors.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-tar-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(path: string, text: string, fields: Partial<TarEntry> = {}): TarEntry {
  const bytes = Buffer.from(text);
  return { path: Buffer.from(path), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'buffer', bytes }, ...fields };
}

function listing(path: string): string[] {
  return spawnSync('tar', ['--numeric-owner', '-tvf', path], { encoding: 'utf8' }).stdout.trim().split('\n');
}

/** A 33 MiB file of ones in `dir` (made once): a member big enough for the off-thread writer. */
function fillerIn(dir: string): string {
  const filler = join(dir, 'filler-33m');
  if (!existsSync(filler)) writeFileSync(filler, Buffer.alloc(33 << 20, 1));
  return filler;
}

/** Writes `entries` again to a stream and to /dev/null: the same result as `viaFile` (written to `out`), and the stream the same bytes. */
async function expectSameToStreamAndDevNull(entries: TarEntry[], out: string, viaFile: Awaited<ReturnType<typeof writeTar>>): Promise<void> {
  const { PassThrough } = await import('node:stream');
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  expect(await writeTar(entries, stream, { mtimeSeconds: 0 })).toEqual(viaFile);
  expect(Buffer.concat(chunks).equals(readFileSync(out))).toBe(true);
  expect(await writeTar(entries, '/dev/null', { mtimeSeconds: 0 })).toEqual(viaFile);
}

describe('writeTar', () => {
  it('sorts members by path bytes and adds missing parents as 0755 root directories', async () => {
    const out = join(dir, 'sorted.tar');
    await writeTar([file('b/z', 'z'), file('a-b', '1'), file('a/b/c', 'c')], out, { mtimeSeconds: 0 });
    expect(listing(out).map((l) => l.split(/\s+/).slice(-1)[0])).toEqual(['a/', 'a/b/', 'a/b/c', 'a-b', 'b/', 'b/z'].sort(
      (x, y) => Buffer.compare(Buffer.from(x.replace(/\/$/, '')), Buffer.from(y.replace(/\/$/, ''))),
    ));
    expect(listing(out)[0]).toMatch(/^drwxr-xr-x 0\/0 /);
  });

  it('writes the same bytes to /dev/null and to a FIFO as to a file, zero runs included', async () => {
    // A zero run of 2 MiB is a hole in a regular file; a FIFO or a device takes it in order.
    const zeros = Buffer.alloc(2 << 20);
    const entries = [file('a', 'a'), { ...file('zeros', ''), sizeBytes: zeros.length, content: { kind: 'buffer' as const, bytes: zeros } }, file('z', 'z')];
    const inFile = join(dir, 'zeros.tar');
    const fromFile = await writeTar(entries, inFile, { mtimeSeconds: 0 });
    expect(await writeTar(entries, '/dev/null', { mtimeSeconds: 0 })).toEqual(fromFile);
    const fifo = join(dir, 'zeros.fifo');
    const copied = join(dir, 'zeros-from-fifo.tar');
    spawnSync('mkfifo', [fifo]);
    const reader = spawn('sh', ['-c', 'cat "$0" > "$1"', fifo, copied]);
    const done = new Promise((resolvePromise) => reader.on('close', resolvePromise));
    expect(await writeTar(entries, fifo, { mtimeSeconds: 0 })).toEqual(fromFile);
    await done;
    expect(readFileSync(copied).equals(readFileSync(inFile))).toBe(true);
  });

  it('gives the same bytes whatever order the entries come in', async () => {
    const entries = [file('x', 'x'), file('y/1', '1'), file('y/2', '2', { mode: 0o600 })];
    const a = await writeTar(entries, join(dir, 'o1.tar'), { mtimeSeconds: 5 });
    const b = await writeTar([...entries].reverse(), join(dir, 'o2.tar'), { mtimeSeconds: 5 });
    expect(a).toEqual(b);
    expect(readFileSync(join(dir, 'o1.tar')).equals(readFileSync(join(dir, 'o2.tar')))).toBe(true);
  });

  it('returns the sha256 of exactly the bytes written (the diffID)', async () => {
    const out = join(dir, 'digest.tar');
    const result = await writeTar([file('a', 'hello')], out, { mtimeSeconds: 0 });
    const sum = spawnSync('sha256sum', [out], { encoding: 'utf8' }).stdout.split(' ')[0];
    expect(result.diffId).toBe(`sha256:${sum}`);
    expect(result.sizeBytes).toBe(readFileSync(out).length);
  });

  it('writes the same bytes to a stream as to a file, and ends the stream', async () => {
    const { PassThrough } = await import('node:stream');
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    const entries = [file('etc/a', 'a'.repeat(3000)), file('etc/b', 'b')];
    const viaStream = await writeTar(entries, stream, { mtimeSeconds: 9 });
    const viaFile = await writeTar(entries, join(dir, 'stream.tar'), { mtimeSeconds: 9 });
    expect(viaStream).toEqual(viaFile);
    expect(Buffer.concat(chunks).equals(readFileSync(join(dir, 'stream.tar')))).toBe(true);
    expect(stream.writableEnded).toBe(true);
  });

  it('stamps every member with SOURCE_DATE_EPOCH', async () => {
    expect(mtimeFromEnvironment({ SOURCE_DATE_EPOCH: '1700000000' })).toBe(1700000000);
    expect(mtimeFromEnvironment({})).toBe(0);
    expect(() => mtimeFromEnvironment({ SOURCE_DATE_EPOCH: 'yesterday' })).toThrow(/SOURCE_DATE_EPOCH/);
  });

  it('refuses a path given twice, naming it', async () => {
    await expect(writeTar([file('a', '1'), file('a', '2')], join(dir, 'dup.tar'))).rejects.toThrow(/"a": given twice/);
  });

  it('refuses a file under a path that is not a directory', async () => {
    await expect(writeTar([file('a', '1'), file('a/b', '2')], join(dir, 'p.tar'))).rejects.toThrow(/"a\/b": its parent is a file/);
  });

  it('normaliseEntries returns a list that is already sorted with its parents (one pass) as it would any order of it, and still refuses a sorted list with a parent that is a file or a path twice', () => {
    const dirEntry = (path: string): TarEntry => ({ path: Buffer.from(path), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 });
    const sorted = [dirEntry('a'), file('a-b', '1'), dirEntry('a/b'), file('a/b/c', '2'), file('a/z', '3'), file('b', '4')];
    const normal = normaliseEntries(sorted);
    expect(normal).toEqual(sorted);
    expect(normal).not.toBe(sorted);
    expect(normaliseEntries([...sorted].reverse())).toEqual(sorted);
    expect(normaliseEntries(sorted.filter((e) => e.path.toString() !== 'a/b'))).toEqual(sorted);
    expect(() => normaliseEntries([file('a', '1'), file('a/b', '2')])).toThrow(/"a\/b": its parent is a file/);
    expect(() => normaliseEntries([dirEntry('a'), file('a/b', '1'), file('a/b', '2')])).toThrow(/"a\/b": given twice/);
  });

  it('refuses a hardlink whose target is not an earlier file', async () => {
    const link: TarEntry = { path: Buffer.from('a'), type: 'hardlink', mode: 0o644, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from('z') };
    await expect(writeTar([link, file('z', 'z')], join(dir, 'h.tar'))).rejects.toSatisfy((e) => isRedoError(e, 'ERR_LAYER_PATH'));
  });

  it('refuses a file whose size changed since it was listed, naming it', async () => {
    const src = join(dir, 'changing');
    writeFileSync(src, 'four');
    const entry: TarEntry = { path: Buffer.from('etc/changing'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 3, content: { kind: 'path', path: src } };
    await expect(writeTar([entry], join(dir, 'c.tar'))).rejects.toThrow(/"etc\/changing": could not read/);
  });

  it('refuses a file that cannot be opened, naming it', async () => {
    const entry: TarEntry = { path: Buffer.from('gone'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 3, content: { kind: 'path', path: join(dir, 'missing') } };
    await expect(writeTar([entry], join(dir, 'm.tar'))).rejects.toThrow(/"gone": could not read/);
  });

  it('streams a large file in chunks with the right bytes', async () => {
    const src = join(dir, 'large');
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
    writeFileSync(src, bytes);
    const out = join(dir, 'large.tar');
    await writeTar([{ path: Buffer.from('large'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'path', path: src } }], out, { mtimeSeconds: 0 });
    const extracted = join(dir, 'x');
    mkdirSync(extracted);
    expect(spawnSync('tar', ['-C', extracted, '-xf', out]).status).toBe(0);
    expect(readFileSync(join(extracted, 'large')).equals(bytes)).toBe(true);
  });

  it('keeps every byte of many files of mixed sizes, to a file and to a slow stream (read buffers are reused safely)', async () => {
    const src = join(dir, 'mixed');
    mkdirSync(src, { recursive: true });
    const sizes = [0, 1, 511, 512, 513, 4096, 70000, 1 << 20, (1 << 20) + 1, 2.5 * (1 << 20), 300000, 7];
    const entries: TarEntry[] = [];
    for (let i = 0; i < 60; i++) {
      const size = sizes[i % sizes.length]!;
      const bytes = Buffer.alloc(size);
      for (let j = 0; j < size; j += 997) bytes[j] = (i * 31 + j) & 0xff;
      const name = `f${String(i).padStart(2, '0')}`;
      writeFileSync(join(src, name), bytes);
      entries.push({ path: Buffer.from(`data/${name}`), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: size, content: { kind: 'path', path: join(src, name) } });
    }
    const out = join(dir, 'mixed.tar');
    const viaFile = await writeTar(entries, out, { mtimeSeconds: 0 });
    const { PassThrough } = await import('node:stream');
    const slow = new PassThrough({ highWaterMark: 1024 });
    const chunks: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of slow) {
        chunks.push(chunk as Buffer);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const viaStream = await writeTar(entries, slow, { mtimeSeconds: 0 });
    await reading;
    expect(viaStream).toEqual(viaFile);
    expect(Buffer.concat(chunks).equals(readFileSync(out))).toBe(true);
    const extracted = join(dir, 'mixed-x');
    mkdirSync(extracted);
    expect(spawnSync('tar', ['-C', extracted, '-xf', out]).status).toBe(0);
    expect(spawnSync('diff', ['-r', src, join(extracted, 'data')]).status).toBe(0);
  });

  it('takes no time from the clock: without SOURCE_DATE_EPOCH every member is stamped 0', async () => {
    const saved = process.env['SOURCE_DATE_EPOCH'];
    delete process.env['SOURCE_DATE_EPOCH'];
    try {
      const out = join(dir, 'clock.tar');
      await writeTar([file('a/b', 'b'), { path: Buffer.from('a/l'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from('b') }], out);
      const lines = spawnSync('tar', ['--numeric-owner', '--full-time', '-tvf', out], { encoding: 'utf8' }).stdout.trim().split('\n');
      expect(lines).toHaveLength(3);
      for (const line of lines) expect(line).toContain(' 1970-01-01 00:00:00 ');
    } finally {
      if (saved !== undefined) process.env['SOURCE_DATE_EPOCH'] = saved;
    }
  });

  it('refuses a name that is not UTF-8 before writing anything, showing its bytes escaped', async () => {
    const out = join(dir, 'raw-name.tar');
    const raw: TarEntry = { ...file('x', 'x'), path: Buffer.from([0x65, 0x74, 0x63, 0x2f, 0x63, 0x61, 0x66, 0xe9]) };
    const failure = await writeTar([raw], out).then(() => undefined, (error: unknown) => error);
    expect(isRedoError(failure, 'ERR_LAYER_UNREPRESENTABLE')).toBe(true);
    expect((failure as Error).message).toContain('"etc/caf\\xe9": its name is not valid UTF-8');
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a large file that is shorter than listed, naming it, without hanging', async () => {
    const src = join(dir, 'short');
    writeFileSync(src, Buffer.alloc(2 * 1024 * 1024 + 5, 1));
    const entry: TarEntry = { path: Buffer.from('short'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 3 * 1024 * 1024, content: { kind: 'path', path: src } };
    await expect(writeTar([file('a', 'a'), entry, file('z', 'z')], join(dir, 'short.tar'))).rejects.toThrow(/"short": could not read/);
  });

  it('a layer of 32 MiB or more (hashed and written by a worker thread) has the same bytes and digest to a file, /dev/null and a stream, holes and slot edges included', async () => {
    const src = join(dir, 'big');
    mkdirSync(src, { recursive: true });
    // Sizes around the worker's 1 MiB slots, a 30 MiB run of zeros (holes in a regular
    // file), and files that end exactly where a slot does.
    const sizes = [(1 << 20) - 512 - 512, 1 << 20, 30 << 20, 1, 0, (1 << 20) + 3, 5000, (2 << 20) - 1024];
    const entries: TarEntry[] = [];
    for (const [i, size] of sizes.entries()) {
      const bytes = Buffer.alloc(size);
      if (i !== 2) for (let j = 0; j < size; j += 4093) bytes[j] = (i * 17 + j) & 0xff;
      writeFileSync(join(src, `f${i}`), bytes);
      entries.push({ path: Buffer.from(`f${i}`), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: size, content: { kind: 'path', path: join(src, `f${i}`) } });
    }
    const out = join(dir, 'big.tar');
    const viaFile = await writeTar(entries, out, { mtimeSeconds: 0 });
    expect(viaFile.sizeBytes).toBeGreaterThan(32 << 20);
    const sum = spawnSync('sha256sum', [out], { encoding: 'utf8' }).stdout.split(' ')[0];
    expect(viaFile.diffId).toBe(`sha256:${sum}`);
    expect(viaFile.sizeBytes).toBe(readFileSync(out).length);
    await expectSameToStreamAndDevNull(entries, out, viaFile);
    const extracted = join(dir, 'big-x');
    mkdirSync(extracted);
    expect(spawnSync('tar', ['-C', extracted, '-xf', out]).status).toBe(0);
    expect(spawnSync('diff', ['-r', src, extracted]).status).toBe(0);
  });

  it('a big layer whose file grew, shrank, or whose output is full fails naming the cause, without hanging', async () => {
    const src = join(dir, 'grow');
    writeFileSync(src, Buffer.alloc(33 << 20, 2));
    const entry = (sizeBytes: number): TarEntry => ({ path: Buffer.from('grow'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes, content: { kind: 'path', path: src } });
    const detailsOf = async (promise: Promise<unknown>): Promise<string> => {
      const error = await promise.then(() => undefined, (e: unknown) => e);
      expect(isRedoError(error, 'ERR_LAYER_READ')).toBe(true);
      return (error as { details: string[] }).details.join('\n');
    };
    expect(await detailsOf(writeTar([entry((33 << 20) - 1)], join(dir, 'grew.tar')))).toContain('found more');
    expect(await detailsOf(writeTar([entry((33 << 20) + 1)], join(dir, 'shrank.tar')))).toContain(`found ${33 << 20}`);
    await expect(writeTar([entry(33 << 20)], '/dev/full')).rejects.toThrow(/ENOSPC/);
  });

  it.each([
    ['a small file that grew by a byte', 9, 10, 'found more'],
    ['a small file that shrank by a byte', 11, 10, 'found 10'],
    ['an empty file that grew', 0, 1, 'found more'],
    ['a file that shrank to nothing', 5, 0, 'found 0'],
  ])('%s fails naming the cause, in a small layer and in a big one (one read per file, the probe included)', async (_name, listedBytes, actualBytes, found) => {
    const src = join(dir, `changed-${listedBytes}-${actualBytes}`);
    writeFileSync(src, Buffer.alloc(actualBytes, 7));
    const filler = fillerIn(dir);
    const changed: TarEntry = { path: Buffer.from('a/changed'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: listedBytes, content: { kind: 'path', path: src } };
    const big: TarEntry = { path: Buffer.from('z'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 33 << 20, content: { kind: 'path', path: filler } };
    for (const entries of [[changed], [changed, big]]) {
      const error = await writeTar(entries, join(dir, 'changed.tar')).then(() => undefined, (e: unknown) => e);
      expect(isRedoError(error, 'ERR_LAYER_READ')).toBe(true);
      expect((error as Error).message).toContain('"a/changed"');
      expect((error as { details: string[] }).details.join('\n')).toContain(found);
    }
  });

  it('a big layer of many small files around block and 64 KiB sizes, a buffer member and a file part gives the same bytes to a file, a stream and /dev/null', async () => {
    const src = join(dir, 'many-small');
    mkdirSync(src, { recursive: true });
    const filler = fillerIn(dir);
    // Sizes around blocks and 64 KiB, enough files for many 1 MiB slots, a buffer member,
    // a file part (offsetBytes), a large file, then a small one again.
    const sizes = [0, 1, 511, 512, 513, 4096, 65535, 65536, 65537, 200000];
    const entries: TarEntry[] = [];
    for (let i = 0; i < 400; i++) {
      const size = sizes[i % sizes.length]!;
      const bytes = Buffer.alloc(size);
      for (let j = 0; j < size; j += 97) bytes[j] = (i + j) & 0xff;
      const path = join(src, `f${String(i).padStart(3, '0')}`);
      writeFileSync(path, bytes);
      entries.push({ path: Buffer.from(`f${String(i).padStart(3, '0')}`), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: size, content: { kind: 'path', path } });
    }
    entries.push({ path: Buffer.from('g-buffer'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 10000, content: { kind: 'buffer', bytes: Buffer.alloc(10000, 3) } });
    entries.push({ path: Buffer.from('g-part'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 100, content: { kind: 'path', path: filler, offsetBytes: 5 } });
    entries.push({ path: Buffer.from('m-large'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 33 << 20, content: { kind: 'path', path: filler } });
    entries.push({ path: Buffer.from('z-after'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 513, content: { kind: 'path', path: join(src, 'f004') } });
    const out = join(dir, 'many-small.tar');
    const viaFile = await writeTar(entries, out, { mtimeSeconds: 0 });
    await expectSameToStreamAndDevNull(entries, out, viaFile);
    expect(viaFile.diffId).toBe(`sha256:${spawnSync('sha256sum', [out], { encoding: 'utf8' }).stdout.split(' ')[0]}`);
  });

  it('in a big layer, a small file that cannot be read as listed fails naming that file, not a later member that fails too', async () => {
    const src = join(dir, 'first-failure');
    mkdirSync(src, { recursive: true });
    const filler = fillerIn(dir);
    const small = (name: string, sizeBytes: number, path = join(src, name)): TarEntry => ({ path: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes, content: { kind: 'path', path } });
    for (let i = 0; i < 8; i++) writeFileSync(join(src, `f${i}`), Buffer.alloc(100, i));
    // Later in member order, and missing: its open fails at once.
    const later: TarEntry = { ...small('z-part', 33 << 20, join(src, 'missing-too')), content: { kind: 'path', path: join(src, 'missing-too'), offsetBytes: 0 } };
    const cases: Array<[TarEntry, string, string]> = [
      [small('f5', 99), '"f5"', 'found more'],
      [small('f5', 101), '"f5"', 'found 100'],
      [small('f5', 100, join(src, 'missing')), '"f5"', 'open: ENOENT'],
    ];
    for (const [changed, name, found] of cases) {
      // The first failure in member order is the one reported.
      const entries = [...[0, 1, 2, 3, 4].map((i) => small(`f${i}`, 100)), changed, small('f6', 100), small('f7', 100), later];
      const error = await writeTar(entries, join(dir, 'first-failure.tar')).then(() => undefined, (e: unknown) => e);
      expect(isRedoError(error, 'ERR_LAYER_READ')).toBe(true);
      expect((error as Error).message).toContain(name);
      expect((error as { details: string[] }).details.join('\n')).toContain(found);
    }
  });

  it('a big layer refused by its checks (the worker already started) fails naming the path, leaves no output and does not hang', async () => {
    const filler = fillerIn(dir);
    const big: TarEntry = { path: Buffer.from('a'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 33 << 20, content: { kind: 'path', path: filler } };
    const out = join(dir, 'refused-big.tar');
    await expect(writeTar([big, file('a', 'again')], out)).rejects.toThrow(/"a": given twice/);
    await expect(writeTar([big, file('\u00e9', 'x', { path: Buffer.from([0x62, 0xff]) })], out)).rejects.toSatisfy((e) => isRedoError(e, 'ERR_LAYER_UNREPRESENTABLE'));
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a stream whose length differs from the declared size, naming it', async () => {
    const { Readable } = await import('node:stream');
    const entry: TarEntry = { path: Buffer.from('s'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 10, content: { kind: 'stream', open: () => Readable.from([Buffer.from('12345')]) } };
    await expect(writeTar([entry], join(dir, 's.tar'))).rejects.toSatisfy((e) => isRedoError(e, 'ERR_LAYER_READ'));
  });
});

const clientTools = ['skopeo', 'umoci'];
const missingClients = clientTools.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
if (missingClients.length > 0) console.warn(`pax client check skipped: not installed: ${missingClients.join(', ')} (.ci/run installs them)`);

describe('pax members in real clients', () => {
  it.skipIf(missingClients.length > 0)('GNU tar, skopeo and umoci read long names, UTF-8 names, long link targets and large ids', async () => {
    const { writeDockerArchive } = await import('../../../lib/image/docker-archive.js');
    const { writeOciLayout } = await import('../../../lib/image/oci.js');
    const out = join(dir, 'pax-clients');
    mkdirSync(out);
    const long = 'd'.repeat(150) + '/' + 'f'.repeat(149);
    const entries: TarEntry[] = [
      file(long, 'deep\n'),
      file('etc/café', 'utf8 name\n'),
      file('etc/owned', 'big ids\n', { uid: 300000, gid: 300001 }),
      { path: Buffer.from('etc/link'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from('/' + long) },
      { path: Buffer.from('x'.repeat(120)), type: 'hardlink', mode: 0o644, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from('etc/café') },
    ];
    const layer = join(out, 'layer.tar');
    await writeTar(entries, layer, { mtimeSeconds: 1700000000 });
    const listed = spawnSync('tar', ['--numeric-owner', '-tvf', layer], { encoding: 'utf8' }).stdout;
    expect(listed).toContain(` ${long}\n`);
    expect(listed).toContain(' 300000/300001 ');
    expect(listed).toContain(` etc/link -> /${long}\n`);
    const config = { architecture: 'amd64', os: 'linux', cmd: ['/bin/true'] };
    await writeDockerArchive({ layers: [layer], config, repoTags: ['localhost/pax:latest'] }, join(out, 'image.tar'));
    await writeOciLayout({ layers: [layer], config, refName: 'latest', gzip: true }, join(out, 'image.oci'));
    const run = (command: string, args: string[]): void => {
      const result = spawnSync(command, args, { encoding: 'utf8', cwd: out });
      expect(result.status, `${command} ${args.join(' ')}\n${result.stderr}`).toBe(0);
    };
    run('skopeo', ['copy', '-q', 'docker-archive:image.tar', 'oci:copied:tag']);
    run('umoci', ['unpack', '--rootless', '--image', 'image.oci:latest', 'ours']);
    run('umoci', ['unpack', '--rootless', '--image', 'copied:tag', 'copied']);
    for (const bundle of ['ours', 'copied']) {
      const root = join(out, bundle, 'rootfs');
      expect(readFileSync(join(root, long), 'utf8')).toBe('deep\n');
      expect(readFileSync(join(root, 'etc/café'), 'utf8')).toBe('utf8 name\n');
      expect(readFileSync(join(root, 'x'.repeat(120)), 'utf8')).toBe('utf8 name\n');
      expect(spawnSync('readlink', [join(root, 'etc/link')], { encoding: 'utf8' }).stdout.trim()).toBe('/' + long);
    }
  });
});

describe('readTar and indexTar', () => {
  it('read back what GNU tar writes, including long names, links and ./ prefixes', async () => {
    const src = join(dir, 'gnu');
    const long = 'l'.repeat(120);
    mkdirSync(join(src, long), { recursive: true });
    writeFileSync(join(src, long, 'f'), 'content');
    spawnSync('ln', ['-s', '/etc/passwd', join(src, 'abs')]);
    for (const format of ['gnu', 'posix']) {
      const out = join(dir, `${format}.tar`);
      expect(spawnSync('tar', [`--format=${format}`, '-C', src, '-cf', out, '.']).status).toBe(0);
      const seen: string[] = [];
      for await (const entry of readTar(out)) {
        seen.push(`${entry.type} ${entry.path.toString()}${entry.linkTarget ? ' -> ' + entry.linkTarget.toString() : ''}`);
        if (entry.type === 'file') expect((await streamText(entry.body))).toBe('content');
      }
      expect(seen.sort()).toEqual([`directory ${long}`, `file ${long}/f`, 'symlink abs -> /etc/passwd'].sort());
      const indexed = entriesOfTar(out).map((e) => `${e.type} ${e.path.toString()}`).sort();
      expect(indexed).toEqual([`directory ${long}`, `file ${long}/f`, 'symlink abs'].sort());
    }
  });

  it('reads a gzip-compressed tar from a stream', async () => {
    const out = join(dir, 'small.tar');
    await writeTar([file('a', 'A')], out, { mtimeSeconds: 0 });
    spawnSync('gzip', ['-kf', out]);
    const names: string[] = [];
    for await (const entry of readTar(createReadStream(`${out}.gz`))) names.push(entry.path.toString());
    expect(names).toEqual(['a']);
  });

  it('refuses a member path with "..", naming the archive and the member', async () => {
    const evil = join(dir, 'evil.tar');
    const src = join(dir, 'evil-src');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'x'), 'x');
    spawnSync('tar', ['-C', src, '-cf', evil, '--transform', 's,^x,../x,', 'x']);
    await expect(async () => {
      for await (const _ of readTar(evil)) void _;
    }).rejects.toThrow(/member "\.\.\/x" escapes/);
  });

  it('refuses a file that is not a tar', async () => {
    const junk = join(dir, 'junk');
    writeFileSync(junk, Buffer.alloc(2048, 7));
    expect(() => indexTar(junk)).toThrow(/not a tar archive/);
    await expect(async () => {
      for await (const _ of readTar(junk)) void _;
    }).rejects.toSatisfy((e) => isRedoError(e, 'ERR_TAR_MALFORMED'));
  });
});

async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('writeTar encodes ustar headers itself, byte for byte as tar-stream does', () => {
  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(90)}`;
  const cases: Array<[string, TarEntry]> = [
    ['a file', { path: Buffer.from('etc/motd'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 3, content: { kind: 'buffer', bytes: Buffer.from('hi\n') } }],
    ['a setuid file with owners', { path: Buffer.from('bin/su'), type: 'file', mode: 0o4755, uid: 1000, gid: 262143, sizeBytes: 0 }],
    ['a directory', { path: Buffer.from('var/lib'), type: 'directory', mode: 0o1777, uid: 0, gid: 0, sizeBytes: 0 }],
    ['a symlink', { path: Buffer.from('bin/sh'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from('busybox') }],
    ['a character device', { path: Buffer.from('dev/null'), type: 'character-device', mode: 0o666, uid: 0, gid: 0, sizeBytes: 0, deviceMajor: 1, deviceMinor: 3 }],
    ['a 100-byte name', { path: Buffer.from(`x/${'n'.repeat(98)}`), type: 'file', mode: 0o600, uid: 0, gid: 0, sizeBytes: 0 }],
    ['a name split into prefix and name', { path: Buffer.from(long), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 0 }],
    ['a non-ASCII name (tar-stream writes a pax member)', { path: Buffer.from('usr/share/ç'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 0 }],
    ['a uid over 262143 (pax)', { path: Buffer.from('home/big'), type: 'file', mode: 0o644, uid: 300000, gid: 0, sizeBytes: 0 }],
    ['a 101-byte link target (pax)', { path: Buffer.from('l'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from('t'.repeat(101)) }],
  ];
  it.each(cases)('%s', async (_name, entry) => {
    const dir = mkdtempSync(join(tmpdir(), 'redo-ts-ustar-'));
    try {
      for (const mtimeSeconds of [0, 1700000000]) {
        await writeTar([entry], join(dir, 'one.tar'), { mtimeSeconds });
        const written = readFileSync(join(dir, 'one.tar'));
        const parents = entry.path.toString().split('/').length - 1;
        const wanted = await packedHeaderBlocks(entry, mtimeSeconds);
        // Parent directories come first (one block each); then the member's header blocks.
        expect(written.subarray(parents * 512, parents * 512 + wanted.length).equals(wanted)).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('plainHeaderBlock (the per-member fast path) gives tar-stream\'s bytes, or declines', () => {
  const entry = (fields: Partial<TarEntry>): TarEntry => ({ path: Buffer.from('a/b'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 0, ...fields });
  const cases: Array<[string, TarEntry, number, 'encoded' | 'declined']> = [
    ['a file', entry({ sizeBytes: 12345 }), 0, 'encoded'],
    ['a file of 8 GiB - 1 (the largest 11-digit size)', entry({ sizeBytes: 0o77777777777 }), 1700000000, 'encoded'],
    ['a file of 8 GiB (GNU base-256 and a pax size)', entry({ sizeBytes: 0o100000000000 }), 0, 'declined'],
    ['the largest ustar mtime', entry({}), 0x7fffffff, 'encoded'],
    ['a later mtime (pax)', entry({}), 0x80000000, 'declined'],
    ['ids of 262143 and a sticky setgid mode', entry({ uid: 262143, gid: 262143, mode: 0o3775 }), 0, 'encoded'],
    ['a uid over 262143 (pax)', entry({ uid: 262144 }), 0, 'declined'],
    ['a directory of 99 bytes (100 with its slash)', entry({ type: 'directory', path: Buffer.from('d'.repeat(99)) }), 0, 'encoded'],
    ['a directory of 100 bytes (its slash does not fit)', entry({ type: 'directory', path: Buffer.from(`p/${'d'.repeat(98)}`) }), 0, 'declined'],
    ['a 100-byte file name', entry({ path: Buffer.from('n'.repeat(100)) }), 0, 'encoded'],
    ['a 101-byte name (prefix split)', entry({ path: Buffer.from(`p/${'n'.repeat(99)}`) }), 0, 'declined'],
    ['a non-ASCII name', entry({ path: Buffer.from('é') }), 0, 'declined'],
    ['a hardlink', entry({ type: 'hardlink', linkTarget: Buffer.from('a/a') }), 0, 'encoded'],
    ['a symlink with a 100-byte target', entry({ type: 'symlink', mode: 0o777, linkTarget: Buffer.from('t'.repeat(100)) }), 0, 'encoded'],
    ['a symlink with a non-ASCII target', entry({ type: 'symlink', mode: 0o777, linkTarget: Buffer.from('ü') }), 0, 'declined'],
    ['a fifo', entry({ type: 'fifo', mode: 0o600 }), 0, 'encoded'],
    ['a block device', entry({ type: 'block-device', mode: 0o660, deviceMajor: 262143, deviceMinor: 7 }), 0, 'encoded'],
  ];
  it.each(cases)('%s', async (_name, fields, mtimeSeconds, outcome) => {
    const block = plainHeaderBlock(fields, mtimeSeconds, Buffer.alloc(512, 0xff));
    expect(block === null ? 'declined' : 'encoded').toBe(outcome);
    if (block !== null) expect(block.equals(await packedHeaderBlocks(fields, mtimeSeconds))).toBe(true);
  });
});
