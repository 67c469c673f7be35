// unpackArchive: redo-ts's own tar unpacker for sources (no host tar decides what lands in the build folder).
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isRedoError, type RedoError } from '../../../lib/errors.js';
import { unpackArchive } from '../../../lib/sources/unpack.js';

const base = mkdtempSync(join(tmpdir(), 'redo-ts-unpack-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let counter = 0;

/** A tree made by `make`, archived by GNU tar with `flags` (compression); returns the archive path. */
function archive(make: (dir: string) => void, flags: string[] = []): string {
  counter += 1;
  const tree = join(base, `tree-${counter}`);
  mkdirSync(tree);
  make(tree);
  const out = join(base, `archive-${counter}.tar`);
  execFileSync('tar', ['-C', tree, '-cf', out, '--sort=name', '--mtime=@1000', ...flags, '.']);
  return out;
}

function target(): string {
  counter += 1;
  const dir = join(base, `into-${counter}`);
  mkdirSync(dir);
  return dir;
}

const options = { subject: '"targets/t.spec.yaml"', what: 'unpack of "a.tar"', check: () => undefined };

const tree = (dir: string): void => {
  mkdirSync(join(dir, 'pkg', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'pkg', 'sub', 'file.txt'), 'content\n', { mode: 0o664 });
  writeFileSync(join(dir, 'pkg', 'run.sh'), '#!/bin/sh\n', { mode: 0o4775 });
  symlinkSync('sub/file.txt', join(dir, 'pkg', 'link'));
  execFileSync('ln', [join(dir, 'pkg', 'sub', 'file.txt'), join(dir, 'pkg', 'hard.txt')]);
};

describe('unpackArchive', () => {
  it.each([
    ['plain tar', []],
    ['gzip', ['--gzip']],
    ['xz', ['--xz']],
    ['bzip2', ['--bzip2']],
    ['zstd', ['--zstd']],
  ])('unpacks a %s archive with its files, links, hardlinks and mtimes, modes under a fixed umask 022', async (_, flags) => {
    const into = target();
    await unpackArchive(archive(tree, flags), into, options);
    expect(readFileSync(join(into, 'pkg', 'sub', 'file.txt'), 'utf8')).toBe('content\n');
    expect(statSync(join(into, 'pkg', 'sub', 'file.txt')).mode & 0o7777).toBe(0o644);
    expect(statSync(join(into, 'pkg', 'run.sh')).mode & 0o7777).toBe(0o755);
    expect(readlinkSync(join(into, 'pkg', 'link'))).toBe('sub/file.txt');
    expect(statSync(join(into, 'pkg', 'hard.txt')).ino).toBe(statSync(join(into, 'pkg', 'sub', 'file.txt')).ino);
    expect(statSync(join(into, 'pkg', 'sub', 'file.txt')).mtimeMs).toBe(1_000_000);
    expect(statSync(join(into, 'pkg', 'sub')).mtimeMs).toBe(1_000_000);
  });

  it('replaces a symlink where the archive has a folder, and a file where it has a file', async () => {
    const into = target();
    mkdirSync(join(into, 'elsewhere'));
    symlinkSync('elsewhere', join(into, 'pkg'));
    await unpackArchive(archive(tree), into, options);
    expect(lstatSync(join(into, 'pkg')).isDirectory()).toBe(true);
    expect(readFileSync(join(into, 'pkg', 'sub', 'file.txt'), 'utf8')).toBe('content\n');
  });

  it('checks every member\'s place before writing it', async () => {
    const seen: string[] = [];
    await unpackArchive(archive(tree), target(), { ...options, check: (_path, member) => seen.push(member) });
    expect(new Set(seen)).toEqual(new Set(['pkg', 'pkg/hard.txt', 'pkg/link', 'pkg/run.sh', 'pkg/sub', 'pkg/sub/file.txt']));
  });

  it('refuses a member named with ".." (ERR_BUILD_ESCAPE) and writes nothing outside', async () => {
    counter += 1;
    const tree2 = join(base, `tree-${counter}`);
    mkdirSync(join(tree2, 'a'), { recursive: true });
    writeFileSync(join(tree2, 'escape.txt'), 'pwned\n');
    const out = join(base, `evil-${counter}.tar`);
    execFileSync('tar', ['-C', join(tree2, 'a'), '-cf', out, '--absolute-names', '../escape.txt']);
    const into = target();
    const error = await unpackArchive(out, join(into), options).catch((caught: unknown) => caught);
    expect(isRedoError(error, 'ERR_BUILD_ESCAPE')).toBe(true);
    expect((error as Error).message).toContain('redo: "targets/t.spec.yaml": unpack of "a.tar" would write outside the build folder');
  });

  it('refuses a fifo member and a file that is not a tar, as ERR_SPEC_BUILD_FAILED', async () => {
    const fifo = archive((dir) => execFileSync('mkfifo', [join(dir, 'pipe')]));
    const error = await unpackArchive(fifo, target(), options).catch((caught: unknown) => caught);
    expect(isRedoError(error, 'ERR_SPEC_BUILD_FAILED')).toBe(true);
    expect((error as RedoError).render()).toContain('member "pipe" is a fifo');
    const notTar = join(base, 'not-a.tar');
    writeFileSync(notTar, 'just text, long enough to not be a tar header at all\n'.repeat(20));
    const other = await unpackArchive(notTar, target(), options).catch((caught: unknown) => caught);
    expect(isRedoError(other, 'ERR_SPEC_BUILD_FAILED')).toBe(true);
    expect((other as RedoError).render()).toContain('not a readable tar archive');
  });
});
