import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { toTargetPath } from '../../../lib/engine/paths.js';
import { splitArguments } from '../../../lib/engine/server.js';
import { quote } from '../../../lib/engine/spawner.js';
import { isRedoError } from '../../../lib/errors.js';

describe('client protocol helpers', () => {
  it.each([
    [[], ''],
    [['a'], 'a\0'],
    [['my file', "it's", 'héllo', ''], "my file\0it's\0héllo\0\0"],
  ])('splitArguments reads %j back from printf %%s\\0 output', (args, payload) => {
    expect(splitArguments(Buffer.from(payload, 'utf8'))).toEqual(args);
  });

  it.each([["plain"], ["it's"], ['"double" $HOME `cmd`'], ['new\nline'], ['héllo wörld']])('quote(%j) survives sh', (value) => {
    expect(execFileSync('sh', ['-c', `printf '%s' ${quote(value)}`], { encoding: 'utf8' })).toBe(value);
  });
});

describe('toTargetPath', () => {
  it.each([
    ['/p', '/p', 'a/b', 'a/b'],
    ['/p', '/p/a', 'b', 'a/b'],
    ['/p', '/p/a', '../c', 'c'],
    ['/p', '/p', './x/./y', 'x/y'],
  ])('root %s, cwd %s, %s → %s', (root, cwd, name, expected) => {
    expect(toTargetPath(root, cwd, name)).toBe(expected);
  });

  it.each([['../x'], ['/elsewhere'], ['.'], ['.redo/db/x.json']])('%s is ERR_TARGET_OUTSIDE', (name) => {
    let caught: unknown;
    try {
      toTargetPath('/p', '/p', name);
    } catch (error) {
      caught = error;
    }
    expect(isRedoError(caught, 'ERR_TARGET_OUTSIDE')).toBe(true);
  });
});
