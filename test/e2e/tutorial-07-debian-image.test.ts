// Tutorial chapter 7 (a Debian image from a package list): the committed locks are
// brought up to date with `redo-ts lock` (as a reader would after a pull), the image is
// built without dpkg or root, podman runs the C program compiled against the pinned
// -dev packages, dpkg's tools recognise the base layer, and `redo-ts pins` lists every
// locked package. The package cache is the shared one.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPrivatePodman, runTool } from '../helpers/clients.js';
import { copyChapter, rebuiltTargets, sha256Of, shownFiles } from '../helpers/tutorial.js';

const chapter = '07-debian-image';
const copy = copyChapter(chapter);
const rootfs = mkdtempSync(join(tmpdir(), 'redo-ts-tutorial-07-rootfs-'));
const podman = createPrivatePodman();
const image = 'localhost/tutorial/debian:12';
afterAll(() => {
  copy.remove();
  podman.remove();
  rmSync(rootfs, { recursive: true, force: true });
});

/** Runs `podman run IMAGE ARGS` and returns its stdout. */
function run(...args: string[]): string {
  return podman.podman(['run', ...podman.runArgs, image, ...args]).stdout;
}
/** `name version` of each package a lock names. */
function locked(lock: string): string[] {
  return [...copy.read(lock).matchAll(/^ {2}- name: (\S+)\n {4}version: "?([^"\n]+)"?$/gm)].map((m) => `${m[1]} ${m[2]}`);
}

// Fetching about 45 packages through apt on a cold cache, then unpacking them.
const buildTimeoutMs = 300_000;

describe('tutorial chapter 7: a Debian image from a package list', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual(['all.do', 'base.spec.yaml', 'debian.yaml', 'hello.c', 'hello.spec.yaml', 'toolchain.spec.yaml', 'zlib-dev.spec.yaml']);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('locks the package lists and builds the image from the locks', { timeout: buildTimeoutMs }, async () => {
    const lock = await copy.redo(['lock']);
    expect(lock.status, lock.stderr).toBe(0);
    expect(locked('base.lock.yaml').map((line) => line.split(' ')[0])).toEqual(expect.arrayContaining(['base-files', 'coreutils', 'dash', 'libc6', 'libselinux1', 'mawk', 'zlib1g']));
    expect(locked('zlib-dev.lock.yaml').map((line) => line.split(' ')[0])).toEqual(expect.arrayContaining(['libc6-dev', 'linux-libc-dev', 'zlib1g-dev']));
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['all', 'base.fragment.tar', 'build-environment.fragment.tar', 'debian.image.json', 'debian.oci.tar', 'debian.tar', 'hello.fragment.tar', 'toolchain.fragment.tar', 'zlib-dev.fragment.tar']);
    const layers = (JSON.parse(runTool('skopeo', ['inspect', `docker-archive:${join(copy.dir, 'debian.tar')}`]).stdout) as { Layers: string[] }).Layers;
    expect(layers).toEqual(['base', 'hello'].map((name) => sha256Of(join(copy.dir, `${name}.fragment.tar`))));
    execFileSync('tar', ['-xf', join(copy.dir, 'base.fragment.tar'), '-C', rootfs]);
  });

  it('has a base layer dpkg recognises: exactly the locked packages, every file intact, merged /usr', () => {
    const listed = execFileSync('dpkg-query', [`--admindir=${join(rootfs, 'var/lib/dpkg')}`, '-W', '-f', '${Package} ${Version}\n'], { encoding: 'utf8' });
    expect(listed.trim().split('\n')).toEqual(locked('base.lock.yaml'));
    expect(execFileSync('dpkg', [`--root=${rootfs}`, '--verify'], { encoding: 'utf8' })).toBe('');
    expect(readlinkSync(join(rootfs, 'bin'))).toBe('usr/bin');
    expect(lstatSync(join(rootfs, 'usr/share/man'), { throwIfNoEntry: false })).toBeUndefined();
    expect(readFileSync(join(rootfs, 'etc/ld.so.cache')).subarray(0, 20).toString('latin1')).toContain('glibc-ld.so.cache');
  });

  it('runs the C program built against the pinned zlib, and the packages\' programs with names from the user tables', () => {
    const load = podman.podman(['load', '-i', join(copy.dir, 'debian.tar')]);
    expect(load.stdout).toContain(`Loaded image: ${image}`);
    const zlib = locked('base.lock.yaml').find((line) => line.startsWith('zlib1g '))!.split(' ')[1]!;
    expect(run()).toBe(`hello from Debian, compressing with zlib ${/^1:([0-9.]+)/.exec(zlib)![1]!.replace(/\.$/, '')}\n`);
    expect(run('cat', '/etc/debian_version')).toMatch(/^12\.[0-9]+\n$/);
    expect(run('ls', '-ld', '/tmp', '/var/local', '/var/mail')).toBe(
      [
        'drwxrwxrwt 2 root root  4096 Jan  1  1970 /tmp',
        'drwxrwsr-x 2 root staff 4096 Jan  1  1970 /var/local',
        'drwxrwsr-x 2 root mail  4096 Jan  1  1970 /var/mail',
        '',
      ].join('\n'),
    );
    expect(run('sh', '-c', '. /etc/os-release; echo "$PRETTY_NAME"; id; readlink /bin/sh')).toBe('Debian GNU/Linux 12 (bookworm)\nuid=0(root) gid=0(root) groups=0(root)\ndash\n');
  });

  it('is reproducible: `redo-ts verify` rebuilds it elsewhere and finds the same bytes', { timeout: buildTimeoutMs }, async () => {
    const result = await copy.redo(['verify', 'debian.tar']);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toBe(`identical: debian.tar ${sha256Of(join(copy.dir, 'debian.tar'))}\n`);
  });

  it('rebuilds only the program and the image when hello.c changes', async () => {
    copy.write('hello.c', copy.read('hello.c').replace('hello from Debian', 'hello again from Debian'));
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['all', 'debian.image.json', 'debian.oci.tar', 'debian.tar', 'hello.fragment.tar']);
  });

  it('lists every locked package of the image with its pin', async () => {
    const result = await copy.redo(['pins', 'debian.tar']);
    expect(result.status, result.stderr).toBe(0);
    const names = result.stdout.trim().split('\n').slice(1).filter((line) => line.startsWith('deb ')).map((line) => line.split(/ +/)[1]);
    expect(names).toEqual(expect.arrayContaining(locked('base.lock.yaml').map((line) => line.split(' ')[0])));
  });
});
