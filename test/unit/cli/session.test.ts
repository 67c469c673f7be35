import { describe, expect, it } from 'vitest';
import { parseBuildOptions } from '../../../lib/cli/session.js';
import { isRedoError } from '../../../lib/errors.js';

describe('parseBuildOptions', () => {
  it.each([
    [['all'], { targets: ['all'], jobs: 1, isForced: false }],
    [['-j', '4', 'a', 'b'], { targets: ['a', 'b'], jobs: 4 }],
    [['-j3', '-kxv', 'a'], { jobs: 3, isKeepGoing: true, isXtrace: true, isVerbose: true, targets: ['a'] }],
    [['--jobs=2', '-f', 'a'], { jobs: 2, isForced: true }],
    [['--force', '--keep-going', '--why', 'a'], { isForced: true, isKeepGoing: true, isWhy: true }],
    [['--', '-f'], { targets: ['-f'], isForced: false }],
    [['-h'], { isHelp: true }],
  ])('%j parses to %j', (args, expected) => {
    expect(parseBuildOptions(args)).toMatchObject(expected);
  });

  it.each([[['-j', '0']], [['-j', 'x']], [['-q']], [['--nope']]])('%j is a usage error', (args) => {
    let caught: unknown;
    try {
      parseBuildOptions(args);
    } catch (error) {
      caught = error;
    }
    expect(isRedoError(caught, 'ERR_USAGE')).toBe(true);
  });
});
