import { describe, expect, it } from 'vitest';
import { isRedoError } from '../../../../lib/errors.js';
import { universeFromTexts } from '../../../../lib/sources/debian/indexes.js';
import { checkLockCurrent, diffLocks, formatLock, lockOf, parseLock } from '../../../../lib/sources/debian/lock.js';
import { resolvePackages } from '../../../../lib/sources/debian/resolve.js';
import { packageLayers } from '../../../../lib/sources/debian/packages.js';
import { parseSpec } from '../../../../lib/sources/spec.js';

const index = [
  'Package: app\nVersion: 1:2.0-1\nArchitecture: amd64\nSource: app-src (1:2.0-1)\nDepends: libc6\nFilename: pool/main/a/app-src/app_2.0-1_amd64.deb\nSize: 1234\nSHA256: ' + '01'.repeat(32),
  'Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\nSource: glibc\nFilename: pool/main/g/glibc/libc6_2.36-9_amd64.deb\nSize: 99\nSHA256: ' + '02'.repeat(32),
].join('\n\n');
const universe = universeFromTexts('amd64', [{ suite: 'bookworm', text: `${index}\n` }]);

function specWith(packages: string): ReturnType<typeof parseSpec> {
  return parseSpec(`name: x\nversion: "1"\n${packages}`, '/p/targets/x.spec.yaml', '/p');
}

describe('package lists in specs', () => {
  it('reads names, Debian constraints, the map form, architecture and excludes', () => {
    const spec = specWith('packages:\n  - app\n  - "libc6 (>= 2.36)"\n  - {name: tzdata, version: "2024a-1", exclude: [/usr/share/zoneinfo/right/**]}\narchitecture: arm64\nexclude: [/usr/share/doc/**]\n');
    expect(spec.packages!.entries.map((entry) => entry.relation)).toEqual([
      { name: 'app' },
      { name: 'libc6', constraint: { operator: '>=', version: '2.36' } },
      { name: 'tzdata', constraint: { operator: '=', version: '2024a-1' } },
    ]);
    expect(spec.packages!.entries[2]!.exclude).toEqual(['/usr/share/zoneinfo/right/**']);
    expect(spec.packages!.architecture).toBe('arm64');
    expect(spec.packages!.isRecommendsWanted).toBe(false);
    expect(spec.packages!.exclude).toEqual(['/usr/share/doc/**']);
  });
  const bad: Array<[string, string]> = [
    ['packages:\n  - "a | b"\n', 'packages[0]: "a | b" must name one package'],
    ['packages:\n  - "libc6 (>= )"\n', 'is not a Debian package name'],
    ['packages:\n  - app\n  - app\n', '"app" is already listed as packages[0]'],
    ['recommends: true\n', 'recommends: applies only to a spec with a `packages` list'],
    ['packages: [app]\nrecommends: maybe\n', 'recommends: must be true or false'],
  ];
  for (const [text, message] of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      try {
        specWith(text);
        throw new Error('accepted');
      } catch (error) {
        expect(isRedoError(error, 'ERR_SPEC_INVALID'), String(error)).toBe(true);
        expect((error as Error).message).toContain(message);
      }
    });
  }
});

describe('lock files', () => {
  const list = specWith('packages: [app]\n').packages!;
  const lock = lockOf('/p/targets/x.spec.yaml', list, 'amd64', universe.indexes, resolvePackages(universe, list.entries.map((e) => e.relation)));

  it('round-trips through its text, which quotes what YAML could misread', () => {
    const text = formatLock(lock);
    expect(text).toContain('  - name: app\n    version: "1:2.0-1"\n    architecture: amd64\n    source: app-src\n    size: 1234\n');
    expect(text).toContain('    pulled-by: [app]\n');
    expect(parseLock(text, 'x.lock.yaml')).toEqual(lock);
  });
  it('says exactly what differs when the list changed', () => {
    const changed = specWith('packages: [app, "libc6 (>= 2.36)"]\nrecommends: true\n').packages!;
    try {
      checkLockCurrent(lock, changed, 'amd64', 'targets/x.lock.yaml', 'targets/x.spec.yaml');
      throw new Error('accepted');
    } catch (error) {
      expect(isRedoError(error, 'ERR_DEBIAN_LOCK_STALE')).toBe(true);
      expect((error as { details: string[] }).details).toEqual(['added to the list:     libc6 (>= 2.36)', 'recommends: the lock has false, the spec says true']);
    }
    expect(() => checkLockCurrent(lock, list, 'amd64', 'l', 's')).not.toThrow();
  });
  it('refuses a lock of another format version or with a damaged integrity', () => {
    const text = formatLock(lock);
    const problemOf = (bad: string): string => {
      try {
        parseLock(bad, 'x');
      } catch (error) {
        if (isRedoError(error, 'ERR_DEBIAN_LOCK_INVALID')) return error.render();
      }
      return 'accepted';
    };
    expect(problemOf(text.replace('lock-version: 1', 'lock-version: 2'))).toContain('problem: lock-version 2 (this redo-ts reads version 1)');
    expect(problemOf(text.replace(/integrity: "sha256-[^"]+"\n {4}suite/, 'integrity: md5-x\n    suite'))).toContain('integrity "md5-x" is not an SRI sha256');
  });
  it('lists version changes between two locks', () => {
    const newer = { ...lock, packages: lock.packages.map((p) => (p.name === 'app' ? { ...p, version: '1:2.1-1' } : p)).filter((p) => p.name !== 'libc6') };
    expect(diffLocks(lock, newer)).toEqual([{ name: 'app', old: '1:2.0-1', new: '1:2.1-1' }, { name: 'libc6', old: '2.36-9' }]);
  });
});

describe('packageLayers', () => {
  const lockWith = (versions: Record<string, string>) => ({
    spec: 'x.spec.yaml', architecture: 'amd64', isRecommendsWanted: false, requested: [], indexes: [],
    packages: [
      ['app', ['requested']], ['libc6', ['app', 'tool']], ['libssl3', ['app']], ['tool', ['requested']], ['zlib1g', ['tool']],
    ].map(([name, pulledBy]) => ({ name: name as string, version: versions[name as string] ?? '1', architecture: 'amd64', source: name as string, sizeBytes: 1, filename: '', integrity: '', suite: 's', pulledBy: pulledBy as string[] })),
  });
  const list = parseSpec('name: x\nversion: "1"\npackages:\n  - {name: tool, layer: tools}\n  - {name: app, layer: app}\n', '/p/x.spec.yaml', '/p').packages!;
  it('gives each listed layer its package and what it pulled in, first listed first', () => {
    expect([...packageLayers(lockWith({}), list)].sort()).toEqual([['app', 'app'], ['libc6', 'tools'], ['libssl3', 'app'], ['tool', 'tools'], ['zlib1g', 'tools']]);
  });
  it('does not move any package when one package gets a new version', () => {
    expect([...packageLayers(lockWith({ libssl3: '2' }), list)]).toEqual([...packageLayers(lockWith({}), list)]);
  });
});
