/** A build environment's fragment kept in the cache by content: taken by the next build, never when an input or the code changed, never when damaged or half-kept. */

import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildFragment, type FragmentResult } from '../../../lib/sources/fragment.js';
import { codeKey, keptFragmentKey, keptFragmentsFolder, machineArchitecture, takeKeptFragment } from '../../../lib/sources/fragment-cache.js';
import { addDebsToCache } from '../../../lib/sources/debian/fetch.js';
import { readDebianLock } from '../../../lib/sources/debian/lock.js';
import { findInStore } from '../../../lib/sources/store.js';
import { currentFixture, sharedCache, testBuildEnvironment } from '../../helpers/build-environment.js';
import { repoRoot, runCli } from '../../helpers/rig.js';
import type { Integrity } from '../../../lib/sources/integrity.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

let debs: string[] = [];
beforeAll(async () => {
  // The fixture's packages, downloaded once into the shared cache by the test helper.
  await testBuildEnvironment();
  const lock = await readDebianLock(join(currentFixture('build-environment'), 'build-environment.lock.yaml'), 'build-environment.lock.yaml');
  debs = [];
  for (const locked of lock.packages) {
    const found = await findInStore(sharedCache, locked.integrity as Integrity);
    if (found.kind !== 'hit') throw new Error(`${locked.name} is not in the shared test cache`);
    debs.push(found.path);
  }
}, 600_000);

/** A project holding the fixture's build-environment spec and lock, and a cache with only its .debs. */
async function project(): Promise<{ root: string; spec: string; cache: string }> {
  const root = mkdtempSync(join(tmpdir(), 'redo-ts-kept-fragment-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'targets'));
  for (const name of ['build-environment.spec.yaml', 'build-environment.lock.yaml']) cpSync(join(currentFixture('build-environment'), name), join(root, 'targets', name));
  const cache = join(root, 'cache');
  await addDebsToCache(debs, cache);
  return { root, spec: join(root, 'targets', 'build-environment.spec.yaml'), cache };
}

const build = (where: { root: string; spec: string; cache: string }, out: string, options: { isOffline?: boolean } = {}): Promise<FragmentResult> =>
  buildFragment(where.spec, join(where.root, out), { root: where.root, cacheDir: where.cache, env: { ...process.env, SOURCE_DATE_EPOCH: '0' }, keepByContent: true, ...options });

const entries = (cache: string): string[] => (existsSync(join(cache, keptFragmentsFolder)) ? readdirSync(join(cache, keptFragmentsFolder)).sort() : []);
const withoutKept = (result: FragmentResult): Omit<FragmentResult, 'kept'> => {
  const { kept: _kept, ...rest } = result;
  return rest;
};

describe('a build environment\'s fragment kept by content', () => {
  it('is built and kept once, then taken by the next build with the same bytes and result, with no package read', async () => {
    const where = await project();
    const first = await build(where, 'first.tar');
    expect(first.kept?.how).toBe('built');
    expect(entries(where.cache)).toEqual([first.kept!.key]);
    // The packages are gone and nothing may be downloaded: only the kept fragment can serve.
    rmSync(join(where.cache, 'content-v2'), { recursive: true, force: true });
    const second = await build(where, 'second.tar', { isOffline: true });
    expect(second.kept).toEqual({ key: first.kept!.key, how: 'taken' });
    expect(readFileSync(join(where.root, 'second.tar')).equals(readFileSync(join(where.root, 'first.tar')))).toBe(true);
    expect(withoutKept(second)).toEqual(withoutKept(first));
  });

  it('a changed lock, spec or SOURCE_DATE_EPOCH is another key, and so is other code', async () => {
    const where = await project();
    const first = await build(where, 'first.tar');
    const lockPath = join(where.root, 'targets', 'build-environment.lock.yaml');
    writeFileSync(lockPath, `${readFileSync(lockPath, 'utf8')}# edited\n`);
    const relocked = await build(where, 'relocked.tar');
    expect(relocked.kept?.how).toBe('built');
    expect(relocked.kept?.key).not.toBe(first.kept!.key);
    // A spec that keeps other files gives other bytes, never the kept ones.
    writeFileSync(where.spec, readFileSync(where.spec, 'utf8').replace('exclude: [', 'exclude: [/usr/share/locale/**, '));
    const respecified = await build(where, 'respecified.tar');
    expect(respecified.kept?.how).toBe('built');
    expect(respecified.diffId).not.toBe(first.diffId);
    const later = await buildFragment(where.spec, join(where.root, 'later.tar'), { root: where.root, cacheDir: where.cache, env: { ...process.env, SOURCE_DATE_EPOCH: '86400' }, keepByContent: true });
    expect(later.kept?.how).toBe('built');
    expect(entries(where.cache)).toHaveLength(4);

    const inputs = { codeKey: 'a', specPath: 'targets/build-environment.spec.yaml', specText: 'name: x\n', lockText: 'lock\n', hostArchitecture: 'amd64', mtimeSeconds: 0 };
    expect(keptFragmentKey({ ...inputs, codeKey: 'b' })).not.toBe(keptFragmentKey(inputs));
    expect(keptFragmentKey({ ...inputs, hostArchitecture: 'arm64' })).not.toBe(keptFragmentKey(inputs));
    expect(keptFragmentKey({ ...inputs })).toBe(keptFragmentKey(inputs));
  });

  it('the code key follows the running code: the bundle\'s source hash, else every module of the library', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redo-ts-code-key-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // A bundle: its chunks sit beside source.sha256.
    mkdirSync(join(dir, 'bundle'));
    writeFileSync(join(dir, 'bundle', 'source.sha256'), 'a'.repeat(64));
    expect(codeKey(join(dir, 'bundle'))).toBe(`bundle:${'a'.repeat(64)}`);
    // tsc's dist/lib (or lib/): this module in sources/, the library the folder above.
    for (const name of ['one', 'two']) {
      mkdirSync(join(dir, name, 'sources'), { recursive: true });
      mkdirSync(join(dir, name, 'image'));
      writeFileSync(join(dir, name, 'sources', 'fragment.js'), 'export const a = 1;\n');
      writeFileSync(join(dir, name, 'image', 'tar.js'), name === 'one' ? 'export const b = 1;\n' : 'export const b = 2;\n');
    }
    expect(codeKey(join(dir, 'one', 'sources'))).toMatch(/^library:[0-9a-f]{64}$/);
    expect(codeKey(join(dir, 'two', 'sources'))).not.toBe(codeKey(join(dir, 'one', 'sources')));
    // This very library, as the tests run it.
    expect(codeKey()).toBe(codeKey(join(repoRoot, 'lib', 'sources')));
  });

  it('the machine\'s architecture is asked of dpkg once per dpkg: another or a changed one is asked again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'redo-ts-machine-arch-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const fake = (answer: string): void => {
      writeFileSync(join(dir, 'bin', 'dpkg'), `#!/bin/sh\necho asked >> ${JSON.stringify(join(dir, 'asked'))}\necho ${answer}\n`);
      chmodSync(join(dir, 'bin', 'dpkg'), 0o755);
    };
    mkdirSync(join(dir, 'bin'));
    fake('arm64');
    const cache = join(dir, 'cache');
    // Each call its own PATH: hostArchitecture also remembers its answers per PATH in the process.
    const asked = (): number => (existsSync(join(dir, 'asked')) ? readFileSync(join(dir, 'asked'), 'utf8').split('\n').length - 1 : 0);
    expect(await machineArchitecture({ PATH: `${dir}/bin:/usr/bin:/bin` }, cache)).toBe('arm64');
    expect(await machineArchitecture({ PATH: `${dir}/bin:/usr/bin:/bin:/nowhere-1` }, cache)).toBe('arm64');
    expect(asked()).toBe(1);
    fake('riscv64-but-longer');
    expect(await machineArchitecture({ PATH: `${dir}/bin:/usr/bin:/bin:/nowhere-2` }, cache)).toBe('riscv64-but-longer');
    expect(asked()).toBe(2);
    // The machine's own dpkg is another one.
    expect(await machineArchitecture({ PATH: '/usr/bin:/bin' }, cache)).not.toBe('riscv64-but-longer');
  });

  it('a damaged kept tar is found in the copy that uses it: dropped, the output left as it was, the fragment built anew and kept again', async () => {
    const where = await project();
    const first = await build(where, 'first.tar');
    const kept = join(where.cache, keptFragmentsFolder, first.kept!.key, 'fragment.tar');
    const bytes = readFileSync(kept);
    bytes[bytes.length >> 1] ^= 0x20;
    writeFileSync(kept, bytes);
    writeFileSync(join(where.root, 'second.tar'), 'old output\n');

    const lookup = takeKeptFragment(where.cache, first.kept!.key, join(where.root, 'second.tar'));
    expect(lookup.kind).toBe('damaged');
    expect(lookup.kind === 'damaged' ? lookup.why : '').toMatch(/^its tar hashes to sha256:[0-9a-f]{64}, not to sha256:[0-9a-f]{64}$/);
    expect(readFileSync(join(where.root, 'second.tar'), 'utf8')).toBe('old output\n');
    expect(entries(where.cache)).toEqual([]);
    expect(readdirSync(where.root).filter((name) => name.includes('.tmp'))).toEqual([]);

    // Damaged again, through the build: it says so and builds the same bytes anew.
    const third = await build(where, 'third.tar');
    writeFileSync(kept, bytes);
    const fourth = await build(where, 'fourth.tar');
    expect(third.kept?.how).toBe('built');
    expect(fourth.kept).toMatchObject({ key: first.kept!.key, how: 'built', damaged: expect.stringMatching(/^its tar hashes to /) });
    expect(readFileSync(join(where.root, 'fourth.tar')).equals(readFileSync(join(where.root, 'first.tar')))).toBe(true);
    expect((await build(where, 'fifth.tar')).kept?.how).toBe('taken');
  });

  it('kill -9 while a fragment is being kept leaves nothing a build takes; cache prune removes what it left and names the kind', async () => {
    const where = await project();
    const home = join(where.cache, keptFragmentsFolder);
    mkdirSync(home, { recursive: true });
    // A tar large enough that keeping it takes a while: killed mid-copy.
    const big = join(where.root, 'big.tar');
    writeFileSync(big, Buffer.alloc(256 << 20, 1));
    const key = 'f'.repeat(64);
    const script = `import(${JSON.stringify(join(repoRoot, 'dist', 'lib', 'sources', 'fragment-cache.js'))}).then((m) => m.keepFragment(${JSON.stringify(where.cache)}, ${JSON.stringify(key)}, ${JSON.stringify(big)}, ${JSON.stringify('0'.repeat(64))}, { spec: 'x' }))`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    cleanups.push(() => child.kill('SIGKILL'));
    const closed = new Promise((done) => child.on('close', done));
    const leftovers = (): string[] => readdirSync(home).filter((name) => name.startsWith('.tmp-') && existsSync(join(home, name, 'fragment.tar')));
    const deadline = Date.now() + 60_000;
    while (leftovers().length === 0 && child.exitCode === null && Date.now() < deadline) await new Promise((done) => setTimeout(done, 5));
    expect(leftovers()).toHaveLength(1);
    child.kill('SIGKILL');
    await closed;
    expect(readdirSync(home).filter((name) => !name.startsWith('.tmp-'))).toEqual([]);
    expect(takeKeptFragment(where.cache, key, join(where.root, 'out.tar')).kind).toBe('absent');

    // The kept fragment of a real build, and the leftover: prune says what each is.
    const built = await build(where, 'built.tar');
    expect(built.kept?.how).toBe('built');
    // That keep removed what the killed one left, its process being gone.
    expect(readdirSync(home)).toEqual([built.kept!.key]);
    cpSync(join(home, built.kept!.key), join(home, `.tmp-${child.pid}-left`), { recursive: true });
    const pruned = await runCli(where.root, ['cache', 'prune', '--unused-days', '0'], { env: { REDO_TS_CACHE: where.cache } });
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(new RegExp(`^removed environment fragment ${built.kept!.key.slice(0, 12)} \\(targets/build-environment\\.spec\\.yaml\\), last used \\S+\\n$`));
    expect(pruned.stderr).toContain('redo-ts cache: 1 environment fragment unused for 0 days removed, 1 interrupted keep cleaned');
    expect(readdirSync(home)).toEqual([]);
  }, 120_000);
});
