// /etc/ld.so.cache is written by redo-ts from the image's ELF files, for any
// architecture: glibc's own `ldconfig -p -C` reads the same libraries from it as from
// the cache the real ldconfig writes for the same root; the dynamic linker in a chroot
// finds its libraries through it; an arm64 image's cache lists the same sonames as the
// amd64 image's (it was empty when the host's ldconfig wrote it), and both, locked from
// the machine's suites (updates and security included), make one image skopeo reads.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli } from '../helpers/rig.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-ld-cache-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const packages = ['dash', 'libc-bin', 'zlib1g', 'libssl3', 'libzstd1'];
const ldconfig = '/sbin/ldconfig';

/** Locks and builds the fragment for `architecture`; returns the unpacked root. */
const dir = join(scratch, 'project');
async function buildRoot(architecture: string): Promise<string> {
  mkdirSync(join(dir, 'targets'), { recursive: true });
  cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
  const spec = `targets/libs-${architecture}.spec.yaml`;
  writeFileSync(join(dir, spec), `name: libs-${architecture}\nversion: "1"\narchitecture: ${architecture}\npackages: [${packages.join(', ')}]\nexclude: [/usr/share/doc/**, /usr/share/man/**, /usr/share/locale/**]\n`);
  // The machine's apt suites: bookworm, bookworm-updates and bookworm-security, for this architecture.
  const locked = await runCli(dir, ['lock', spec]);
  expect(locked.code, locked.stderr).toBe(0);
  const built = await runCli(dir, [`targets/libs-${architecture}.fragment.tar`], { env: { REDO_TS_CACHE: join(scratch, 'cache') } });
  expect(built.code, built.stderr).toBe(0);
  const root = join(scratch, `${architecture}-root`);
  mkdirSync(root);
  execFileSync('tar', ['-xf', join(dir, 'targets', `libs-${architecture}.fragment.tar`), '-C', root, '--no-same-owner']);
  return root;
}

/** `ldconfig -p -C FILE` without its count and generator lines. */
function listing(cache: string): string[] {
  return execFileSync(ldconfig, ['-p', '-C', cache], { encoding: 'utf8' }).split('\n').filter((line) => line.startsWith('\t'));
}
const sonamesOf = (lines: string[]): string[] => [...new Set(lines.map((line) => line.trim().split(' ')[0]!))].sort();

const hasArm64 = (): boolean => {
  const listed = spawnSync('apt-get', ['indextargets', '--format', '$(ARCHITECTURE)'], { encoding: 'utf8' }).stdout ?? '';
  return listed.split('\n').includes('arm64');
};

describe('ld.so.cache', () => {
  let amd64Sonames: string[] = [];

  it('reads in glibc\'s ldconfig exactly as the cache ldconfig itself writes for the root, and the dynamic linker uses it', async () => {
    const root = await buildRoot('amd64');
    const ours = listing(join(root, 'etc/ld.so.cache'));
    expect(ours.length).toBeGreaterThan(10);
    expect(ours).toContain('\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1');
    amd64Sonames = sonamesOf(ours);
    const reference = join(scratch, 'reference');
    mkdirSync(reference);
    cpSync(root, join(reference, 'root'), { recursive: true, verbatimSymlinks: true });
    rmSync(join(reference, 'root', 'etc/ld.so.cache'));
    execFileSync('unshare', ['-r', ldconfig, '-X', '-r', join(reference, 'root')]);
    expect(ours).toEqual(listing(join(reference, 'root', 'etc/ld.so.cache')));

    const run = spawnSync('unshare', ['-r', '/usr/sbin/chroot', root, '/bin/dash', '-c', 'echo ok'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LD_DEBUG: 'libs' } });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe('ok\n');
    expect(run.stderr).toContain('search cache=/etc/ld.so.cache');
    expect(run.stderr).toMatch(/trying file=\/lib\/x86_64-linux-gnu\/libc\.so\.6/);
    expect(run.stderr).not.toContain('search path=');
  });

  it.skipIf(!hasArm64())('lists the same sonames for arm64 as for amd64, with the AArch64 flags ld.so checks', async () => {
    const root = await buildRoot('arm64');
    const ours = listing(join(root, 'etc/ld.so.cache'));
    expect(ours).toContain('\tlibz.so.1 (libc6,AArch64) => /lib/aarch64-linux-gnu/libz.so.1');
    expect(ours.every((line) => line.includes('(libc6,AArch64)'))).toBe(true);
    // The same libraries, less what only one architecture has: its dynamic loader's name, and
    // libmvec (glibc's vector maths, built for x86-64 only in Debian 12).
    const common = (sonames: string[]): string[] => sonames.filter((name) => !name.startsWith('ld-linux') && name !== 'libmvec.so.1');
    expect(common(sonamesOf(ours))).toEqual(common(amd64Sonames));
    expect(sonamesOf(ours)).toContain('ld-linux-aarch64.so.1');
    expect(readFileSync(join(root, 'etc/ld.so.cache')).subarray(0, 20).toString('latin1')).toBe('glibc-ld.so.cache1.1');
    // Both platforms in one image: locked from the same suites, so no version differs; skopeo reads its index.
    const lock = readFileSync(join(dir, 'targets', 'libs-arm64.lock.yaml'), 'utf8');
    expect(lock).toMatch(/suite: bookworm-security\n/);
    writeFileSync(join(dir, 'targets', 'libs.yaml'), 'tags: [localhost/libs:1]\nplatforms: [linux/amd64, linux/arm64]\nlayers: ["libs-${arch}.fragment.tar"]\n');
    const image = await runCli(dir, ['targets/libs.tar', 'targets/libs.oci.tar'], { env: { REDO_TS_CACHE: join(scratch, 'cache') } });
    expect(image.code, image.stderr).toBe(0);
    const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${join(dir, 'targets', 'libs.oci.tar')}:1`], { encoding: 'utf8' })) as { manifests: Array<{ platform: { architecture: string } }> };
    expect(index.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
  });
});
if (!hasArm64()) console.log('skipped the arm64 ld.so.cache test: apt has no arm64 indexes (run `dpkg --add-architecture arm64 && apt-get update`, as .ci/run does)');
