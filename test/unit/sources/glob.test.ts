import { describe, expect, it } from 'vitest';
import { compileGlob } from '../../../lib/sources/glob.js';

describe('compileGlob', () => {
  const cases: Array<[string, string, boolean]> = [
    ['/usr/bin/hello', '/usr/bin/hello', true],
    ['/usr/bin/hello', '/usr/bin/hello2', false],
    ['/usr/bin/*', '/usr/bin/ls', true],
    ['/usr/bin/*', '/usr/bin/sub/ls', false],
    ['/usr/share/doc/**', '/usr/share/doc', true],
    ['/usr/share/doc/**', '/usr/share/doc/a/b/c', true],
    ['/usr/share/doc/**', '/usr/share/docs', false],
    ['/**/*.so', '/lib/x/libc.so', true],
    ['/**/*.so', '/libc.so', true],
    ['/bin/?s', '/bin/ls', true],
    ['/bin/[lp]s', '/bin/ps', true],
    ['/bin/[!lp]s', '/bin/ls', false],
    ['/etc/a.conf', '/etc/aXconf', false],
    ['/usr/bin/', '/usr/bin', true],
  ];
  for (const [pattern, path, wanted] of cases) {
    it(`${pattern} ${wanted ? 'matches' : 'does not match'} ${path}`, () => {
      expect(compileGlob(pattern)(path)).toBe(wanted);
    });
  }
});
