// glibc's library-name order (digits compare as numbers) and cache flags, which ld.so's
// binary search and flag check depend on; the dangling-dependency check of a lock.
import { describe, expect, it } from 'vitest';
import { danglingDependencies } from '../../../../lib/sources/debian/closure.js';
import { compareLibraryNames, ldCacheFlagsOf } from '../../../../lib/sources/debian/ld-cache.js';
import type { DebianLock } from '../../../../lib/sources/debian/lock.js';

describe('compareLibraryNames', () => {
  it.each([
    ['libfoo.so.10', 'libfoo.so.9', 1],
    ['libc.so.6', 'libc.so.6', 0],
    ['liba.so', 'libb.so', -1],
    ['libfoo.so', 'libfoo.so.1', -1],
    ['libx1.so', 'libx.so', 1],
  ])('%s against %s has the sign %i, as _dl_cache_libcmp', (a, b, sign) => {
    expect(Math.sign(compareLibraryNames(a, b))).toBe(sign);
  });
});

describe('ldCacheFlagsOf', () => {
  it.each([
    [{ machine: 62, is64: true, elfFlags: 0 }, 0x0303],
    [{ machine: 183, is64: true, elfFlags: 0 }, 0x0a03],
    [{ machine: 40, is64: false, elfFlags: 0x05000400 }, 0x0903],
    [{ machine: 3, is64: false, elfFlags: 0 }, 0x0003],
    [{ machine: 243, is64: true, elfFlags: 0x5 }, 0x1003],
  ])('gives %j the flags %i', (elf, flags) => {
    expect(ldCacheFlagsOf(elf)).toBe(flags);
  });
});

describe('danglingDependencies', () => {
  const lock = { packages: [{ name: 'app', version: '1' }, { name: 'libz', version: '1.2' }, { name: 'mawk', version: '1.3' }] } as unknown as DebianLock;
  it('finds groups no locked package meets, by name, version or Provides', () => {
    const controls = new Map([
      ['app', new Map([['Depends', 'libz (>= 1.0), awk, libc6 (>= 2.36) | musl, libz (>= 2)']])],
      ['mawk', new Map([['Provides', 'awk']])],
    ]);
    expect(danglingDependencies(lock, controls)).toEqual([
      { package: 'app', field: 'Depends', relation: 'libc6 (>= 2.36) | musl' },
      { package: 'app', field: 'Depends', relation: 'libz (>= 2)' },
    ]);
  });
});
