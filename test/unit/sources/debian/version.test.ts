import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compareDebianVersions, parseRelations, satisfiesConstraint } from '../../../../lib/sources/debian/version.js';

/** dpkg's own answer: -1, 0 or 1. */
function dpkgOrder(a: string, b: string): number {
  const isTrue = (op: string): boolean => {
    try {
      execFileSync('dpkg', ['--compare-versions', a, op, b]);
      return true;
    } catch {
      return false;
    }
  };
  return isTrue('lt') ? -1 : isTrue('eq') ? 0 : 1;
}

const pairs: Array<[string, string]> = [
  ['1.0', '1.0'], ['1.0', '0:1.0'], ['1.0', '1.0-0'], ['1.0~rc1', '1.0'], ['1.0~~', '1.0~'], ['1.0', '1.0+b1'],
  ['2:1.0', '1:9.9'], ['1.0a', '1.0'], ['1.0.1', '1.0a'], ['1.10', '1.9'], ['1.001', '1.1'], ['3.0.11-1~deb12u2', '3.0.11-1'],
  ['2.36-9+deb12u14', '2.36-9+deb12u9'], ['1:1.2.13.dfsg-1', '1:1.2.13-1'], ['10.42-1', '10.42-1+deb12u2'], ['1.0-1', '1.0-1.1'],
  ['a', 'B'], ['1+', '1.'], ['0.5.12-2', '0.5.12-2+b1'], ['9.1-1', '9.1-1~bpo'], ['1.2-3-4', '1.2-3'],
];

describe('compareDebianVersions', () => {
  for (const [a, b] of pairs) {
    it(`orders ${a} and ${b} as dpkg --compare-versions does`, () => {
      expect(Math.sign(compareDebianVersions(a, b))).toBe(dpkgOrder(a, b));
      expect(Math.sign(compareDebianVersions(b, a))).toBe(dpkgOrder(b, a));
    });
  }
});

describe('relations', () => {
  it('parses groups of alternatives with constraints and :any', () => {
    expect(parseRelations('libc6 (>= 2.34), mawk | gawk, python3:any (<< 3.12), foo (> 1)')).toEqual([
      [{ name: 'libc6', constraint: { operator: '>=', version: '2.34' } }],
      [{ name: 'mawk' }, { name: 'gawk' }],
      [{ name: 'python3', arch: 'any', constraint: { operator: '<<', version: '3.12' } }],
      [{ name: 'foo', constraint: { operator: '>=', version: '1' } }],
    ]);
  });
  const table: Array<[string, '<<' | '<=' | '=' | '>=' | '>>', string, boolean]> = [
    ['2.36-9', '>=', '2.34', true], ['2.36-9', '<<', '2.36', false], ['1:1.0', '>>', '9.0', true], ['1.0', '=', '0:1.0', true], ['1.0~rc1', '<=', '1.0', true],
  ];
  for (const [version, operator, wanted, expected] of table) {
    it(`${version} ${operator} ${wanted} is ${expected}`, () => expect(satisfiesConstraint(version, { operator, version: wanted })).toBe(expected));
  }
});
