import { describe, expect, it } from 'vitest';
import { environmentChanges, parseCallOptions, parseExportedEnvironment } from '../../../lib/engine/caller.js';

describe('parseExportedEnvironment', () => {
  it.each([
    ["dash's single quotes, with '\"'\"' for a quote", "export A='it'\"'\"'s'\n0022\n", { A: "it's" }, '0022'],
    ['a value spanning lines', "export B='one\ntwo'\nexport C=''\n0077\n", { B: 'one\ntwo', C: '' }, '0077'],
    ["bash's double quotes and declare -x", 'declare -x D="a \\"q\\" \\$x"\nexport E="plain"\n', { D: 'a "q" $x', E: 'plain' }, undefined],
    ['a variable exported without a value is left out', "export F\nexport G='g'\n", { G: 'g' }, undefined],
  ])('%s', (_name, text, env, umask) => {
    expect(parseExportedEnvironment(text)).toEqual({ env, umask });
  });
});

describe('environmentChanges', () => {
  it('lists set and unset variables, ignoring what a shell sets by itself', () => {
    const base = { PATH: '/bin', HOME: '/root', GONE: 'x', PWD: '/a', 'not-a-name': 'y' };
    expect(environmentChanges(base, { PATH: '/bin', HOME: '/home', PREFIX: '/x', PWD: '/b', SHLVL: '2' })).toEqual({
      set: { HOME: '/home', PREFIX: '/x' },
      unset: ['GONE'],
    });
  });
});

describe('parseCallOptions', () => {
  it.each([
    ['-j10 a b', ['-j10', 'a', 'b'], { names: ['a', 'b'], jobs: 10 }],
    ['-j 3 -kx a', ['-j', '3', '-kx', 'a'], { names: ['a'], jobs: 3, isKeepGoing: true, isXtrace: true }],
    ['--shuffle -- -x', ['--shuffle', '--', '-x'], { names: ['-x'], isShuffle: true }],
  ])('%s', (_name, args, expected) => {
    expect(parseCallOptions(args)).toMatchObject(expected);
  });

  it('refuses an unknown option and a bad job count', () => {
    expect(parseCallOptions(['-q'])).toEqual({ problem: '"-q": unknown option' });
    expect(parseCallOptions(['-j0'])).toHaveProperty('problem');
  });
});
