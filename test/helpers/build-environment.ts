// The build environment tests give their projects (test/fixtures/build-environment/:
// busybox-static and coreutils, locked): built once into a cache shared by the test run,
// so tests whose specs have build steps sandbox them without downloading the packages again.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { buildFragment } from '../../lib/sources/fragment.js';
import { assembleBuildEnvironment, type EnvironmentPart } from '../../lib/sandbox/environment.js';
import { refreshVanishedLocks } from './deb-locks.js';
import { repoRoot } from './rig.js';
import { withFolderLock } from './shared-cache-lock.js';

const currentFolders = new Map<string, string>();

/**
 * The folder to take the locked fixture test/fixtures/NAME from today: the repository's
 * own while every version its locks name is in the machine's apt indexes, else a copy
 * (removed when the process exits) whose locks `redo-ts lock` moved off the vanished
 * versions, with a warning naming the lock to refresh (deb-locks.ts). The repository's
 * files are never changed. Read the spec and lock from here, and key anything cached
 * on their contents here, not on the committed ones.
 */
export function currentFixture(name: string): string {
  let folder = currentFolders.get(name);
  if (folder === undefined) {
    const copy = mkdtempSync(join(tmpdir(), `redo-ts-fixture-${name}-`));
    cpSync(join(repoRoot, 'test', 'fixtures', name), copy, { recursive: true });
    if (refreshVanishedLocks(copy, `test/fixtures/${name}`).length === 0) {
      rmSync(copy, { recursive: true, force: true });
      folder = join(repoRoot, 'test', 'fixtures', name);
    } else {
      process.on('exit', () => rmSync(copy, { recursive: true, force: true }));
      folder = copy;
    }
    currentFolders.set(name, folder);
  }
  return folder;
}

const specFile = (): string => join(currentFixture('build-environment'), 'build-environment.spec.yaml');
const lockFile = (): string => join(currentFixture('build-environment'), 'build-environment.lock.yaml');

/** The cache the shared environment's packages are downloaded into (kept between runs, like ~/.cache/redo-ts). */
export const sharedCache = process.env.REDO_TS_TEST_CACHE ?? join(tmpdir(), 'redo-ts-test-shared-cache');

/**
 * A hash of the code that builds fragments (lib/sources, lib/sandbox): a fragment kept in
 * the shared cache by an older redo-ts (what it cached beside it, what it wrote) is not
 * reused by a newer one, so a test never depends on the age of the machine's /tmp.
 */
const codeKey: string = (() => {
  const hash = createHash('sha256');
  for (const area of ['lib/sources', 'lib/sandbox']) {
    const files = readdirSync(join(repoRoot, area), { recursive: true }).map(String).filter((name) => name.endsWith('.ts')).sort();
    for (const name of files) hash.update(name).update(readFileSync(join(repoRoot, area, name)));
  }
  return hash.digest('hex').slice(0, 16);
})();

let built: Promise<EnvironmentPart[]> | undefined;

/** The key of the environment assembled from the tests' build-environment fragment alone (testBuildEnvironment). */
let sharedEnvironmentKey: string | undefined;

/**
 * The environment parts to hand to buildFragment: the tests' build-environment
 * fragment, built (once per lock content) into the shared cache's folder, and the
 * environment made of it alone assembled there (what copyBuildEnvironment hands over).
 */
export function testBuildEnvironment(): Promise<EnvironmentPart[]> {
  built ??= (async () => {
    // Keyed by the lock as refreshed today (currentFixture), so a moved lock builds anew.
    const key = createHash('sha256').update(codeKey).update(readFileSync(specFile())).update(readFileSync(lockFile())).digest('hex').slice(0, 16);
    const out = join(sharedCache, 'fragments', `build-environment-${key}.tar`);
    // Test files run in parallel: one builds it, the others wait and reuse it.
    if (!existsSync(out)) await withFolderLock(sharedCache, `build-environment-${key}`, async () => {
      if (existsSync(out)) return;
      mkdirSync(join(sharedCache, 'fragments'), { recursive: true });
      await buildFragment(specFile(), out, { root: currentFixture('build-environment'), cacheDir: sharedCache });
    });
    const parts = [{ tarPath: out, label: 'build-environment.spec.yaml' }];
    // Assembled once for every project seeded from here (atomic: a temporary folder renamed into place).
    sharedEnvironmentKey = (await assembleBuildEnvironment(parts, { cacheDir: sharedCache, subject: 'test/fixtures/build-environment' })).key;
    return parts;
  })();
  return built;
}

const builtTools = new Map<string, Promise<EnvironmentPart>>();

/**
 * A tool fragment for build-requires (test/fixtures/FOLDER/NAME.spec.yaml, locked):
 * `python` (Debian's python3 + python3-pip, for pypi: installs), `nodejs` (Debian's
 * nodejs, for npm: installs) or `toolchain` (gcc and libc6-dev, for install scripts that
 * compile), built once per lock content into the shared cache.
 * Append it to testBuildEnvironment() as a spec's build-requires would be.
 */
export function testToolFragment(name: 'python' | 'nodejs' | 'toolchain'): Promise<EnvironmentPart> {
  let built = builtTools.get(name);
  if (built === undefined) {
    built = (async () => {
      const folder = currentFixture({ python: 'python-environment', nodejs: 'node-environment', toolchain: 'toolchain' }[name]);
      const spec = join(folder, `${name}.spec.yaml`);
      const key = createHash('sha256').update(codeKey).update(readFileSync(spec)).update(readFileSync(join(folder, `${name}.lock.yaml`))).digest('hex').slice(0, 16);
      const out = join(sharedCache, 'fragments', `${name}-${key}.tar`);
      if (!existsSync(out)) await withFolderLock(sharedCache, `${name}-${key}`, async () => {
        if (existsSync(out)) return;
        mkdirSync(join(sharedCache, 'fragments'), { recursive: true });
        await buildFragment(spec, out, { root: folder, cacheDir: sharedCache });
      });
      return { tarPath: out, label: `${name}.spec.yaml` };
    })();
    builtTools.set(name, built);
  }
  return built;
}

let builtNpm: Promise<EnvironmentPart> | undefined;

/**
 * The npm CLI fragment (test/fixtures/node-environment/npm.spec.yaml): npm's release
 * tarball, fetched once with `npm pack` into the shared cache and checked against the
 * spec's pin, installed as /usr/bin/npm by a sandboxed build over testBuildEnvironment().
 * With testToolFragment('nodejs') it makes the build-requires of an `npm:` install.
 */
export function testNpmFragment(): Promise<EnvironmentPart> {
  builtNpm ??= (async () => {
    const fixture = join(repoRoot, 'test', 'fixtures', 'node-environment', 'npm.spec.yaml');
    const key = createHash('sha256').update(readFileSync(fixture)).digest('hex').slice(0, 16);
    const folder = join(sharedCache, `npm-cli-${key}`);
    const out = join(sharedCache, 'fragments', `npm-${key}.tar`);
    if (!existsSync(out)) await withFolderLock(sharedCache, `npm-${key}`, async () => {
      if (existsSync(out)) return;
      mkdirSync(folder, { recursive: true });
      mkdirSync(join(sharedCache, 'fragments'), { recursive: true });
      cpSync(fixture, join(folder, 'npm.spec.yaml'));
      const version = /^version: "([^"]+)"$/m.exec(readFileSync(fixture, 'utf8'))![1]!;
      if (!existsSync(join(folder, `npm-${version}.tgz`))) {
        execFileSync('npm', ['pack', `npm@${version}`, '--pack-destination', folder, '--silent'], { env: { ...process.env, npm_config_update_notifier: 'false' }, stdio: ['ignore', 'ignore', 'inherit'] });
      }
      await buildFragment(join(folder, 'npm.spec.yaml'), out, { root: folder, cacheDir: sharedCache, environment: await testBuildEnvironment() });
    });
    return { tarPath: out, label: 'npm.spec.yaml' };
  })();
  return builtNpm;
}

/**
 * Puts the tests' build-environment spec and lock into `folder` of a test project
 * and copies the shared cache (the environment's packages) into `cacheDir`, so the
 * project's build steps run sandboxed with no download.
 */
export async function seedBuildEnvironment(folder: string, cacheDir: string): Promise<void> {
  await testBuildEnvironment();
  copyBuildEnvironment(folder, cacheDir);
}

/** seedBuildEnvironment without the wait: testBuildEnvironment() must have been awaited before (in a beforeAll). */
export function copyBuildEnvironment(folder: string, cacheDir: string): void {
  mkdirSync(folder, { recursive: true });
  cpSync(specFile(), join(folder, 'build-environment.spec.yaml'));
  cpSync(lockFile(), join(folder, 'build-environment.lock.yaml'));
  copySharedCache(cacheDir);
}

/**
 * Copies what redo-ts reads of the shared cache into `cacheDir`: the downloads
 * (content-v2/, index-v5/) and, once testBuildEnvironment() has been awaited, the
 * environment assembled from the build-environment fragment alone (what a seeded
 * project's steps run in: same fragment bytes, same key). Not the fragment tars and npm
 * tarball the helpers keep there, nor other environments (gigabytes and thousands of
 * files once several versions of the code have run: a project that needs one assembles
 * it), nor what another test process is writing right now (tmp/, locks/).
 */
export function copySharedCache(cacheDir: string): void {
  mkdirSync(cacheDir, { recursive: true });
  for (const part of ['content-v2', 'index-v5']) {
    if (!existsSync(join(sharedCache, part))) continue;
    cpSync(join(sharedCache, part), join(cacheDir, part), { recursive: true });
  }
  if (sharedEnvironmentKey === undefined) return;
  const environment = join(sharedCache, 'build-environments', sharedEnvironmentKey);
  // verbatimSymlinks: an assembled environment root's relative links (bin -> usr/bin)
  // must stay relative, not become the shared cache's host paths.
  if (existsSync(environment)) cpSync(environment, join(cacheDir, 'build-environments', sharedEnvironmentKey), { recursive: true, verbatimSymlinks: true });
}

/**
 * Puts the app-install tool specs into `folder` of a test project whose root is
 * `root`: python (python3 + pip) and nodejs with their locks, and npm.spec.yaml with
 * npm's release tarball beside it (its url made relative to `root`). Specs name them in
 * build-requires (`[python]`, `[nodejs, npm]`). testToolFragment('python'),
 * testToolFragment('nodejs') and testNpmFragment() must have been awaited, and the
 * shared cache copied (copyBuildEnvironment), so nothing is downloaded.
 */
export function copyAppToolSpecs(folder: string, root: string): void {
  mkdirSync(folder, { recursive: true });
  const fixtures = join(repoRoot, 'test', 'fixtures');
  for (const [dir, name] of [['python-environment', 'python'], ['node-environment', 'nodejs']] as const) {
    cpSync(join(currentFixture(dir), `${name}.spec.yaml`), join(folder, `${name}.spec.yaml`));
    cpSync(join(currentFixture(dir), `${name}.lock.yaml`), join(folder, `${name}.lock.yaml`));
  }
  const npmSpec = readFileSync(join(fixtures, 'node-environment', 'npm.spec.yaml'), 'utf8');
  const key = createHash('sha256').update(npmSpec).digest('hex').slice(0, 16);
  const version = /^version: "([^"]+)"$/m.exec(npmSpec)![1]!;
  const tarball = `npm-${version}.tgz`;
  cpSync(join(sharedCache, `npm-cli-${key}`, tarball), join(folder, tarball));
  const relativeFolder = relative(root, folder).split(sep).join('/');
  writeFileSync(join(folder, 'npm.spec.yaml'), npmSpec.replace(`url: file:${tarball}`, `url: file:${relativeFolder === '' ? '' : `${relativeFolder}/`}${tarball}`));
}
