// Tutorial chapter 3 (shared libraries): a dynamically linked program, its libraries
// found with ldd and copied into their own fragment, run with `unshare -r chroot`.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyChapter, rebuiltTargets, shownFiles } from '../helpers/tutorial.js';

const chapter = '03-shared-libraries';
const copy = copyChapter(chapter);
afterAll(() => copy.remove());

function members(tar: string): string[] {
  return execFileSync('tar', ['-tf', join(copy.dir, tar)]).toString().split('\n').filter((line) => line !== '');
}

describe('tutorial chapter 3: shared libraries', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual([
      'all.do',
      'default.rootfs.tar.do.ts',
      'hello.do',
      'hello.libs.do',
      'hello.libs.tar.do.ts',
    ]);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('finds the C library and the loader with ldd, and nothing else', async () => {
    const result = await copy.redo(['hello.libs']);
    expect(result.status, result.stderr).toBe(0);
    const paths = copy.read('hello.libs').split('\n').filter((line) => line !== '').map((line) => line.split(' ')[0]);
    expect(paths).toHaveLength(2);
    expect(paths.some((path) => /\/libc\.so\.6$/.test(path!))).toBe(true);
    expect(paths.some((path) => /\/ld-linux[-a-z0-9_]*\.so\.2$/.test(path!))).toBe(true);
    for (const line of copy.read('hello.libs').trim().split('\n')) expect(line).toMatch(/^\/\S+ [0-9a-f]{64}$/);
  });

  it('runs the dynamic program in a rootfs holding only it and those files', async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(copy.read('hello.runlocal')).toBe('Hello, World!\n');
    const libraries = copy.read('hello.libs').trim().split('\n').map((line) => line.split(' ')[0]!.slice(1));
    const files = members('hello.rootfs.tar').filter((member) => !member.endsWith('/'));
    expect(files.sort()).toEqual(['bin/hello', ...libraries].sort());
  });

  it('re-runs only the ldd rule on a second build, and stops there', async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['hello.libs']);
  });

  it('fails to run the program without its libraries', async () => {
    const result = await copy.redo(['bare.hello.runlocal']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('runlocal: "/bin/hello" in bare.rootfs.tar exited with status 127');
    expect(members('bare.rootfs.tar')).toEqual(['bin/', 'bin/hello']);
  });
});
