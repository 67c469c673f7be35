// The lock readers of app dependencies: package-lock.json entries and hashed requirements lines.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { npmDefaultRegistry, readNpmLock } from '../../../lib/sources/npm/lock.js';
import { normalName, readRequirements } from '../../../lib/sources/pypi/requirements.js';

const dir = mkdtempSync(join(tmpdir(), 'redo-ts-app-locks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha512 = `sha512-${Buffer.alloc(64, 1).toString('base64')}`;
const hex = 'ab'.repeat(32);

function lockOf(packages: Record<string, unknown>): string {
  const path = join(dir, `lock-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({ name: 'app', lockfileVersion: 3, packages: { '': { name: 'app' }, ...packages } }));
  return path;
}

describe('readNpmLock', () => {
  it.each([
    ['a registry package without resolved gets the default registry URL', { 'node_modules/a': { version: '1.0.0', integrity: sha512 } },
      { name: 'a', resolved: `${npmDefaultRegistry()}a/-/a-1.0.0.tgz`, hasResolved: false }],
    ['a scoped package', { 'node_modules/@s/b': { version: '2.0.0', integrity: sha512 } },
      { name: '@s/b', resolved: `${npmDefaultRegistry()}@s/b/-/b-2.0.0.tgz` }],
    ['an alias takes its real name from the entry', { 'node_modules/alias': { name: 'real', version: '3.0.0', integrity: sha512, resolved: 'https://r.example/real/-/real-3.0.0.tgz' } },
      { location: 'node_modules/alias', name: 'real', resolved: 'https://r.example/real/-/real-3.0.0.tgz', hasResolved: true }],
    ['a nested copy keeps its location', { 'node_modules/a/node_modules/c': { version: '1.0.0', integrity: sha512, dev: true } },
      { location: 'node_modules/a/node_modules/c', name: 'c', isDev: true }],
    ['of several hashes the strongest is the pin', { 'node_modules/d': { version: '1.0.0', integrity: `sha1-${Buffer.alloc(20).toString('base64')} ${sha512}` } },
      { integrity: sha512 }],
  ])('%s', async (_name, packages, wanted) => {
    const lock = await readNpmLock(lockOf(packages), 'app/package-lock.json');
    expect(lock.packages).toEqual([expect.objectContaining(wanted)]);
  });

  it('leaves out bundled dependencies (they come inside their parent)', async () => {
    const lock = await readNpmLock(lockOf({ 'node_modules/a': { version: '1.0.0', integrity: sha512 }, 'node_modules/a/node_modules/x': { version: '1.0.0', inBundle: true } }), 'l');
    expect(lock.packages.map((item) => item.location)).toEqual(['node_modules/a']);
  });

  it.each([
    ['a workspace link', { 'node_modules/w': { resolved: 'packages/w', link: true } }, /is a link to packages\/w/],
    ['a git dependency', { 'node_modules/g': { version: '1.0.0', resolved: 'git+ssh://git@example.org/g.git#abc', integrity: sha512 } }, /comes from git\+ssh/],
    ['a sha1-only integrity', { 'node_modules/o': { version: '1.0.0', integrity: `sha1-${Buffer.alloc(20).toString('base64')}` } }, /has no sha256\/384\/512 integrity/],
  ])('refuses %s', async (_name, packages, headline) => {
    await expect(readNpmLock(lockOf(packages), 'app/package-lock.json')).rejects.toMatchObject({ code: 'ERR_NPM_LOCK_INVALID', headline: expect.stringMatching(headline) });
  });
});

describe('readRequirements', () => {
  const read = async (text: string) => {
    const path = join(dir, `req-${Math.random().toString(36).slice(2)}.txt`);
    writeFileSync(path, text);
    return readRequirements(path, 'app/requirements.txt');
  };

  it('reads continuations, comments, extras, markers and several hashes', async () => {
    const found = await read(`# top\n--index-url https://example.org/simple\nFlask[async]==3.1.3 \\\n    --hash=sha256:${hex} \\\n    --hash=sha256:${'cd'.repeat(32)}  # via -r in\nzope.interface==7.0 --hash=sha256:${hex} ; python_version >= "3.8"\n`);
    expect(found).toEqual([
      expect.objectContaining({ name: 'Flask', normalName: 'flask', version: '3.1.3', extras: '[async]', sha256Hex: [hex, 'cd'.repeat(32)], line: 3 }),
      expect.objectContaining({ name: 'zope.interface', normalName: 'zope-interface', version: '7.0', marker: '; python_version >= "3.8"', line: 6 }),
    ]);
  });

  it.each([
    ['Foo_Bar', 'foo-bar'],
    ['foo.bar', 'foo-bar'],
    ['FOO--bar', 'foo-bar'],
  ])('the normal name of %s is %s', (name, wanted) => {
    expect(normalName(name)).toBe(wanted);
  });

  it('refuses -r and URL requirements', async () => {
    await expect(read('-r other.txt\n')).rejects.toMatchObject({ code: 'ERR_PYPI_REQUIREMENTS_INVALID' });
    await expect(read('pkg @ https://example.org/pkg.whl\n')).rejects.toMatchObject({ code: 'ERR_PYPI_REQUIREMENTS_INVALID' });
  });
});
