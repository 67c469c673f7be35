// An image with npm and PyPI dependency layers (from a loopback registry and index) and
// an app layer: every npm and PyPI package is a package of its own in the SBOM (purl,
// licence from its own metadata, the lock's hash, its files), `origin` names the one
// package that delivered a file, `contains` finds it; both validators pass. The installs
// run sandboxed: npm with Debian's nodejs and npm's pinned release, pip with Debian's
// python3 (build-requires over the tests' build environment).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyAppToolSpecs, copyBuildEnvironment, testBuildEnvironment, testNpmFragment, testToolFragment } from '../helpers/build-environment.js';
import { startTestRegistry, type TestRegistry } from '../helpers/npm-registry.js';
import { startTestIndex, type TestIndex } from '../helpers/pypi-index.js';
import { copyWithRules, runCli } from '../helpers/rig.js';
import { cycloneDxProblems, spdxProblems } from '../helpers/sbom-validators.js';

type Json = Record<string, any>;

let base: string;
let dir: string;
let registry: TestRegistry;
let index: TestIndex;
let env: NodeJS.ProcessEnv;
let spdx: Json;
let cdxText: string;
let otherWheelSha256: string;
let spdxText: string;

beforeAll(async () => {
  await Promise.all([testBuildEnvironment(), testToolFragment('python'), testToolFragment('nodejs'), testNpmFragment()]);
  base = mkdtempSync(join(tmpdir(), 'redo-ts-appsbom-'));
  // The machine's own pip configuration stays out: the loopback index is the only one.
  for (const name of Object.keys(process.env)) if (name.startsWith('PIP_')) delete process.env[name];
  const npmEnv = { ...process.env, npm_config_cache: join(base, 'npm-cache'), npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' };
  registry = await startTestRegistry(base, [
    { manifest: { name: 'leftpad', version: '1.0.0', license: 'MIT', description: 'Pads text on the left' }, files: { 'index.js': "module.exports = (s, n) => String(s).padStart(n);\n" } },
    { manifest: { name: '@demo/greeter', version: '2.1.0', license: '(MIT OR Apache-2.0)', dependencies: { leftpad: '^1.0.0' } }, files: { 'index.js': "module.exports = () => require('leftpad')('hi', 4);\n" } },
  ], npmEnv);
  index = await startTestIndex(base, [
    { name: 'textpad', version: '0.3', license: 'MIT', files: { 'textpad/__init__.py': 'pad = str.rjust\n' } },
    { name: 'tinyweb', version: '1.2.0', license: 'Our Own Licence 1.0', files: { 'tinyweb/__init__.py': 'import textpad\n' } },
    { name: 'twowheels', version: '1.0', license: 'MIT', files: { 'twowheels/__init__.py': 'x = 1\n' } },
  ]);
  // A requirement pinned by two wheels, as pip-compile --generate-hashes writes it for a
  // package with platform wheels: this platform's (the pure one built above) and another's.
  otherWheelSha256 = index.serve('twowheels-1.0-cp312-cp312-win_amd64.whl', Buffer.from('a wheel for another platform\n'));
  env = { ...npmEnv, npm_config_registry: registry.url, PIP_CONFIG_FILE: '/dev/null', PIP_INDEX_URL: index.url, REDO_TS_CACHE: join(base, 'cache') };

  const empty = mkdtempSync(join(tmpdir(), 'redo-ts-appsbom-empty-'));
  dir = copyWithRules(empty, 'redo-ts-appsbom-project-');
  rmSync(empty, { recursive: true, force: true });
  mkdirSync(join(dir, 'targets'));
  copyBuildEnvironment(join(dir, 'targets'), join(base, 'cache'));
  copyAppToolSpecs(join(dir, 'targets'), dir);
  mkdirSync(join(dir, 'app', 'web'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{}\n');
  writeFileSync(join(dir, 'app', 'package.json'), `${JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: { '@demo/greeter': '^2.0.0' } }, null, 2)}\n`);
  await promisify(execFile)('npm', ['install', '--package-lock-only', '--ignore-scripts', '--registry', registry.url], { cwd: join(dir, 'app'), env: npmEnv });
  writeFileSync(join(dir, 'app', 'requirements.txt'), `textpad==0.3 --hash=sha256:${index.sha256Of('textpad')}\ntinyweb==1.2.0 --hash=sha256:${index.sha256Of('tinyweb')}\ntwowheels==1.0 --hash=sha256:${otherWheelSha256} --hash=sha256:${index.sha256Of('twowheels')}\n`);
  writeFileSync(join(dir, 'app', 'web', 'server.js'), "console.log(require('@demo/greeter')());\n");
  writeFileSync(join(dir, 'targets', 'npmdeps.spec.yaml'), 'name: npmdeps\nversion: "1"\nbuild-requires: [nodejs, npm]\nnpm:\n  lock: app/package-lock.json\n  path: /app\n');
  writeFileSync(join(dir, 'targets', 'pydeps.spec.yaml'), 'name: pydeps\nversion: "1"\nbuild-requires: [python]\npypi:\n  requirements: app/requirements.txt\n  path: /app/packages\n');
  writeFileSync(join(dir, 'targets', 'web.spec.yaml'), 'name: web\nversion: "1"\nsources:\n  - url: file:app/web\n    integrity: project\nbuild:\n  - mkdir -p "$DESTDIR/app" && cp -R web "$DESTDIR/app/web"\nfiles:\n  - path: /app/web\n');
  writeFileSync(join(dir, 'targets', 'app.yaml'), 'tags: [localhost/test/appdeps:1]\nlayers:\n  - npmdeps.fragment.tar\n  - pydeps.fragment.tar\n  - web.fragment.tar\nconfig:\n  cmd: [node, /app/web/server.js]\n');

  const built = await runCli(dir, ['targets/app.tar'], { env });
  expect(built.code, built.stderr).toBe(0);
  const spdxRun = await runCli(dir, ['sbom', 'targets/app.tar'], { env });
  expect(spdxRun.code, spdxRun.stderr).toBe(0);
  spdxText = spdxRun.stdout;
  spdx = JSON.parse(spdxText);
  const cdxRun = await runCli(dir, ['sbom', '--format', 'cyclonedx', 'targets/app.tar'], { env });
  expect(cdxRun.code, cdxRun.stderr).toBe(0);
  cdxText = cdxRun.stdout;
}, 420_000);

afterAll(async () => {
  await registry?.close();
  await index?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  rmSync(base, { recursive: true, force: true });
});

describe('SBOM and queries of npm and PyPI packages', () => {
  it('lists each npm and PyPI package with name, version, purl, declared licence and the lock\'s hash; the SPDX validator passes', () => {
    expect(spdxProblems(spdxText)).toEqual([]);
    const byName = new Map<string, Json>(spdx.packages.map((item: Json) => [item.name, item]));
    const purl = (item: Json): string => item.externalRefs?.find((ref: Json) => ref.referenceType === 'purl')?.referenceLocator;
    expect(purl(byName.get('leftpad')!)).toBe('pkg:npm/leftpad@1.0.0');
    expect(purl(byName.get('@demo/greeter')!)).toBe('pkg:npm/%40demo/greeter@2.1.0');
    expect(purl(byName.get('textpad')!)).toBe('pkg:pypi/textpad@0.3');
    expect(purl(byName.get('tinyweb')!)).toBe('pkg:pypi/tinyweb@1.2.0');
    expect(byName.get('leftpad')!.licenseDeclared).toBe('MIT');
    expect(byName.get('@demo/greeter')!.licenseDeclared).toBe('(MIT OR Apache-2.0)');
    expect(byName.get('textpad')!.licenseDeclared).toBe('MIT');
    // A licence SPDX does not list is a LicenseRef quoting the declaration.
    expect(byName.get('tinyweb')!.licenseDeclared).toBe('LicenseRef-Our-Own-Licence-1.0');
    expect(spdx.hasExtractedLicensingInfos).toContainEqual(expect.objectContaining({ licenseId: 'LicenseRef-Our-Own-Licence-1.0', name: 'Our Own Licence 1.0' }));
    expect(byName.get('leftpad')!.checksums).toEqual([{ algorithm: 'SHA512', checksumValue: createHash('sha512').update(registry.tarball('leftpad', '1.0.0')).digest('hex') }]);
    expect(byName.get('textpad')!.checksums).toEqual([{ algorithm: 'SHA256', checksumValue: index.sha256Of('textpad') }]);
    const nameOf = new Map<string, string>([...spdx.packages, ...spdx.files].map((e: Json) => [e.SPDXID, e.name ?? e.fileName]));
    const relations = spdx.relationships.map((r: Json) => `${nameOf.get(r.spdxElementId) ?? r.spdxElementId} ${r.relationshipType} ${nameOf.get(r.relatedSpdxElement)}`);
    expect(relations).toEqual(expect.arrayContaining([
      'localhost/test/appdeps:1 CONTAINS leftpad',
      'leftpad CONTAINS ./app/node_modules/leftpad/index.js',
      '@demo/greeter CONTAINS ./app/node_modules/@demo/greeter/index.js',
      '@demo/greeter DEPENDS_ON leftpad',
      'tinyweb CONTAINS ./app/packages/tinyweb/__init__.py',
      'textpad CONTAINS ./app/packages/textpad-0.3.dist-info/METADATA',
      'web CONTAINS ./app/web/server.js',
    ]));
  });

  it('gives each package a CycloneDX library component with purl, licence, hash and its files; the CycloneDX validator passes', async () => {
    expect(await cycloneDxProblems(cdxText)).toEqual([]);
    const bom = JSON.parse(cdxText) as Json;
    const leftpad = bom.components.find((component: Json) => component.name === 'leftpad');
    expect(leftpad).toMatchObject({ type: 'library', version: '1.0.0', purl: 'pkg:npm/leftpad@1.0.0', licenses: [{ expression: 'MIT' }], description: 'Pads text on the left' });
    expect(leftpad.hashes[0].alg).toBe('SHA-512');
    expect(leftpad.components.map((file: Json) => file.name).sort()).toEqual(['/app/node_modules/leftpad/index.js', '/app/node_modules/leftpad/package.json']);
    const tinyweb = bom.components.find((component: Json) => component.name === 'tinyweb');
    expect(tinyweb).toMatchObject({ type: 'library', purl: 'pkg:pypi/tinyweb@1.2.0' });
  });

  it('a requirement with two hashes (two platforms\' wheels) is named by the one whose file was fetched, in SPDX and CycloneDX', async () => {
    // Only this platform's wheel was fetched; the other hash comes first on the line.
    expect(index.requests).toContain(`/files/${index.wheelOf('twowheels')}`);
    expect(index.requests).not.toContain('/files/twowheels-1.0-cp312-cp312-win_amd64.whl');
    const twowheels = spdx.packages.find((item: Json) => item.name === 'twowheels');
    expect(twowheels.checksums).toEqual([{ algorithm: 'SHA256', checksumValue: index.sha256Of('twowheels') }]);
    const component = (JSON.parse(cdxText) as Json).components.find((item: Json) => item.name === 'twowheels');
    expect(component.hashes).toEqual([{ alg: 'SHA-256', content: index.sha256Of('twowheels') }]);
  });

  it('origin names the one package that delivered a file', async () => {
    const result = await runCli(dir, ['origin', '--json', 'targets/app.tar', '/app/node_modules/leftpad/index.js'], { env });
    expect(result.code, result.stderr).toBe(0);
    const answer = JSON.parse(result.stdout);
    const found = Array.isArray(answer) ? answer : [answer];
    expect(found).toEqual([expect.objectContaining({ spec: 'targets/npmdeps.spec.yaml', package: 'leftpad 1.0.0 npm', purl: 'pkg:npm/leftpad@1.0.0', licence: 'MIT' })]);
    const python = await runCli(dir, ['origin', '--json', 'targets/app.tar', '/app/packages/textpad/__init__.py'], { env });
    expect(python.code, python.stderr).toBe(0);
    expect(python.stdout).toContain('"package": "textpad 0.3 pypi"');
  });

  it('contains finds an npm and a PyPI package, with its layer and version', async () => {
    const npm = await runCli(dir, ['contains', '--json', 'leftpad'], { env });
    expect(npm.code, npm.stderr).toBe(0);
    expect(JSON.parse(npm.stdout)).toEqual([expect.objectContaining({ image: 'targets/app.tar', layer: 'targets/npmdeps.fragment.tar', package: 'leftpad', version: '1.0.0' })]);
    const pypi = await runCli(dir, ['contains', 'tinyweb=1.2.0'], { env });
    expect(pypi.code, pypi.stderr).toBe(0);
    expect(pypi.stdout).toContain('tinyweb');
    const none = await runCli(dir, ['contains', 'tinyweb=9.9'], { env });
    expect(none.code).toBe(1);
  });

  it('pins lists every npm and PyPI package with the lock\'s hash', async () => {
    const result = await runCli(dir, ['pins', '--json', 'targets/app.tar'], { env });
    expect(result.code, result.stderr).toBe(0);
    const pins = JSON.parse(result.stdout) as Json[];
    expect(pins.filter((pin) => pin.kind === 'npm').map((pin) => `${pin.name} ${pin.version}`)).toEqual(['@demo/greeter 2.1.0', 'leftpad 1.0.0']);
    expect(pins.find((pin) => pin.name === 'textpad')).toMatchObject({ kind: 'pypi', version: '0.3', integrity: `sha256-${Buffer.from(index.sha256Of('textpad'), 'hex').toString('base64')}` });
  });

  it('an edit to the app rebuilds only the app layer; a change to a lock only its dependency layer', async () => {
    writeFileSync(join(dir, 'app', 'web', 'server.js'), "console.log('edited', require('@demo/greeter')());\n");
    const edited = await runCli(dir, ['targets/app.tar'], { env });
    expect(edited.code, edited.stderr).toBe(0);
    // Which rules ran: the `redo  TARGET  (why)` lines.
    const ran = (stderr: string): string[] => [...stderr.matchAll(/^redo {2}(\S+\.fragment\.tar) /gm)].map((match) => match[1]!);
    expect(ran(edited.stderr)).toEqual(['targets/web.fragment.tar']);
    const lockPath = join(dir, 'app', 'package-lock.json');
    writeFileSync(lockPath, JSON.stringify(JSON.parse(readFileSync(lockPath, 'utf8'))));
    const relocked = await runCli(dir, ['targets/app.tar'], { env });
    expect(relocked.code, relocked.stderr).toBe(0);
    expect(ran(relocked.stderr)).toEqual(['targets/npmdeps.fragment.tar']);
  }, 120_000);
});
