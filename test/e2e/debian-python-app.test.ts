// examples/python-app: a package list (python3 and friends) locked by `redo-ts lock`,
// built into an image that looks like Debian: podman runs the app (json, sqlite3, ssl,
// zlib, ctypes.util.find_library), dpkg-query lists exactly the locked packages, and
// `dpkg --verify` finds every shipped file intact. One build serves every assertion; the
// package cache is the shared one ($REDO_TS_CACHE or ~/.cache/redo-ts).
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivatePodman } from '../helpers/clients.js';
import { refreshVanishedLocks } from '../helpers/deb-locks.js';
import { copyWithRules, repoRoot, runCli } from '../helpers/rig.js';
import { sha256Of } from '../helpers/tutorial.js';

const copy = copyWithRules(join(repoRoot, 'examples', 'python-app'), 'redo-ts-python-app-');
const rootfs = mkdtempSync(join(tmpdir(), 'redo-ts-python-app-rootfs-'));
const podman = createPrivatePodman();
const image = 'localhost/examples/python-app:1';
afterAll(() => {
  podman.remove();
  for (const dir of [copy, rootfs]) rmSync(dir, { recursive: true, force: true });
});

/** Each locked package as `name version`, from the lock file. */
function lockedPackages(dir: string): string[] {
  const text = readFileSync(join(dir, 'targets', 'python.lock.yaml'), 'utf8');
  return [...text.matchAll(/^ {2}- name: (\S+)\n {4}version: "?([^"\n]+)"?$/gm)].map((m) => `${m[1]} ${m[2]}`);
}

const buildTimeoutMs = 240_000;

describe('examples/python-app', () => {
  beforeAll(async () => {
    // The committed lock may name versions a point release has since removed: `redo-ts
    // lock` then keeps what still exists and moves the rest, with a warning (deb-locks.ts).
    refreshVanishedLocks(copy, 'examples/python-app');
    const build = await runCli(copy, []);
    expect(build.code, build.stderr).toBe(0);
    execFileSync('tar', ['-xf', join(copy, 'targets', 'python.fragment.tar'), '-C', rootfs]);
  }, buildTimeoutMs);

  it('runs in podman and prints ok: json, sqlite3, ssl, zlib and ctypes.util.find_library("z") work', () => {
    expect(podman.podman(['load', '-i', join(copy, 'targets', 'app.tar')]).stdout).toContain(`Loaded image: ${image}`);
    expect(podman.podman(['run', ...podman.runArgs, image]).stdout).toBe('ok\n');
    expect(podman.podman(['run', ...podman.runArgs, image, 'python3', '-c', 'import ctypes.util; print(ctypes.util.find_library("ssl"))']).stdout).toBe('libssl.so.3\n');
  });

  it('has a dpkg database listing exactly the locked packages, and dpkg --verify is silent', () => {
    const listed = execFileSync('dpkg-query', [`--admindir=${join(rootfs, 'var/lib/dpkg')}`, '-W', '-f', '${Package} ${Version} ${db:Status-Abbrev}\n'], { encoding: 'utf8' });
    const locked = lockedPackages(copy);
    expect(locked.length).toBeGreaterThan(40);
    expect(listed.trim().split('\n').map((line) => line.trim())).toEqual(locked.map((line) => `${line} ii`));
    const verify = execFileSync('dpkg', [`--root=${rootfs}`, '--verify'], { encoding: 'utf8' });
    expect(verify).toBe('');
    // Multi-Arch: same packages get NAME:ARCH info files, as dpkg names them.
    expect(existsSync(join(rootfs, 'var/lib/dpkg/info/libc6:amd64.list'))).toBe(true);
    expect(readFileSync(join(rootfs, 'var/lib/dpkg/info/libc6:amd64.md5sums'), 'utf8')).toMatch(/^[0-9a-f]{32} {2}lib\/x86_64-linux-gnu\/libc\.so\.6$/m);
  });

  it('is merged-/usr as Debian 12 is, with the excluded files left out of files and database', () => {
    for (const top of ['bin', 'lib', 'lib64', 'sbin']) {
      expect(lstatSync(join(rootfs, top)).isSymbolicLink(), top).toBe(true);
      expect(readlinkSync(join(rootfs, top))).toBe(`usr/${top}`);
    }
    expect(existsSync(join(rootfs, 'usr/bin/python3.11'))).toBe(true);
    expect(existsSync(join(rootfs, 'usr/share/man'))).toBe(false);
    expect(existsSync(join(rootfs, 'usr/share/doc/zlib1g/changelog.Debian.gz'))).toBe(false);
    expect(existsSync(join(rootfs, 'usr/share/doc/zlib1g/copyright'))).toBe(true);
    const list = readFileSync(join(rootfs, 'var/lib/dpkg/info/zlib1g:amd64.list'), 'utf8');
    expect(list).not.toContain('/usr/share/doc/zlib1g/changelog.Debian.gz');
    expect(list).toContain('/usr/share/doc/zlib1g/copyright\n');
    // tzdata's own exclude applies to tzdata only.
    expect(existsSync(join(rootfs, 'usr/share/zoneinfo/Europe/Paris'))).toBe(true);
    expect(existsSync(join(rootfs, 'usr/share/zoneinfo/right'))).toBe(false);
  });

  it('has the effects of the maintainer scripts: ld.so.cache, pycs, users, alternatives', () => {
    expect(readFileSync(join(rootfs, 'etc/ld.so.cache')).subarray(0, 20).toString('latin1')).toContain('glibc-ld.so.cache');
    const pycache = readdirSync(join(rootfs, 'usr/lib/python3.11/__pycache__'));
    expect(pycache).toContain('json.cpython-311.pyc'.replace('json', 'ast'));
    // Unchecked-hash pycs (PEP 552 flags = 0b01): valid without source mtimes, the same bytes every build.
    expect(readFileSync(join(rootfs, 'usr/lib/python3.11/__pycache__/ast.cpython-311.pyc')).readUInt32LE(4)).toBe(1);
    expect(readFileSync(join(rootfs, 'etc/passwd'), 'utf8')).toMatch(/^root:\*:0:0:root:\/root:/);
    expect(readFileSync(join(rootfs, 'etc/group'), 'utf8')).toMatch(/^root:\*:0:/);
    expect(readlinkSync(join(rootfs, 'usr/bin/awk'))).toBe('/etc/alternatives/awk');
    expect(readlinkSync(join(rootfs, 'etc/alternatives/awk'))).toBe('/usr/bin/mawk');
    // base-files' postinst: folders, /var/run into /run, dotfiles, login records.
    expect(readlinkSync(join(rootfs, 'var/run'))).toBe('/run');
    expect(lstatSync(join(rootfs, 'var/mail')).gid).toBe(8);
    for (const path of ['media', 'mnt', 'opt', 'srv', 'run/lock', 'usr/local/bin', 'root/.profile', 'var/log/wtmp']) expect(existsSync(join(rootfs, path)), path).toBe(true);
  });

  it('reports the maintainer scripts it did not run', async () => {
    const log = await runCli(copy, ['log', 'targets/python.fragment.tar']);
    // libc-bin's postinst: the cache, and its `cp` of nsswitch.conf read as a command.
    expect(log.stdout + log.stderr).toContain('not run: libc-bin.postinst (reproduced: ld.so.cache, commands: users, owners, modes, files)');
    expect(log.stdout + log.stderr).toContain('not run: base-passwd.postinst (reproduced: users and groups from base-passwd)');
  });

  it('lists every locked package as a pin of the image', async () => {
    const pins = await runCli(copy, ['pins', 'targets/app.tar']);
    expect(pins.code, pins.stderr).toBe(0);
    for (const line of lockedPackages(copy)) expect(pins.stdout).toMatch(new RegExp(`deb +${line.split(' ')[0]!.replace(/[+.]/g, '\\$&')} +`));
  });

  it('answers contains, origin, sbom and audit from the lock and dpkg\'s database', async () => {
    const python3 = lockedPackages(copy).find((line) => line.startsWith('python3 '))!.split(' ')[1]!;
    const contains = await runCli(copy, ['contains', `python3=${python3}`]);
    expect(contains.code, contains.stderr).toBe(0);
    expect(contains.stdout).toMatch(new RegExp(`targets/app\\.tar +targets/python\\.fragment\\.tar +python3 +${python3.replace(/[+.]/g, '\\$&')} `));
    const origin = await runCli(copy, ['origin', 'targets/app.tar', '/usr/bin/python3.11']);
    expect(origin.code, origin.stderr).toBe(0);
    expect(origin.stdout).toMatch(/python3\.11-minimal/);
    // Through merged-/usr's /bin link, as the kernel would resolve it in the image.
    const throughLink = await runCli(copy, ['origin', 'targets/app.tar', '/bin/python3.11']);
    expect(throughLink.code, throughLink.stderr).toBe(0);
    expect(throughLink.stdout).toContain('via:         /bin/python3.11 → /usr/bin/python3.11');
    expect(throughLink.stdout).toMatch(/python3\.11-minimal/);
    const sbom = await runCli(copy, ['sbom', 'targets/app.tar']);
    expect(sbom.code, sbom.stderr).toBe(0);
    const names = new Set((JSON.parse(sbom.stdout) as { packages: { name: string }[] }).packages.map((p) => p.name));
    for (const line of lockedPackages(copy)) expect(names).toContain(line.split(' ')[0]);
    const audit = await runCli(copy, ['audit', 'targets/app.tar']);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  });

  it('rebuilds nothing when nothing changed, and only the app layer when the app changes', async () => {
    const before = sha256Of(join(copy, 'targets', 'python.fragment.tar'));
    const again = await runCli(copy, []);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/^redo /m);
    execFileSync('sh', ['-c', `printf '\\n# a comment\\n' >> ${join(copy, 'src', 'app.py')}`]);
    const edited = await runCli(copy, []);
    expect(edited.code, edited.stderr).toBe(0);
    expect(edited.stderr).toMatch(/^redo {2}targets\/app\.fragment\.tar/m);
    expect(edited.stderr).not.toMatch(/^redo {2}targets\/python\.fragment\.tar/m);
    expect(sha256Of(join(copy, 'targets', 'python.fragment.tar'))).toBe(before);
  });
});
