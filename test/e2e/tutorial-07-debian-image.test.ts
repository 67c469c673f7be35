// Tutorial chapter 7 (a Debian image from pinned packages): twelve pinned .deb files
// unpacked without dpkg or root into three layers with the packages' own owners and
// modes; podman runs coreutils and dash in the result; `redo-ts pins` lists every package.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPrivatePodman, runTool } from '../helpers/clients.js';
import { copyChapter, rebuiltTargets, sha256Of, shownFiles } from '../helpers/tutorial.js';

const chapter = '07-debian-image';
const copy = copyChapter(chapter);
const cache = mkdtempSync(join(tmpdir(), 'redo-ts-tutorial-07-cache-'));
const env = { REDO_TS_CACHE: cache };
const podman = createPrivatePodman();
const image = 'localhost/tutorial/debian:12';
afterAll(() => {
  copy.remove();
  podman.remove();
  rmSync(cache, { recursive: true, force: true });
});

/** `tar -tv` of a fragment with numeric owners, one line per member, spaces squeezed. */
function listing(fragment: string): string[] {
  return execFileSync('tar', ['-tvf', join(copy.dir, fragment), '--numeric-owner'], { env: { TZ: 'UTC', LC_ALL: 'C' } })
    .toString()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/ +/g, ' '));
}

/** Runs `podman run IMAGE ARGS` and returns its stdout. */
function run(...args: string[]): string {
  return podman.podman(['run', ...podman.runArgs, image, ...args]).stdout;
}

// Fetching twelve packages (7 MB) through apt once, then unpacking them.
const buildTimeoutMs = 300_000;

describe('tutorial chapter 7: a Debian image from pinned packages', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual(['all.do', 'base.spec.yaml', 'debian.yaml', 'libc.spec.yaml', 'tools.spec.yaml']);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('builds three fragments from the pinned packages and the image from them', { timeout: buildTimeoutMs }, async () => {
    const result = await copy.redo(['all'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual([
      'all',
      'base.fragment.tar',
      'debian.oci.tar',
      'debian.tar',
      'libc.fragment.tar',
      'tools.fragment.tar',
    ]);
    const layers = (JSON.parse(runTool('skopeo', ['inspect', `docker-archive:${join(copy.dir, 'debian.tar')}`]).stdout) as { Layers: string[] }).Layers;
    expect(layers).toEqual(['base', 'libc', 'tools'].map((name) => sha256Of(join(copy.dir, `${name}.fragment.tar`))));
  });

  it('keeps the owners and modes the packages record, and the spec gives /var/mail its group', () => {
    const base = listing('base.fragment.tar');
    expect(base).toContain('drwxrwxrwt 0/0 0 1970-01-01 00:00 tmp/');
    expect(base).toContain('drwxrwsr-x 0/50 0 1970-01-01 00:00 var/local/');
    expect(base).toContain('drwxrwsr-x 0/8 0 1970-01-01 00:00 var/mail/');
    expect(base.some((line) => line.endsWith(' etc/passwd'))).toBe(true);
    expect(base.some((line) => line.includes('usr/share/doc/base-files/changelog.gz'))).toBe(false);
    const libc = listing('libc.fragment.tar');
    expect(libc.some((line) => line.includes('/gconv/'))).toBe(false);
    expect(libc).toContain('lrwxrwxrwx 0/0 0 1970-01-01 00:00 lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
    const tools = listing('tools.fragment.tar');
    expect(tools).toContain('lrwxrwxrwx 0/0 0 1970-01-01 00:00 bin/sh -> dash');
    expect(tools.some((line) => line.includes('usr/share/man/'))).toBe(false);
  });

  it('loads into podman and runs the packages\' programs, with names from the user tables', () => {
    const load = podman.podman(['load', '-i', join(copy.dir, 'debian.tar')]);
    expect(load.stdout).toContain(`Loaded image: ${image}`);
    expect(run('cat', '/etc/debian_version')).toBe('12.15\n');
    expect(run('ls', '-l', '/bin/sh', '/bin/ls', '/usr/bin/id')).toBe(
      [
        '-rwxr-xr-x 1 root root 151344 Jan  1  1970 /bin/ls',
        'lrwxrwxrwx 1 root root      4 Jan  1  1970 /bin/sh -> dash',
        '-rwxr-xr-x 1 root root  48144 Jan  1  1970 /usr/bin/id',
        '',
      ].join('\n'),
    );
    expect(run('ls', '-ld', '/tmp', '/var/local', '/var/mail')).toBe(
      [
        'drwxrwxrwt 2 root root  4096 Jan  1  1970 /tmp',
        'drwxrwsr-x 2 root staff 4096 Jan  1  1970 /var/local',
        'drwxrwsr-x 2 root mail  4096 Jan  1  1970 /var/mail',
        '',
      ].join('\n'),
    );
    expect(run('sh', '-c', '. /etc/os-release; echo "$PRETTY_NAME"; id')).toBe('Debian GNU/Linux 12 (bookworm)\nuid=0(root) gid=0(root) groups=0(root)\n');
  });

  it('is reproducible: `redo-ts verify` rebuilds it elsewhere and finds the same bytes', { timeout: buildTimeoutMs }, async () => {
    const result = await copy.redo(['verify', 'debian.tar'], { env });
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toBe(`identical: debian.tar ${sha256Of(join(copy.dir, 'debian.tar'))}\n`);
  });

  it('lists every package the image was built from, with its pin', async () => {
    const result = await copy.redo(['pins', 'debian.tar'], { env });
    expect(result.status, result.stderr).toBe(0);
    const names = result.stdout.trim().split('\n').slice(1).map((line) => line.split(/ +/).slice(0, 2).join(' '));
    expect(names).toEqual([
      'deb base-files',
      'deb base-passwd',
      'deb libc6',
      'deb libgcc-s1',
      'deb gcc-12-base',
      'deb dash',
      'deb coreutils',
      'deb libacl1',
      'deb libattr1',
      'deb libgmp10',
      'deb libselinux1',
      'deb libpcre2-8-0',
    ]);
  });
});
