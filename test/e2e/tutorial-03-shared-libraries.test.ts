// Tutorial chapter 3 (shared libraries): a dynamically linked program compiled by the
// locked gcc in the build sandbox, its libraries found with ldd (the locked loader's
// listing mode) in the sandbox and copied from the locked libc6 into their own
// fragment, the rootfs guarded by the ELF closure check and run with `unshare -r chroot`.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyChapter, rebuiltTargets, shownFiles } from '../helpers/tutorial.js';

const chapter = '03-shared-libraries';
const copy = copyChapter(chapter);
afterAll(() => copy.remove());

function members(tar: string): string[] {
  return execFileSync('tar', ['-tf', join(copy.dir, tar)]).toString().split('\n').filter((line) => line !== '');
}

/** One member's bytes, read with tar. */
function memberBytes(tar: string, member: string): Buffer {
  return execFileSync('tar', ['-xOf', join(copy.dir, tar), member], { maxBuffer: 1 << 26 });
}

describe('tutorial chapter 3: shared libraries', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual([
      'all.do',
      'default.rootfs.tar.do.ts',
      'hello-libs.spec.yaml',
      'hello.spec.yaml',
    ]);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('finds the C library and the loader with ldd in the sandbox, from the locked libc6, and nothing else', async () => {
    // A host compiler and ldd that would fail come first on the caller's PATH: unused.
    const fakes = join(copy.dir, 'host-bin');
    mkdirSync(fakes);
    for (const tool of ['cc', 'gcc', 'ldd']) {
      writeFileSync(join(fakes, tool), `#!/bin/sh\necho "host ${tool} was run" >&2\nexit 1\n`);
      chmodSync(join(fakes, tool), 0o755);
    }
    const result = await copy.redo(['hello-libs.fragment.tar'], { env: { PATH: `${fakes}:${process.env.PATH}` } });
    expect(result.status, result.stderr).toBe(0);
    // Both specs' steps ran over the locked packages, never the host's compiler or ldd.
    expect(result.stderr).toContain('(build-environment.spec.yaml, toolchain.spec.yaml)');
    expect(result.stderr).toContain('(build-environment.spec.yaml, toolchain.spec.yaml, hello.spec.yaml)');
    expect(members('hello-libs.fragment.tar')).toEqual([
      'lib/',
      'lib/x86_64-linux-gnu/',
      'lib/x86_64-linux-gnu/libc.so.6',
      'lib64/',
      'lib64/ld-linux-x86-64.so.2',
    ]);
    // The files are the locked package's, byte for byte (the toolchain's root has merged
    // /usr: /lib is usr/lib; /lib64/ld-linux-x86-64.so.2 is a symlink, followed).
    for (const [member, inToolchain] of [
      ['lib/x86_64-linux-gnu/libc.so.6', 'usr/lib/x86_64-linux-gnu/libc.so.6'],
      ['lib64/ld-linux-x86-64.so.2', 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'],
    ] as const) {
      expect(memberBytes('hello-libs.fragment.tar', member).equals(memberBytes('toolchain.fragment.tar', inToolchain)), member).toBe(true);
    }
  });

  it('runs the dynamic program in a rootfs holding only it and those files', async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(copy.read('hello.runlocal')).toBe('Hello, World!\n');
    const files = members('hello.rootfs.tar').filter((member) => !member.endsWith('/'));
    expect(files).toEqual(['bin/hello', 'lib/x86_64-linux-gnu/libc.so.6', 'lib64/ld-linux-x86-64.so.2']);
  });

  it('runs nothing on a second build', async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual([]);
  });

  it('stops at the program\'s fragment after a comment-only edit of hello.c (early cutoff)', async () => {
    copy.write('hello.c', copy.read('hello.c').replace('puts into a root file system', 'puts into a root file system, edited'));
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['hello.fragment.tar']);
  });

  it('refuses a rootfs whose libraries ldd would have missed (the ELF closure check)', async () => {
    const spec = copy.read('hello-libs.spec.yaml');
    copy.write('hello-libs.spec.yaml', spec.replace('  - path: /lib64/**\n', ''));
    try {
      const result = await copy.redo(['all']);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('redo: "hello.rootfs.tar": 3 libraries ELF files need are not in the image');
      expect(result.stderr).toContain('/bin/hello needs /lib64/ld-linux-x86-64.so.2 (binary in layer hello.fragment.tar)');
    } finally {
      copy.write('hello-libs.spec.yaml', spec);
    }
  });

  it('fails to run the program without its libraries', async () => {
    const result = await copy.redo(['bare.hello.runlocal']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('runlocal: "/bin/hello" in bare.rootfs.tar exited with status 127');
    expect(members('bare.rootfs.tar')).toEqual(['bin/', 'bin/hello']);
  });
});
