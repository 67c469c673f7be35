// npm dependencies from a package-lock.json: every package fetched with the machine's
// npm from a loopback registry, checked against the lock's integrity, installed by
// `npm ci --offline` (node_modules layout, bin links, install scripts), dev deps left out.
// The install runs in the build sandbox with Debian's nodejs and npm's pinned release
// (build-requires over the tests' build environment), never the machine's node or npm;
// the native part compiles with Debian's gcc (test/fixtures/toolchain) in the same sandbox.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entriesOfTar, readEntryBytes } from '../../lib/image/tar.js';
import { buildFragment } from '../../lib/sources/fragment.js';
import { findInStore } from '../../lib/sources/store.js';
import type { EnvironmentPart } from '../../lib/sandbox/environment.js';
import { testBuildEnvironment, testNpmFragment, testToolFragment } from '../helpers/build-environment.js';
import { poisonCacheEntry } from '../helpers/cache-poisoner.js';
import { RedoError } from '../../lib/errors.js';
import { startTestRegistry, type TestRegistry } from '../helpers/npm-registry.js';

let base: string;
let registry: TestRegistry;
let npmEnv: NodeJS.ProcessEnv;
let environment: EnvironmentPart[];

const packages = [
  { manifest: { name: 'leftpad', version: '1.0.0', license: 'MIT', main: 'index.js', bin: { leftpad: 'bin/leftpad.js' } }, files: { 'index.js': "module.exports = (s, n) => String(s).padStart(n, '.');\n", 'bin/leftpad.js': "#!/usr/bin/env node\nconsole.log(require('..')(process.argv[2], 6));\n" } },
  { manifest: { name: '@demo/greeter', version: '2.1.0', license: 'Apache-2.0', dependencies: { leftpad: '^1.0.0' }, scripts: { install: "node -e \"require('fs').writeFileSync('built.txt', 'built by its install script')\"" } }, files: { 'index.js': "module.exports = () => require('leftpad')('hi', 4);\n" } },
  { manifest: { name: 'devtool', version: '0.1.0', license: 'ISC' }, files: { 'index.js': '' } },
  // A native part, compiled by its install script with the build step's compiler.
  { manifest: { name: 'hello-native', version: '1.0.0', license: 'MIT', scripts: { install: 'cc -O2 -o hello hello.c' } }, files: { 'hello.c': '#include <stdio.h>\nint main(void) { puts("native hello"); return 0; }\n' } },
];

beforeAll(async () => {
  environment = [...await testBuildEnvironment(), await testToolFragment('nodejs'), await testNpmFragment()];
  base = mkdtempSync(join(tmpdir(), 'redo-ts-npm-'));
  npmEnv = { ...process.env, npm_config_cache: join(base, 'npm-cache'), npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' };
  registry = await startTestRegistry(base, packages, npmEnv);
  npmEnv.npm_config_registry = registry.url;
}, 300_000);

afterAll(async () => {
  await registry?.close();
  rmSync(base, { recursive: true, force: true });
});

let counter = 0;
/** A project whose app/ has a package.json and a lock written by npm against the loopback registry. */
async function makeProject(specExtra = '', lockArgs: string[] = [], dependencies: Record<string, string> = { '@demo/greeter': '^2.0.0' }): Promise<string> {
  counter += 1;
  const project = join(base, `project-${counter}`);
  mkdirSync(join(project, 'targets'), { recursive: true });
  mkdirSync(join(project, 'app'), { recursive: true });
  writeFileSync(join(project, 'package.json'), '{}\n');
  writeFileSync(join(project, 'app', 'package.json'), `${JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies, devDependencies: { devtool: '^0.1.0' } }, null, 2)}\n`);
  // Asynchronous: the registry answering npm runs in this process.
  await promisify(execFile)('npm', ['install', '--package-lock-only', '--ignore-scripts', ...lockArgs], { cwd: join(project, 'app'), env: npmEnv });
  writeFileSync(join(project, 'targets', 'deps.spec.yaml'), `name: deps\nversion: "1"\nnpm:\n  lock: app/package-lock.json\n  path: /app\n${specExtra}`);
  return project;
}

function entriesByPath(tar: string): Map<string, ReturnType<typeof entriesOfTar>[number]> {
  return new Map(entriesOfTar(tar).map((entry) => [entry.path.toString(), entry]));
}

describe('npm: a package-lock.json', () => {
  it('installs every non-dev package with npm ci: layout, bin links, install scripts; the pins are the lock\'s integrity', async () => {
    const project = await makeProject();
    const lock = JSON.parse(readFileSync(join(project, 'app', 'package-lock.json'), 'utf8'));
    const out = join(project, 'deps.fragment.tar');
    const result = await buildFragment(join(project, 'targets/deps.spec.yaml'), out, { root: project, environment, cacheDir: join(project, 'cache'), env: npmEnv });
    expect(result.buildEnvironment.kind).toBe('sandbox');
    const entries = entriesByPath(out);
    const paths = [...entries.keys()].filter((path) => !path.endsWith('/.package-lock.json')).sort();
    expect(paths).toEqual([
      'app', 'app/node_modules', 'app/node_modules/.bin', 'app/node_modules/.bin/leftpad',
      'app/node_modules/@demo', 'app/node_modules/@demo/greeter', 'app/node_modules/@demo/greeter/built.txt', 'app/node_modules/@demo/greeter/index.js', 'app/node_modules/@demo/greeter/package.json',
      'app/node_modules/leftpad', 'app/node_modules/leftpad/bin', 'app/node_modules/leftpad/bin/leftpad.js', 'app/node_modules/leftpad/index.js', 'app/node_modules/leftpad/package.json',
    ]);
    expect(entries.get('app/node_modules/.bin/leftpad')).toMatchObject({ type: 'symlink', linkTarget: Buffer.from('../leftpad/bin/leftpad.js') });
    expect(entries.get('app/node_modules/leftpad/bin/leftpad.js')!.mode).toBe(0o755);
    expect(readEntryBytes(entries.get('app/node_modules/@demo/greeter/built.txt')!)!.toString()).toBe('built by its install script');
    expect(result.sources).toEqual([
      expect.objectContaining({ kind: 'npm', name: '@demo/greeter', version: '2.1.0', integrity: lock.packages['node_modules/@demo/greeter'].integrity }),
      expect.objectContaining({ kind: 'npm', name: 'leftpad', version: '1.0.0', integrity: lock.packages['node_modules/leftpad'].integrity }),
    ]);
    // What npm installed runs: the bin link reaches its package.
    const root = join(project, 'root');
    mkdirSync(root);
    execFileSync('tar', ['-xf', out, '-C', root]);
    expect(execFileSync(join(root, 'app/node_modules/.bin/leftpad'), ['ok'], { encoding: 'utf8' })).toBe('....ok\n');
  }, 120_000);

  it('a warm cache builds offline, with the registry never asked, to the same bytes', async () => {
    const project = await makeProject();
    const cacheDir = join(project, 'cache');
    const first = await buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'a.tar'), { root: project, environment, cacheDir, env: npmEnv });
    registry.requests.length = 0;
    const second = await buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'b.tar'), { root: project, environment, cacheDir, env: npmEnv, isOffline: true });
    expect(registry.requests).toEqual([]);
    expect(second.diffId).toBe(first.diffId);
  }, 120_000);

  it('a cached tarball whose bytes were changed is refused as npm\'s cache is filled, dropped and fetched again; offline the build names the entry, wanted and found', async () => {
    const project = await makeProject();
    const cacheDir = join(project, 'cache');
    const spec = join(project, 'targets/deps.spec.yaml');
    const first = await buildFragment(spec, join(project, 'a.tar'), { root: project, environment, cacheDir, env: npmEnv });
    const lock = JSON.parse(readFileSync(join(project, 'app/package-lock.json'), 'utf8')) as { packages: Record<string, { integrity?: string }> };
    const integrity = lock.packages['node_modules/leftpad']!.integrity!;
    const entry = poisonCacheEntry(cacheDir, integrity);
    registry.requests.length = 0;
    const second = await buildFragment(spec, join(project, 'b.tar'), { root: project, environment, cacheDir, env: npmEnv });
    expect(second.diffId).toBe(first.diffId);
    expect(registry.requests.length).toBeGreaterThan(0);
    expect((await findInStore(cacheDir, integrity as never)).kind).toBe('hit');

    poisonCacheEntry(cacheDir, integrity);
    const error = await buildFragment(spec, join(project, 'c.tar'), { root: project, environment, cacheDir, env: npmEnv, isOffline: true }).then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedoError);
    expect((error as RedoError).code).toBe('ERR_CACHE_DAMAGED');
    expect((error as RedoError).headline).toMatch(/^redo: "targets\/deps\.spec\.yaml": npm package leftpad.*1\.0\.0.*: the cached copy does not match its pin$/);
    expect((error as RedoError).details.slice(0, 3).map((line) => line.replace(/sha512-\S+/, 'sha512-…'))).toEqual([`entry:  ${entry}`, `wanted: sha512-…`, 'found:  sha512-…']);
    expect((error as RedoError).details[1]).toBe(`wanted: ${integrity}`);
    expect((error as RedoError).details[2]).not.toContain(integrity);
    expect((await findInStore(cacheDir, integrity as never)).kind).toBe('absent');
  }, 240_000);

  it('a lock with resolved URLs is fetched from them; dev: true installs devDependencies too', async () => {
    const project = await makeProject('  dev: true\n', ['--no-omit-lockfile-registry-resolved']);
    const lock = JSON.parse(readFileSync(join(project, 'app', 'package-lock.json'), 'utf8'));
    expect(lock.packages['node_modules/devtool'].resolved).toBe(`${registry.url}devtool/-/devtool-0.1.0.tgz`);
    registry.requests.length = 0;
    const out = join(project, 'deps.fragment.tar');
    const result = await buildFragment(join(project, 'targets/deps.spec.yaml'), out, { root: project, environment, cacheDir: join(project, 'cache'), env: npmEnv });
    expect(registry.requests).toContain('/devtool/-/devtool-0.1.0.tgz');
    expect(entriesByPath(out).has('app/node_modules/devtool/package.json')).toBe(true);
    expect(result.sources.map((source) => source.name)).toEqual(['@demo/greeter', 'devtool', 'leftpad']);
  }, 120_000);

  it('a tarball whose bytes differ from the lock\'s integrity stops the build, naming the package; it is not cached', async () => {
    const project = await makeProject();
    const original = registry.tarball('leftpad', '1.0.0');
    const other = join(base, 'other-leftpad');
    mkdirSync(join(other, 'package'), { recursive: true });
    writeFileSync(join(other, 'package', 'package.json'), JSON.stringify({ name: 'leftpad', version: '1.0.0' }));
    writeFileSync(join(other, 'package', 'index.js'), 'module.exports = () => "tampered";\n');
    registry.replaceTarball('leftpad', '1.0.0', execFileSync('tar', ['-czf', '-', '-C', other, 'package']));
    try {
      const lock = JSON.parse(readFileSync(join(project, 'app', 'package-lock.json'), 'utf8'));
      const failure = buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'deps.fragment.tar'), { root: project, environment, cacheDir: join(project, 'cache'), env: npmEnv });
      await expect(failure).rejects.toMatchObject({
        code: 'ERR_INTEGRITY_MISMATCH',
        headline: 'redo: "targets/deps.spec.yaml": npm package leftpad@1.0.0: integrity mismatch',
        details: expect.arrayContaining([`wanted: ${lock.packages['node_modules/leftpad'].integrity}`]),
      });
      // The bytes that did not match are not in the cache.
      expect(await findInStore(join(project, 'cache'), lock.packages['node_modules/leftpad'].integrity)).toEqual({ kind: 'absent' });
    } finally {
      registry.replaceTarball('leftpad', '1.0.0', original);
    }
  }, 120_000);

  it('without npm in the build environment, the install stops naming it: the machine\'s npm is never used', async () => {
    const project = await makeProject();
    await expect(buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'x.tar'), { root: project, environment: await testBuildEnvironment(), cacheDir: join(project, 'cache'), env: npmEnv }))
      .rejects.toMatchObject({ code: 'ERR_BUILD_TOOL_MISSING', headline: 'redo: "targets/deps.spec.yaml": npm ci (app/package-lock.json) ran "npm", which its build environment does not have' });
  }, 120_000);

  it('with `build-environment: host` (the visible opt-out) the install runs with the machine\'s npm and the fragment says host-built', async () => {
    const project = await makeProject('build-environment: host\n');
    const result = await buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'x.tar'), { root: project, cacheDir: join(project, 'cache'), env: npmEnv });
    expect(result.buildEnvironment).toEqual({ kind: 'host', spec: 'targets/deps.spec.yaml' });
    expect(entriesByPath(join(project, 'x.tar')).has('app/node_modules/leftpad/package.json')).toBe(true);
  }, 120_000);

  it('a lockfileVersion 1 lock is refused with the command that upgrades it', async () => {
    const project = await makeProject();
    writeFileSync(join(project, 'app', 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 1, dependencies: {} }));
    await expect(buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'x.tar'), { root: project, environment, cacheDir: join(project, 'cache'), env: npmEnv }))
      .rejects.toMatchObject({ code: 'ERR_NPM_LOCK_INVALID', hint: expect.stringContaining('npm install --package-lock-only') });
  }, 60_000);

  it('an install script builds a native part with the build step\'s compiler', async () => {
    // The compiler comes from a build-requires too (gcc and libc6-dev, locked), never the machine.
    const project = await makeProject('', [], { 'hello-native': '1.0.0' });
    const out = join(project, 'deps.fragment.tar');
    const withCompiler = [...environment, await testToolFragment('toolchain')];
    const result = await buildFragment(join(project, 'targets/deps.spec.yaml'), out, { root: project, environment: withCompiler, cacheDir: join(project, 'cache'), env: npmEnv });
    expect(result.buildEnvironment.kind).toBe('sandbox');
    expect(entriesByPath(out).get('app/node_modules/hello-native/hello')).toMatchObject({ type: 'file', mode: 0o755 });
    const root = join(project, 'root');
    mkdirSync(root);
    execFileSync('tar', ['-xf', out, '-C', root]);
    expect(execFileSync(join(root, 'app/node_modules/hello-native/hello'), { encoding: 'utf8' })).toBe('native hello\n');
  }, 300_000);
});
