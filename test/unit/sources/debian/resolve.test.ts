import { describe, expect, it } from 'vitest';
import { isRedoError } from '../../../../lib/errors.js';
import { universeFromTexts } from '../../../../lib/sources/debian/indexes.js';
import { resolvePackages } from '../../../../lib/sources/debian/resolve.js';
import { parseRelation, type Relation } from '../../../../lib/sources/debian/version.js';

/** A Packages paragraph with the fields the resolver reads. */
function pkg(name: string, version: string, fields: Record<string, string> = {}): string {
  const lines = [`Package: ${name}`, `Version: ${version}`, `Architecture: ${fields.Architecture ?? 'amd64'}`];
  for (const [key, value] of Object.entries(fields)) if (key !== 'Architecture') lines.push(`${key}: ${value}`);
  lines.push(`Filename: pool/main/${name[0]}/${name}/${name}_${version}_amd64.deb`, 'Size: 100', `SHA256: ${'ab'.repeat(32)}`);
  return lines.join('\n');
}

const index = [
  pkg('app', '1.0', { Depends: 'libc6 (>= 2.30), awk, libssl3 | libssl1.1', 'Pre-Depends': 'dash', Recommends: 'extras' }),
  pkg('libc6', '2.36-9', { Depends: 'libgcc-s1' }),
  pkg('libc6', '2.28-10', { Depends: 'libgcc-s1' }),
  pkg('libgcc-s1', '12.2.0', { Depends: 'gcc-12-base (= 12.2.0)' }),
  pkg('gcc-12-base', '12.2.0', { Architecture: 'all' }),
  pkg('gawk', '5.2', { Provides: 'awk', Priority: 'optional' }),
  pkg('mawk', '1.3.4', { Provides: 'awk', Priority: 'required' }),
  pkg('libssl1.1', '1.1.1'),
  pkg('libssl3', '3.0.11'),
  pkg('dash', '0.5.12'),
  pkg('extras', '1'),
  pkg('old-tool', '1', { Depends: 'libc6 (<< 2.30)' }),
  pkg('rival', '1', { Conflicts: 'app' }),
  pkg('armonly', '1', { Architecture: 'arm64' }),
].join('\n\n');
const universe = universeFromTexts('amd64', [{ suite: 'test', text: `${index}\n` }]);
const relations = (...texts: string[]): Relation[] => texts.map((text) => parseRelation(text)!);
const names = (requests: string[], isRecommendsWanted = false): string[] =>
  resolvePackages(universe, relations(...requests), { isRecommendsWanted }).map(({ record }) => `${record.name}=${record.version}`);

function thrown(work: () => unknown): { code: string; text: string } {
  try {
    work();
  } catch (error) {
    if (isRedoError(error)) return { code: error.code, text: error.render() };
    throw error;
  }
  throw new Error('expected an error');
}

describe('resolvePackages', () => {
  it('follows Pre-Depends and Depends, picks the highest version, the first alternative and a required provider', () => {
    expect(names(['app'])).toEqual(['app=1.0', 'dash=0.5.12', 'gcc-12-base=12.2.0', 'libc6=2.36-9', 'libgcc-s1=12.2.0', 'libssl3=3.0.11', 'mawk=1.3.4']);
  });
  it('follows Recommends only when asked', () => {
    expect(names(['app'], true)).toContain('extras=1');
  });
  it('keeps an alternative that is already chosen instead of the first one', () => {
    expect(names(['libssl1.1', 'app'])).toContain('libssl1.1=1.1.1');
    expect(names(['libssl1.1', 'app'])).not.toContain('libssl3=3.0.11');
  });
  it('honours a version constraint in the list', () => {
    expect(names(['libc6 (<< 2.30)'])).toContain('libc6=2.28-10');
  });
  it('records which packages pulled each one in', () => {
    const resolved = resolvePackages(universe, relations('app', 'libgcc-s1'));
    const pulledBy = Object.fromEntries(resolved.map(({ record, pulledBy: by }) => [record.name, by]));
    expect(pulledBy.app).toEqual(['requested']);
    expect(pulledBy['libgcc-s1']).toEqual(['requested', 'libc6']);
    expect(pulledBy['gcc-12-base']).toEqual(['libgcc-s1']);
  });
  it('refuses an unknown package, suggesting similar names', () => {
    const { code, text } = thrown(() => names(['libssl']));
    expect(code).toBe('ERR_DEBIAN_UNKNOWN_PACKAGE');
    expect(text).toContain('similar names: libssl3, libssl1.1');
  });
  it('refuses a package of another architecture as unknown', () => {
    expect(thrown(() => names(['armonly'])).code).toBe('ERR_DEBIAN_UNKNOWN_PACKAGE');
  });
  it('names the chain and the versions available when a dependency cannot be met', () => {
    const { code, text } = thrown(() => names(['app', 'old-tool']));
    expect(code).toBe('ERR_DEBIAN_UNSATISFIABLE');
    expect(text).toContain('redo: package "old-tool" 1: dependency "libc6 (<< 2.30)" cannot be satisfied');
    expect(text).toContain('chain: old-tool → libc6 (<< 2.30)');
    expect(text).toContain('already chosen: libc6 2.36-9 (via app → libc6)');
  });
  it('names the versions available when a requested constraint cannot be met', () => {
    const { code, text } = thrown(() => names(['libc6 (>= 3.0)']));
    expect(code).toBe('ERR_DEBIAN_UNSATISFIABLE');
    expect(text).toContain('available: libc6 2.36-9, 2.28-10');
  });
  it('refuses packages that conflict, naming both chains', () => {
    const { code, text } = thrown(() => names(['app', 'rival']));
    expect(code).toBe('ERR_DEBIAN_CONFLICT');
    expect(text).toContain('redo: package "rival" 1 conflicts with "app"');
    expect(text).toContain('app 1.0 chain: app');
  });
});
