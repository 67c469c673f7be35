// PyPI dependencies from a hashed requirements.txt: each file fetched with the machine's
// pip from a loopback PEP 503 index, checked against its hash, installed by
// `pip install --no-index --require-hashes --no-deps` as a build step: in the build
// sandbox, with Debian's python3 and pip (test/fixtures/python-environment, a
// build-requires over the tests' build environment), never the machine's.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entriesOfTar, readEntryBytes } from '../../lib/image/tar.js';
import { buildFragment } from '../../lib/sources/fragment.js';
import type { EnvironmentPart } from '../../lib/sandbox/environment.js';
import { testBuildEnvironment, testToolFragment } from '../helpers/build-environment.js';
import { pipEnvironment, startTestIndex, type TestIndex } from '../helpers/pypi-index.js';
import { poisonCacheEntry } from '../helpers/cache-poisoner.js';
import { RedoError } from '../../lib/errors.js';
import { findInStore } from '../../lib/sources/store.js';
import type { Integrity } from '../../lib/sources/integrity.js';

let base: string;
let index: TestIndex;
let env: NodeJS.ProcessEnv;
let environment: EnvironmentPart[];

beforeAll(async () => {
  // On a fresh cache this builds the python3 + pip fragment (about 50 Debian packages).
  environment = [...await testBuildEnvironment(), await testToolFragment('python')];
  base = mkdtempSync(join(tmpdir(), 'redo-ts-pypi-'));
  index = await startTestIndex(base, [
    { name: 'textpad', version: '0.3', license: 'MIT', files: { 'textpad/__init__.py': 'def pad(text, width):\n    return text.rjust(width, ".")\n' } },
    {
      name: 'tinyweb', version: '1.2.0', license: 'BSD-3-Clause',
      files: { 'tinyweb/__init__.py': 'from textpad import pad\n\ndef hello():\n    return pad("hello", 8)\n\ndef main():\n    print(hello())\n' },
      scripts: ['tinyweb = tinyweb:main'],
    },
  ]);
  env = pipEnvironment(index.url);
}, 300_000);

afterAll(async () => {
  await index?.close();
  rmSync(base, { recursive: true, force: true });
});

let counter = 0;
function makeProject(requirements: string, specExtra = ''): string {
  counter += 1;
  const project = join(base, `project-${counter}`);
  mkdirSync(join(project, 'targets'), { recursive: true });
  mkdirSync(join(project, 'app'), { recursive: true });
  writeFileSync(join(project, 'package.json'), '{}\n');
  writeFileSync(join(project, 'app', 'requirements.txt'), requirements);
  writeFileSync(join(project, 'targets', 'deps.spec.yaml'), `name: deps\nversion: "1"\npypi:\n  requirements: app/requirements.txt\n  path: /app/packages\n${specExtra}`);
  return project;
}

const hashed = (): string => [
  '# pip-compile --generate-hashes style',
  `textpad==0.3 \\`,
  `    --hash=sha256:${index.sha256Of('textpad')}`,
  `tinyweb==1.2.0 \\`,
  `    --hash=sha256:${'0'.repeat(64)} \\`,
  `    --hash=sha256:${index.sha256Of('tinyweb')}`,
  '',
].join('\n');

describe('pypi: a hashed requirements.txt', () => {
  it('installs each pinned wheel with pip --no-index --require-hashes into the image folder; the pins are the hashes', async () => {
    const project = makeProject(hashed());
    const out = join(project, 'deps.fragment.tar');
    const result = await buildFragment(join(project, 'targets/deps.spec.yaml'), out, { root: project, environment, cacheDir: join(project, 'cache'), env });
    expect(result.buildEnvironment.kind).toBe('sandbox');
    const paths = entriesOfTar(out).map((entry) => entry.path.toString());
    expect(paths).toEqual(expect.arrayContaining([
      'app/packages/textpad/__init__.py', 'app/packages/textpad-0.3.dist-info/METADATA', 'app/packages/textpad-0.3.dist-info/RECORD',
      'app/packages/tinyweb/__init__.py', 'app/packages/tinyweb-1.2.0.dist-info/METADATA',
    ]));
    // The console script names no path of the build machine.
    const script = entriesOfTar(out).find((entry) => entry.path.toString() === 'app/packages/bin/tinyweb')!;
    expect(readEntryBytes(script)!.toString().split('\n')[0]).toBe('#!/usr/bin/env python3');
    expect(script.mode).toBe(0o755);
    // --no-compile: no byte code that would record the build's Python or time.
    expect(paths.filter((path) => path.includes('__pycache__'))).toEqual([]);
    const sri = (hex: string): string => `sha256-${Buffer.from(hex, 'hex').toString('base64')}`;
    expect(result.sources).toEqual([
      expect.objectContaining({ kind: 'pypi', name: 'textpad', version: '0.3', integrity: sri(index.sha256Of('textpad')), url: `pypi:${index.wheelOf('textpad')}` }),
      expect.objectContaining({ kind: 'pypi', name: 'tinyweb', version: '1.2.0', integrity: sri(index.sha256Of('tinyweb')) }),
    ]);
    const root = join(project, 'root');
    mkdirSync(root);
    execFileSync('tar', ['-xf', out, '-C', root]);
    expect(execFileSync('python3', ['-c', 'import tinyweb; print(tinyweb.hello())'], { env: { ...process.env, PYTHONPATH: join(root, 'app/packages') }, encoding: 'utf8' })).toBe('...hello\n');
  }, 120_000);

  it('a warm cache builds offline, with the index never asked, to the same bytes', async () => {
    const project = makeProject(hashed());
    const cacheDir = join(project, 'cache');
    const first = await buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'a.tar'), { root: project, environment, cacheDir, env });
    index.requests.length = 0;
    const second = await buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'b.tar'), { root: project, environment, cacheDir, env, isOffline: true });
    expect(index.requests).toEqual([]);
    expect(second.diffId).toBe(first.diffId);
  }, 120_000);

  it('a cached wheel whose bytes were changed is refused as it is copied for pip, dropped and fetched again; offline the build names the entry, wanted and found', async () => {
    const project = makeProject(hashed());
    const cacheDir = join(project, 'cache');
    const spec = join(project, 'targets/deps.spec.yaml');
    const first = await buildFragment(spec, join(project, 'a.tar'), { root: project, environment, cacheDir, env });
    const integrity = `sha256-${Buffer.from(index.sha256Of('textpad'), 'hex').toString('base64')}` as Integrity;
    const entry = poisonCacheEntry(cacheDir, integrity);
    index.requests.length = 0;
    const second = await buildFragment(spec, join(project, 'b.tar'), { root: project, environment, cacheDir, env });
    expect(second.diffId).toBe(first.diffId);
    expect(index.requests.length).toBeGreaterThan(0);
    expect((await findInStore(cacheDir, integrity)).kind).toBe('hit');

    poisonCacheEntry(cacheDir, integrity);
    const error = await buildFragment(spec, join(project, 'c.tar'), { root: project, environment, cacheDir, env, isOffline: true }).then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedoError);
    expect((error as RedoError).code).toBe('ERR_CACHE_DAMAGED');
    expect((error as RedoError).headline).toBe('redo: "targets/deps.spec.yaml": PyPI package textpad==0.3 (app/requirements.txt): the cached copy does not match its pin');
    expect((error as RedoError).details.slice(0, 2)).toEqual([`entry:  ${entry}`, `wanted: ${integrity}`]);
    expect((error as RedoError).details[2]).toMatch(/^found: {2}sha256-/);
    expect((error as RedoError).details[2]).not.toContain(integrity);
    expect((await findInStore(cacheDir, integrity)).kind).toBe('absent');
  }, 240_000);

  it('a requirements file without hashes is refused, naming each line and the command that adds them', async () => {
    const project = makeProject('textpad==0.3\ntinyweb>=1.0 --hash=sha256:' + '1'.repeat(64) + '\n');
    await expect(buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'x.tar'), { root: project, environment, cacheDir: join(project, 'cache'), env })).rejects.toMatchObject({
      code: 'ERR_PYPI_UNHASHED',
      headline: 'redo: "app/requirements.txt": 2 requirements are not pinned by hash',
      details: ['app/requirements.txt:1: textpad==0.3 (no --hash=sha256:...)', 'app/requirements.txt:2: tinyweb>=1.0 (not pinned to one version with ==)'],
      hint: expect.stringContaining('pip-compile --generate-hashes --output-file=requirements.txt requirements.in'),
    });
  });

  it('without python3 in the build environment, the install stops naming it: the machine\'s python3 is never used', async () => {
    const project = makeProject(hashed());
    await expect(buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'x.tar'), { root: project, environment: await testBuildEnvironment(), cacheDir: join(project, 'cache'), env }))
      .rejects.toMatchObject({ code: 'ERR_BUILD_TOOL_MISSING', headline: 'redo: "targets/deps.spec.yaml": pip install (app/requirements.txt) ran "python3", which its build environment does not have' });
  }, 120_000);

  it('a file whose bytes differ from its hash stops the build, naming the requirement', async () => {
    const project = makeProject(hashed());
    const original = index.sha256Of('textpad');
    const wheel = join(base, 'wheels', index.wheelOf('textpad'));
    index.replace('textpad', Buffer.concat([execFileSync('cat', [wheel]), Buffer.from('tampered')]));
    try {
      await expect(buildFragment(join(project, 'targets/deps.spec.yaml'), join(project, 'x.tar'), { root: project, environment, cacheDir: join(project, 'cache'), env })).rejects.toMatchObject({
        code: 'ERR_INTEGRITY_MISMATCH',
        headline: 'redo: "targets/deps.spec.yaml": PyPI package textpad==0.3 (app/requirements.txt:2): integrity mismatch',
      });
    } finally {
      index.replace('textpad', execFileSync('cat', [wheel]));
    }
    expect(index.sha256Of('textpad')).toBe(original);
  }, 120_000);
});
