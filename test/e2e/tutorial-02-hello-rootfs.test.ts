// Tutorial chapter 2 (a Hello World rootfs): builds the rootfs from a pinned busybox
// package and a program compiled on the host, runs it with `unshare -r chroot`, and
// checks the outputs, the rootfs listing and what an edit rebuilds.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyChapter, rebuiltTargets, sha256Of, shownFiles } from '../helpers/tutorial.js';

const chapter = '02-hello-rootfs';
const copy = copyChapter(chapter);
afterAll(() => copy.remove());

describe('tutorial chapter 2: a Hello World rootfs', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual([
      'all.do',
      'build-environment.spec.yaml',
      'busybox.spec.yaml',
      'greet',
      'hello.c',
      'hello.do',
      'hello.rootfs.tar.do.ts',
      'hello.spec.yaml',
      'toolchain.spec.yaml',
    ]);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('builds the rootfs and runs the program and the shell script in it', async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual([
      'all',
      'build-environment.fragment.tar',
      'busybox.fragment.tar',
      'hello',
      'hello.fragment.tar',
      'hello.greet.runlocal',
      'hello.rootfs.tar',
      'hello.runlocal',
      'toolchain.fragment.tar',
    ]);
    // The compiler was the toolchain spec's locked gcc, in the sandbox.
    expect(result.stderr).toContain('(build-environment.spec.yaml, toolchain.spec.yaml)');
    expect(copy.read('hello.runlocal')).toBe('Hello, World!\n');
    expect(copy.read('hello.greet.runlocal')).toBe('Hello, World!\nsh is busybox; /bin holds: busybox greet hello ls readlink sh tr \n');
  });

  it('takes busybox from the pinned package: the same fragment bytes on every machine', () => {
    // Only the committed pin has a known digest; once it left the archive the copy builds
    // from another version (copy.refreshedPins), whose bytes the other tests still check.
    if (copy.refreshedPins.length > 0) return;
    expect(sha256Of(join(copy.dir, 'busybox.fragment.tar'))).toBe(
      'sha256:5afe0722f234763ac96ff0ac26707bb23deefcbb6bba1812c90d173c208478a6',
    );
  });

  it('writes every rootfs entry with a fixed owner and time, in path order', () => {
    const listing = execFileSync('tar', ['-tvf', join(copy.dir, 'hello.rootfs.tar'), '--numeric-owner'], { env: { TZ: 'UTC', LC_ALL: 'C' } })
      .toString()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.replace(/ +/g, ' '));
    expect(listing.map((line) => line.split(' ').slice(-1)[0] === 'busybox' ? line.split(' ').slice(-3).join(' ') : line.split(' ').pop())).toEqual([
      'bin/',
      'bin/busybox',
      'bin/greet',
      'bin/hello',
      'bin/ls -> busybox',
      'bin/readlink -> busybox',
      'bin/sh -> busybox',
      'bin/tr -> busybox',
    ]);
    for (const line of listing) expect(line).toMatch(/^[-dl]r[-w]x.* 0\/0 \d+ 1970-01-01 00:00 /);
  });

  it('runs nothing on a second build', async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual([]);
  });

  it('rebuilds the program, the rootfs and the runs after an edit of hello.c, but not the busybox fragment', async () => {
    copy.write('hello.c', copy.read('hello.c').replace('Hello, World!', 'Hello, rootfs!'));
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['all', 'hello', 'hello.fragment.tar', 'hello.greet.runlocal', 'hello.rootfs.tar', 'hello.runlocal']);
    expect(copy.read('hello.runlocal')).toBe('Hello, rootfs!\n');
  });

  it('fails with the program\'s exit status and keeps the previous output when the program fails', async () => {
    copy.write('hello.c', copy.read('hello.c').replace('return 0;', 'return 3;'));
    const result = await copy.redo(['hello.runlocal']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('runlocal: "/bin/hello" in hello.rootfs.tar exited with status 3');
    expect(result.stderr).toContain('exited with status 3');
    expect(copy.read('hello.runlocal')).toBe('Hello, rootfs!\n');
  });
});
