// Tutorial chapter 4 (an initrd and a VM): a deterministic cpio initrd of the rootfs,
// booted with qemu (kvm where it works, TCG otherwise) on a kernel from a pinned Debian
// package; the program's output and exit status come back through serial ports.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyChapter, rebuiltTargets, sha256Of, shownFiles } from '../helpers/tutorial.js';

const chapter = '04-initrd-vm';
const copy = copyChapter(chapter);
const second = copyChapter(chapter);
afterAll(() => {
  copy.remove();
  second.remove();
});

// A boot under TCG takes a few seconds here, plus the kvm trial where /dev/kvm exists
// but cannot run a guest; the first build also fetches the kernel package once.
const bootTimeoutMs = 600_000;

describe('tutorial chapter 4: an initrd and a VM', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual([
      'all.do',
      'hello.rootfs.tar.do.ts',
      'init',
      'kernel.spec.yaml',
      'vmlinuz.do',
    ]);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('boots the initrd and captures what the program printed', { timeout: bootTimeoutMs }, async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual([
      'all',
      'build-environment.fragment.tar',
      'busybox.fragment.tar',
      'hello',
      'hello.fragment.tar',
      'hello.initrd',
      'hello.rootfs.tar',
      'hello.runkvm',
      'kernel.fragment.tar',
      'toolchain.fragment.tar',
      'vmlinuz',
    ]);
    expect(copy.read('hello.runkvm')).toBe('Hello, World!\n');
  });

  it('takes the kernel from the pinned package', () => {
    const kernel = copy.refreshedPins.find((refresh) => refresh.from.startsWith('deb:linux-image-'));
    if (kernel === undefined) {
      expect(sha256Of(join(copy.dir, 'vmlinuz'))).toBe('sha256:3d616aa853fe11b1c0ea99a1cdb4fb6ddc9010ba7c4562de700ad94264989654');
    } else {
      // The committed kernel left the archive (kernel ABIs move at every point release):
      // the copy boots the one apt offers now, and vmlinuz is that package's image.
      const fragment = execFileSync('tar', ['-tf', join(copy.dir, 'kernel.fragment.tar')], { encoding: 'utf8' });
      const image = /^(boot\/vmlinuz-\S+)$/m.exec(fragment)![1]!;
      expect(sha256Of(join(copy.dir, 'vmlinuz'))).toBe(`sha256:${createHash('sha256').update(execFileSync('tar', ['-xOf', join(copy.dir, 'kernel.fragment.tar'), image], { maxBuffer: 1 << 28 })).digest('hex')}`);
    }
  });

  it('writes a newc initrd with the rootfs, /dev/console and fixed owners and times', () => {
    const listing = execFileSync('cpio', ['-t', '-v', '--numeric-uid-gid', '--quiet'], {
      input: readFileSync(join(copy.dir, 'hello.initrd')),
      env: { TZ: 'UTC', LC_ALL: 'C', PATH: process.env['PATH'] },
    })
      .toString()
      .trim()
      .split('\n');
    expect(listing.map((line) => line.split(' 1970 ')[1])).toEqual([
      'bin',
      'bin/busybox',
      'bin/hello',
      'bin/sh -> busybox',
      'dev',
      'dev/console',
      'init',
      'proc',
      'sys',
    ]);
    for (const line of listing) expect(line).toMatch(/^\S+ +\d+ 0 +0 .* Jan  1  1970 /);
    expect(listing[5]).toMatch(/^crw------- .* 5, +1 /);
  });

  it('gives the same initrd bytes in another folder, with another umask', { timeout: bootTimeoutMs }, async () => {
    const result = await second.redo(['hello.initrd'], { umask: '077', env: { TZ: 'Pacific/Auckland' } });
    expect(result.status, result.stderr).toBe(0);
    expect(sha256Of(join(second.dir, 'hello.initrd'))).toBe(sha256Of(join(copy.dir, 'hello.initrd')));
  });

  it('runs nothing on a second build', async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual([]);
  });

  it('fails with the program\'s exit status, read from the third serial port, and keeps the old output', { timeout: bootTimeoutMs }, async () => {
    copy.write('hello.c', copy.read('hello.c').replace('return 0;', 'return 3;'));
    const result = await copy.redo(['hello.runkvm']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('runkvm: the program in hello.initrd exited with status 3');
    expect(rebuiltTargets(result.stderr)).toEqual(['hello', 'hello.fragment.tar', 'hello.initrd', 'hello.rootfs.tar']);
    expect(copy.read('hello.runkvm')).toBe('Hello, World!\n');
  });
});
