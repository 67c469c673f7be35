import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { environmentChanges, parseCallOptions, parseExportedEnvironment } from '../../../lib/engine/caller.js';
import { resolvePhysical } from '../../../lib/engine/paths.js';
import { JobSlots } from '../../../lib/engine/scheduler.js';

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

describe('resolvePhysical', () => {
  it('resolves .. through a symlinked folder as the OS does, and keeps a missing tail', () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'redo-ts-physical-')));
    try {
      mkdirSync(join(root, 'real', 'deep'), { recursive: true });
      symlinkSync('real/deep', join(root, 'link'));
      expect(resolvePhysical(join(root, 'link'), '../x')).toBe(join(root, 'real', 'x'));
      expect(resolvePhysical(root, 'link/../x')).toBe(join(root, 'real', 'x'));
      expect(resolvePhysical(root, 'new/dir/x')).toBe(join(root, 'new', 'dir', 'x'));
      expect(resolvePhysical(root, 'link')).toBe(join(root, 'link'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('JobSlots', () => {
  it('grow() adds slots at once; shrink() takes them back as they are released', async () => {
    const slots = new JobSlots(1);
    await slots.acquire(0);
    let second = false;
    const waiting = slots.acquire(0).then(() => (second = true));
    slots.grow(1);
    await waiting;
    expect(second).toBe(true);
    expect(slots.capacity).toBe(2);
    slots.shrink(1);
    slots.release();
    slots.release();
    let third = false;
    await slots.acquire(0).then(() => (third = true));
    expect(third).toBe(true);
    let fourth = false;
    void slots.acquire(0).then(() => (fourth = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fourth).toBe(false);
  });
});
