// `redo-ts lock` over several mirrors and suites, as Debian serves them: the security
// archive at its own URL, bookworm-updates offering only Packages.xz, every index checked
// against its signed Release file (compressed and uncompressed); the build fetches each
// package from the mirror of its suite; a data.tar.zst package (dpkg-deb -Zzstd)
// unpacks; a foreign architecture apt has no indexes for gets the dpkg hint.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveTinyArchive, type TinyArchive } from '../helpers/debian-mirror.js';
import { repoRoot, runCli } from '../helpers/rig.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-debian-suites-'));
let archive: TinyArchive;
beforeAll(async () => {
  archive = await serveTinyArchive(join(scratch, 'archive'), [
    { root: 'debian', suite: 'bookworm', compressions: ['.gz', ''], packages: [
      { name: 'tiny-base', version: '1.0' },
      { name: 'tiny-lib', version: '1.0' },
      { name: 'tiny-app', version: '1.0', depends: 'tiny-base (>= 1.0), tiny-lib', compression: 'zstd', files: { 'usr/share/tiny-app/hello.txt': 'hello from zstd\n' } },
    ] },
    { root: 'debian', suite: 'bookworm-updates', compressions: ['.xz'], packages: [{ name: 'tiny-lib', version: '1.1' }] },
    { root: 'debian-security', suite: 'bookworm-security', compressions: ['.xz'], packages: [{ name: 'tiny-base', version: '1.0+deb12u1' }] },
  ]);
});
afterAll(async () => {
  await archive?.close();
  rmSync(scratch, { recursive: true, force: true });
});

function project(name: string, spec: string): string {
  const dir = join(scratch, name);
  mkdirSync(join(dir, 'targets'), { recursive: true });
  cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
  writeFileSync(join(dir, 'targets', 'tiny.spec.yaml'), spec);
  return dir;
}
/** An apt configuration that knows no package source: a build can only use the lock's mirrors. */
function aptWithoutSources(): string {
  const path = join(scratch, 'apt-empty.conf');
  mkdirSync(join(scratch, 'apt-empty'), { recursive: true });
  writeFileSync(path, `Dir::Etc::sourcelist "${scratch}/apt-empty/none.list";\nDir::Etc::sourceparts "${scratch}/apt-empty";\nDir::State::lists "${scratch}/apt-empty/";\n`);
  return path;
}
const mirrorArgs = (): string[] => [
  '--mirror', `${archive.base}/debian`, '--suite', 'bookworm', '--suite', 'bookworm-updates',
  '--mirror', `${archive.base}/debian-security`, '--suite', 'bookworm-security', '--keyring', archive.keyringPath,
];

describe('lock from several mirrors and suites', () => {
  const dir = project('two-mirrors', 'name: tiny\nversion: "1"\narchitecture: amd64\npackages:\n  - tiny-app\n');

  it('reads Packages.xz where only it exists, takes security fixes from the second mirror, and records where each suite came from', async () => {
    const result = await runCli(dir, ['lock', ...mirrorArgs()]);
    expect(result.code, result.stderr).toBe(0);
    const lock = readFileSync(join(dir, 'targets', 'tiny.lock.yaml'), 'utf8');
    expect(lock).toContain(`mirror: "${archive.base}/debian"\n`);
    expect(lock).toMatch(/- name: tiny-base\n {4}version: 1\.0\+deb12u1\n(?: {4}.*\n)*? {4}suite: bookworm-security\n/);
    expect(lock).toMatch(/- name: tiny-lib\n {4}version: "?1\.1"?\n(?: {4}.*\n)*? {4}suite: bookworm-updates\n/);
    expect(lock).toMatch(/- suite: bookworm-security\n(?: {4}.*\n)*? {4}mirror: "http:\/\/127\.0\.0\.1:[0-9]+\/debian-security"\n/);
    // As apt does: the compressed file listed in the Release file, never a guess.
    expect(archive.requests).toContain('/debian/dists/bookworm-updates/main/binary-amd64/Packages.xz');
    expect(archive.requests).toContain('/debian/dists/bookworm/main/binary-amd64/Packages.gz');
    expect(archive.requests.filter((url) => url.includes('bookworm-updates') && !url.endsWith('.xz') && !url.endsWith('InRelease'))).toEqual([]);
  });

  it('fetches each package from the mirror of its suite, and unpacks a data.tar.zst package', async () => {
    const env = { REDO_TS_CACHE: join(scratch, 'cache'), APT_CONFIG: aptWithoutSources() };
    const built = await runCli(dir, ['targets/tiny.fragment.tar'], { env });
    expect(built.code, built.stderr).toBe(0);
    expect(archive.requests.some((url) => /^\/debian-security\/pool\/.*tiny-base_1\.0\+deb12u1_amd64\.deb$/.test(url))).toBe(true);
    expect(archive.requests.some((url) => /^\/debian\/pool\/.*tiny-lib_1\.1_amd64\.deb$/.test(url))).toBe(true);
    const hello = execFileSync('tar', ['-xOf', join(dir, 'targets', 'tiny.fragment.tar'), 'usr/share/tiny-app/hello.txt'], { encoding: 'utf8' });
    expect(hello).toBe('hello from zstd\n');
    const list = execFileSync('tar', ['-xOf', join(dir, 'targets', 'tiny.fragment.tar'), 'var/lib/dpkg/info/tiny-app.list'], { encoding: 'utf8' });
    expect(list).toContain('/usr/share/tiny-app/hello.txt');
  });

  it('refuses a compressed index whose bytes differ from the signed Release file', async () => {
    const tampered = project('tampered', 'name: tiny\nversion: "1"\narchitecture: amd64\npackages:\n  - tiny-app\n');
    const path = '/debian/dists/bookworm-updates/main/binary-amd64/Packages.xz';
    const original = (await fetch(`${archive.base}${path}`).then((r) => r.arrayBuffer()));
    archive.tamper(path, execFileSync('xz', ['-c', '-9'], { input: execFileSync('xz', ['-dc'], { input: Buffer.from(original) }) }));
    try {
      const result = await runCli(tampered, ['lock', ...mirrorArgs()]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`redo: "${archive.base}${path}": index does not match its signed Release file`);
      expect(result.stderr).toMatch(/wanted: sha256 [0-9a-f]{64}, [0-9]+ bytes/);
    } finally {
      archive.tamper(path, Buffer.from(original));
    }
  });

  it('refuses a --mirror with no --suite after it', async () => {
    const result = await runCli(dir, ['lock', '--mirror', `${archive.base}/debian`, '--suite', 'bookworm', '--mirror', `${archive.base}/debian-security`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`no --suite after --mirror ${archive.base}/debian-security`);
  });
});

describe('a foreign architecture through apt', () => {
  it('says to add the architecture to dpkg before apt-get update', async () => {
    const foreign = execFileSync('dpkg', ['--print-foreign-architectures'], { encoding: 'utf8' }).split('\n');
    expect(foreign).not.toContain('s390x');
    const dir = project('foreign', 'name: tiny\nversion: "1"\narchitecture: s390x\npackages:\n  - zlib1g\n');
    const result = await runCli(dir, ['lock']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no verified package index for s390x');
    expect(result.stderr).toContain('hint: apt fetches indexes only for dpkg\'s architectures: run `dpkg --add-architecture s390x` then `apt-get update`');
  });
});
