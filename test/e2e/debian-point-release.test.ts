// A point release, simulated on a local archive (test/helpers/apt-mirror.ts) whose
// contents the test decides, so the outcome is the same on any day and any machine:
// packages built with dpkg-deb are locked (Release checked against the test's own key)
// and built; the archive then moves one version forward. A build from the old lock
// names exactly the packages apt (or a mirror base URL) can no longer fetch, with apt's
// line as evidence, whichever way apt words it; `redo-ts lock` moves the lock and the
// build passes again; `redo-ts cache add` of .debs builds a lock without the archive.
// A spec pinning `deb:NAME=VERSION` fails with a hint whose fix (the new version, then
// `redo-ts pin --update`) works, and is kept buildable in a test's copy by
// refreshVanishedDebPins (test/helpers/deb-pins.ts), which tutorial and project copies
// go through; a copy of a committed lock, by refreshVanishedLocks (deb-locks.ts).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDeb, startAptMirror, type AptMirror } from '../helpers/apt-mirror.js';
import { refreshVanishedLocks } from '../helpers/deb-locks.js';
import { refreshVanishedDebPins } from '../helpers/deb-pins.js';
import { repoRoot, runCli } from '../helpers/rig.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-point-release-'));
const debs = join(scratch, 'debs');
let mirror: AptMirror;
afterAll(async () => {
  await mirror?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const dir = join(scratch, 'project');
mkdirSync(join(dir, 'targets'), { recursive: true });
cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
writeFileSync(join(dir, 'targets', 'demo.spec.yaml'), 'name: demo\nversion: "1"\npackages: [demo-tool]\n');
const lockOf = (): string => readFileSync(join(dir, 'targets', 'demo.lock.yaml'), 'utf8');
/** `name version` of each locked package. */
const locked = (): string[] => [...lockOf().matchAll(/^ {2}- name: (\S+)\n {4}version: "?([^"\n]+)"?$/gm)].map((m) => `${m[1]} ${m[2]}`);

const tool = buildDeb(debs, { name: 'demo-tool', version: '2.0-1', depends: 'libdemo1 (>= 1:1.0), demo-data' });
// /etc is where the build writes ld.so.cache (by the image's ldconfig, run from the machine).
const data = buildDeb(debs, { name: 'demo-data', version: '2.0-1', architecture: 'all', files: { 'etc/demo.conf': 'demo\n' } });
const libOld = buildDeb(debs, { name: 'libdemo1', version: '1:1.0-1', source: 'demo', multiArch: 'same' });
const libNew = buildDeb(debs, { name: 'libdemo1', version: '1:1.0-1+deb12u1', source: 'demo', multiArch: 'same' });

/** The SRI sha256 of a file, as a pin. */
const sha = (path: string): string => `sha256-${createHash('sha256').update(readFileSync(path)).digest('base64')}`;

/** A build of the demo fragment with an empty package cache of its own (so every .deb is fetched). */
async function buildWithColdCache(cache: string): Promise<{ code: number; stderr: string }> {
  return runCli(dir, ['-f', 'targets/demo.fragment.tar'], { env: { ...mirror.env, REDO_TS_CACHE: join(scratch, cache) } });
}

describe('a point release on a local archive', () => {
  beforeAll(async () => {
    mirror = await startAptMirror(join(scratch, 'mirror'));
    await mirror.publish([tool, data, libOld]);
  });

  it('locks from the archive (its Release checked against the test\'s key) and builds', async () => {
    const lock = await runCli(dir, ['lock', '--keyring', mirror.keyring], { env: mirror.env });
    expect(lock.code, lock.stderr).toBe(0);
    expect(locked()).toEqual(['demo-data 2.0-1', 'demo-tool 2.0-1', 'libdemo1 1:1.0-1']);
    const built = await buildWithColdCache('cache-1');
    expect(built.code, built.stderr).toBe(0);
    const listed = execFileSync('tar', ['-tf', join(dir, 'targets', 'demo.fragment.tar')], { encoding: 'utf8' });
    expect(listed).toContain('usr/share/libdemo1/version');
  });

  it('names only the package that left the archive, with apt\'s words, when apt knows nothing of it', async () => {
    await mirror.publish([tool, data, libNew]);
    const failed = await buildWithColdCache('cache-2');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('redo: "targets/demo.lock.yaml": package libdemo1=1:1.0-1 cannot be fetched\n');
    expect(failed.stderr).toContain('apt-get: E: Version \'1:1.0-1\' for \'libdemo1\' was not found');
    expect(failed.stderr).toContain('hint: old versions leave the archive: `redo-ts lock` moves just the ones it no longer has');
    expect(failed.stderr).not.toMatch(/demo-tool=|demo-data=/);
  });

  it('names it too when apt knows the version only as installed ("Can\'t find a source ... of \'NAME:ARCH\'")', async () => {
    // The machine has the old version installed, as CI machines often have libc6.
    mirror.setInstalled([{ name: 'libdemo1', version: '1:1.0-1' }, { name: 'demo-tool', version: '2.0-1' }]);
    try {
      const failed = await buildWithColdCache('cache-3');
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain('redo: "targets/demo.lock.yaml": package libdemo1=1:1.0-1 cannot be fetched\n');
      expect(failed.stderr).toContain('apt-get: E: Can\'t find a source to download version \'1:1.0-1\' of \'libdemo1:amd64\'');
      expect(failed.stderr).not.toMatch(/demo-tool=|demo-data=/);
    } finally {
      mirror.setInstalled([]);
    }
  });

  it('names every package whose file the mirror no longer serves, and only those', async () => {
    const [toolFile, dataFile] = await mirror.publish([tool, data, libOld]);
    mirror.removeFromPool(toolFile!);
    mirror.removeFromPool(dataFile!);
    const failed = await buildWithColdCache('cache-4');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('redo: "targets/demo.lock.yaml": 2 packages cannot be fetched\n');
    expect(failed.stderr).toContain('packages: demo-data=2.0-1, demo-tool=2.0-1\n');
    expect(failed.stderr).toMatch(/^ {2}apt-get: E: Failed to fetch http:\/\/127\.0\.0\.1:[0-9]+\/debian\/pool\/main\/d\/demo-tool\/demo-tool_2\.0-1_amd64\.deb {2}404 {2}Not Found$/m);
    expect(failed.stderr).toMatch(/^ {2}apt-get: E: Failed to fetch .*\/demo-data_2\.0-1_all\.deb {2}404 {2}Not Found$/m);
    expect(failed.stderr).not.toContain('libdemo1=');
  });

  it('locked from a mirror base URL, names every file the mirror did not serve', async () => {
    const other = join(scratch, 'from-mirror');
    cpSync(dir, other, { recursive: true });
    const lock = await runCli(other, ['lock', '--mirror', mirror.url, '--suite', mirror.suite, '--keyring', mirror.keyring]);
    expect(lock.code, lock.stderr).toBe(0);
    const failed = await runCli(other, ['-f', 'targets/demo.fragment.tar'], { env: { REDO_TS_CACHE: join(scratch, 'cache-mirror') } });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('redo: "targets/demo.lock.yaml": 2 packages cannot be fetched\n');
    expect(failed.stderr).toContain('why: the mirror did not serve them\n');
    expect(failed.stderr).toContain(`  demo-tool: ${mirror.url}/pool/main/d/demo-tool/demo-tool_2.0-1_amd64.deb: HTTP status 404\n`);
    expect(failed.stderr).toContain(`  demo-data: ${mirror.url}/pool/main/d/demo-data/demo-data_2.0-1_all.deb: HTTP status 404\n`);
    expect(failed.stderr).not.toContain('libdemo1');
  });

  it('`redo-ts lock` moves the vanished version forward, and the build passes again', async () => {
    await mirror.publish([tool, data, libNew]);
    const lock = await runCli(dir, ['lock', '--keyring', mirror.keyring], { env: mirror.env });
    expect(lock.code, lock.stderr).toBe(0);
    expect(lock.stdout).toBe('targets/demo.lock.yaml: libdemo1 1:1.0-1 -> 1:1.0-1+deb12u1\n');
    expect(locked()).toEqual(['demo-data 2.0-1', 'demo-tool 2.0-1', 'libdemo1 1:1.0-1+deb12u1']);
    const built = await buildWithColdCache('cache-5');
    expect(built.code, built.stderr).toBe(0);
    const version = execFileSync('tar', ['-xOf', join(dir, 'targets', 'demo.fragment.tar'), 'usr/share/libdemo1/version'], { encoding: 'utf8' });
    expect(version).toBe('libdemo1 1:1.0-1+deb12u1\n');
  });

  it('builds a lock whose packages all left the archive from .debs imported with `redo-ts cache add`', async () => {
    const lock = lockOf();
    writeFileSync(join(dir, 'targets', 'demo.lock.yaml'), lock);
    await mirror.publish([]);
    const cache = join(scratch, 'cache-6');
    const failed = await runCli(dir, ['-f', 'targets/demo.fragment.tar'], { env: { ...mirror.env, REDO_TS_CACHE: cache } });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('redo: "targets/demo.lock.yaml": 3 packages cannot be fetched\n');
    const added = await runCli(dir, ['cache', 'add', tool, data, libNew], { env: { REDO_TS_CACHE: cache } });
    expect(added.code, added.stderr).toBe(0);
    const built = await runCli(dir, ['-f', 'targets/demo.fragment.tar'], { env: { ...mirror.env, REDO_TS_CACHE: cache } });
    expect(built.code, built.stderr).toBe(0);
  });

  it('a copy whose deb: pin left the archive is moved to what apt offers now, kernels by their metapackage', async () => {
    const kernelOld = buildDeb(debs, { name: 'linux-image-6.1.0-50-cloud-amd64', version: '6.1.176-1', source: 'linux-signed-amd64', files: { 'boot/vmlinuz-6.1.0-50-cloud-amd64': 'old kernel\n' } });
    const kernelNew = buildDeb(debs, { name: 'linux-image-6.1.0-51-cloud-amd64', version: '6.1.180-1', source: 'linux-signed-amd64', files: { 'boot/vmlinuz-6.1.0-51-cloud-amd64': 'new kernel\n' } });
    const meta = buildDeb(debs, { name: 'linux-image-cloud-amd64', version: '6.1.180-1', source: 'linux-signed-amd64', depends: 'linux-image-6.1.0-51-cloud-amd64 (= 6.1.180-1)' });
    const pinned = join(scratch, 'pinned');
    mkdirSync(join(pinned, 'targets'), { recursive: true });
    const spec = (lib: string, kernel: string): string => `name: pinned\nversion: "1"\nsources:\n  - url: ${lib}\n    integrity: ${sha(libOld)}\n  - url: ${kernel}\n    integrity: ${sha(kernelOld)}\n    include: [/boot/vmlinuz-*]\n`;
    const committed = spec('deb:libdemo1=1:1.0-1?arch=amd64', 'deb:linux-image-6.1.0-50-cloud-amd64=6.1.176-1?arch=amd64');
    writeFileSync(join(pinned, 'targets', 'pinned.spec.yaml'), committed);

    await mirror.publish([libOld, kernelOld]);
    expect(refreshVanishedDebPins(pinned, mirror.env)).toEqual([]);
    expect(readFileSync(join(pinned, 'targets', 'pinned.spec.yaml'), 'utf8')).toBe(committed);

    await mirror.publish([libNew, kernelNew, meta]);
    // What a user sees on that day, building the committed spec.
    const stale = await runCli(pinned, ['targets/pinned.fragment.tar'], { env: { ...mirror.env, REDO_TS_CACHE: join(scratch, 'cache-8') } });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('source "deb:libdemo1=1:1.0-1?arch=amd64": cannot be fetched');
    expect(stale.stderr).toContain('hint: old versions leave the archive: `apt-cache policy libdemo1` shows what apt offers; put that version in the url and run `redo-ts pin --update`');
    expect(refreshVanishedDebPins(pinned, mirror.env)).toEqual([
      { spec: 'targets/pinned.spec.yaml', from: 'deb:libdemo1=1:1.0-1?arch=amd64', to: 'deb:libdemo1=1:1.0-1+deb12u1?arch=amd64', integrity: sha(libNew) },
      { spec: 'targets/pinned.spec.yaml', from: 'deb:linux-image-6.1.0-50-cloud-amd64=6.1.176-1?arch=amd64', to: 'deb:linux-image-6.1.0-51-cloud-amd64=6.1.180-1?arch=amd64', integrity: sha(kernelNew) },
    ]);
    expect(readFileSync(join(pinned, 'targets', 'pinned.spec.yaml'), 'utf8')).toBe(spec('deb:libdemo1=1:1.0-1+deb12u1?arch=amd64', 'deb:linux-image-6.1.0-51-cloud-amd64=6.1.180-1?arch=amd64')
      .replace(sha(libOld), sha(libNew)).replace(sha(kernelOld), sha(kernelNew)));
    const built = await runCli(pinned, ['targets/pinned.fragment.tar'], { env: { ...mirror.env, REDO_TS_CACHE: join(scratch, 'cache-7') } });
    expect(built.code, built.stderr).toBe(0);
    expect(execFileSync('tar', ['-xOf', join(pinned, 'targets', 'pinned.fragment.tar'), 'boot/vmlinuz-6.1.0-51-cloud-amd64'], { encoding: 'utf8' })).toBe('new kernel\n');
  });

  it('the fix the hint gives a user works: the version apt offers in the url, then `redo-ts pin --update`', async () => {
    const user = join(scratch, 'user');
    mkdirSync(join(user, 'targets'), { recursive: true });
    const specPath = join(user, 'targets', 'lib.spec.yaml');
    writeFileSync(specPath, `name: lib\nversion: "1"\nsources:\n  - url: deb:libdemo1=1:1.0-1+deb12u1?arch=amd64\n    integrity: ${sha(libOld)}\n`);
    const env = { ...mirror.env, REDO_TS_CACHE: join(scratch, 'cache-9') };
    const pin = await runCli(user, ['pin', '--update', 'targets/lib.spec.yaml'], { env });
    expect(pin.code, pin.stderr).toBe(0);
    expect(readFileSync(specPath, 'utf8')).toContain(`    integrity: ${sha(libNew)}\n`);
    const built = await runCli(user, ['targets/lib.fragment.tar'], { env });
    expect(built.code, built.stderr).toBe(0);
  });

  it('a copy of a committed lock naming a version that left the archive is locked again, that version alone', async () => {
    await mirror.publish([tool, data, libOld]);
    const committed = join(scratch, 'committed');
    mkdirSync(join(committed, 'targets'), { recursive: true });
    cpSync(join(repoRoot, 'rules'), join(committed, 'rules'), { recursive: true });
    writeFileSync(join(committed, 'package.json'), '{"private": true}\n');
    writeFileSync(join(committed, 'targets', 'demo.spec.yaml'), 'name: demo\nversion: "1"\npackages: [demo-tool]\n');
    const lock = await runCli(committed, ['lock', '--keyring', mirror.keyring], { env: mirror.env });
    expect(lock.code, lock.stderr).toBe(0);
    const committedLock = readFileSync(join(committed, 'targets', 'demo.lock.yaml'), 'utf8');
    const copy = join(scratch, 'committed-copy');
    cpSync(committed, copy, { recursive: true });
    expect(refreshVanishedLocks(copy, 'committed', { env: mirror.env, keyring: mirror.keyring })).toEqual([]);

    await mirror.publish([tool, data, libNew]);
    expect(refreshVanishedLocks(copy, 'committed', { env: mirror.env, keyring: mirror.keyring })).toEqual([
      { lock: 'committed/targets/demo.lock.yaml', vanished: ['libdemo1=1:1.0-1'], moved: ['libdemo1 1:1.0-1 -> 1:1.0-1+deb12u1'] },
    ]);
    expect(readFileSync(join(committed, 'targets', 'demo.lock.yaml'), 'utf8')).toBe(committedLock);
    const refreshed = readFileSync(join(copy, 'targets', 'demo.lock.yaml'), 'utf8');
    expect([...refreshed.matchAll(/^ {2}- name: (\S+)\n {4}version: "?([^"\n]+)"?$/gm)].map((m) => `${m[1]} ${m[2]}`)).toEqual(['demo-data 2.0-1', 'demo-tool 2.0-1', 'libdemo1 1:1.0-1+deb12u1']);
    expect(refreshed).toContain(`integrity: "${sha(libNew)}"`);
    const built = await runCli(copy, ['-f', 'targets/demo.fragment.tar'], { env: { ...mirror.env, REDO_TS_CACHE: join(scratch, 'cache-10') } });
    expect(built.code, built.stderr).toBe(0);
    expect(execFileSync('tar', ['-xOf', join(copy, 'targets', 'demo.fragment.tar'), 'usr/share/libdemo1/version'], { encoding: 'utf8' })).toBe('libdemo1 1:1.0-1+deb12u1\n');
  });
});
