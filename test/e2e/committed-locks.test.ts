// A committed Debian lock after a point release, on this machine's real apt indexes: a
// copy of the tests' build-environment lock (test/fixtures/build-environment, as
// currentFixture gives it today) with one version apt does not have (as the day after
// the point release that removed it). The
// build fails as a user would see it; refreshVanishedLocks (test/helpers/deb-locks.ts),
// which every test copy of a committed lock goes through, runs `redo-ts lock` on the
// copy, which moves that version alone to what apt offers now; the build then passes,
// and the repository's lock is untouched.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copySharedCache, currentFixture, testBuildEnvironment } from '../helpers/build-environment.js';
import { parseLock } from '../../lib/sources/debian/lock.js';
import { refreshVanishedLocks, vanishedVersions } from '../helpers/deb-locks.js';
import { aptRecord } from '../helpers/deb-pins.js';
import { repoRoot, runCli } from '../helpers/rig.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-committed-locks-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const fixture = join(repoRoot, 'test', 'fixtures', 'build-environment');
const committedPath = join(fixture, 'build-environment.lock.yaml');
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();

/** `name version` of each package of a lock text. */
const lockedOf = (text: string): string[] => [...text.matchAll(/^ {2}- name: (\S+)\n {4}version: "?([^"\n]+)"?$/gm)].map((m) => `${m[1]} ${m[2]}`);

/** A project with the shared rules, the fixture's spec and `lock` as its build environment, and a spec with a build step. */
function project(name: string, lock: string): string {
  const dir = join(scratch, name);
  mkdirSync(join(dir, 'targets'), { recursive: true });
  cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
  cpSync(join(fixture, 'build-environment.spec.yaml'), join(dir, 'targets', 'build-environment.spec.yaml'));
  writeFileSync(join(dir, 'targets', 'build-environment.lock.yaml'), lock);
  writeFileSync(join(dir, 'targets', 'app.spec.yaml'), 'name: app\nversion: "1"\nbuild:\n  - mkdir -p "$DESTDIR/etc" && numfmt --version | head -n 1 > "$DESTDIR/etc/app"\nfiles:\n  - path: /etc/app\n');
  return dir;
}

describe('a committed lock whose version left the archive', () => {
  const before = sha256(committedPath);
  // The lock as today's indexes have every version of it: the committed one, unless a
  // point release has already removed one of its versions (then currentFixture warns).
  const current = readFileSync(join(currentFixture('build-environment'), 'build-environment.lock.yaml'), 'utf8');
  // coreutils as the archive no longer has it: the version the lock names is gone.
  const aged = current.replace(/^( {2}- name: coreutils\n {4}version: )[^\n]+$/m, '$1"1:0.0.0-0"');

  it('is what a user sees fail: the build cannot fetch it', async () => {
    expect(aged).not.toBe(current);
    const dir = project('stale', aged);
    // An empty cache: a warm one may still hold the file, a fresh machine does not.
    const built = await runCli(dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: join(scratch, 'empty-cache') } });
    expect(built.code).toBe(1);
    expect(built.stderr).toContain('redo: "targets/build-environment.lock.yaml": package coreutils=1:0.0.0-0 cannot be fetched');
  }, 300_000);

  it('is locked again in the test\'s copy: that version alone moves, the build passes, the repository\'s lock is untouched', async () => {
    const dir = project('refreshed', aged);
    const today = aptRecord('coreutils', arch, undefined)!;
    expect(today).toBeDefined();
    expect(refreshVanishedLocks(dir, 'copy')).toEqual([{
      lock: 'copy/targets/build-environment.lock.yaml',
      vanished: ['coreutils=1:0.0.0-0'],
      moved: [`coreutils 1:0.0.0-0 -> ${today.version}`],
    }]);
    const refreshed = readFileSync(join(dir, 'targets', 'build-environment.lock.yaml'), 'utf8');
    // Every other version as committed: only what vanished moved.
    expect(lockedOf(refreshed)).toEqual(lockedOf(current).map((line) => (line.startsWith('coreutils ') ? `coreutils ${today.version}` : line)));
    expect(refreshed).toContain(`    integrity: "${today.integrity}"\n`);
    // A second look finds nothing left to move.
    expect(refreshVanishedLocks(dir)).toEqual([]);
    await testBuildEnvironment();
    const cache = join(scratch, 'cache');
    copySharedCache(cache);
    const built = await runCli(dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(built.code, built.stderr).toBe(0);
    expect(execFileSync('tar', ['-xOf', join(dir, 'targets', 'app.fragment.tar'), 'etc/app'], { encoding: 'utf8' })).toMatch(/^numfmt \(GNU coreutils\) /);
    expect(sha256(committedPath)).toBe(before);
  }, 300_000);

  it('a lock whose versions all exist is left as it is', () => {
    const dir = project('current', current);
    expect(vanishedVersions(parseLock(current, 'current'))).toEqual([]);
    expect(refreshVanishedLocks(dir)).toEqual([]);
    expect(readFileSync(join(dir, 'targets', 'build-environment.lock.yaml'), 'utf8')).toBe(current);
    expect(sha256(committedPath)).toBe(before);
  });
});
