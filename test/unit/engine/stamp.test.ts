// A folder's stamp is its listing: the same names anywhere give the same identity; a name
// added, removed or renamed anywhere below, a chmod +x or a link pointed elsewhere changes
// it; a file's content does not (a dependency on the file compares that).
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { identityOf, readStamp } from '../../../dist/lib/engine/stamp.js';

const top = mkdtempSync(join(tmpdir(), 'redo-ts-stamp-'));
afterAll(() => rmSync(top, { recursive: true, force: true }));

function makeTree(name: string): string {
  const base = join(top, name);
  mkdirSync(join(base, 'lib', 'deep'), { recursive: true });
  writeFileSync(join(base, 'main.py'), 'import lib\n');
  writeFileSync(join(base, 'lib', 'deep', 'run.sh'), '#!/bin/sh\n');
  chmodSync(join(base, 'lib', 'deep', 'run.sh'), 0o755);
  symlinkSync('main.py', join(base, 'entry.py'));
  return base;
}

const identity = (folder: string): string => identityOf(readStamp(folder));

describe('the stamp of a folder', () => {
  it('is its listing, the same for the same names elsewhere and at other times', () => {
    const a = makeTree('a');
    const b = makeTree('b');
    utimesSync(join(b, 'main.py'), 1000, 1000);
    expect(identity(a)).toMatch(/^listing:[0-9a-f]{64}$/);
    expect(identity(b)).toBe(identity(a));
    writeFileSync(join(b, 'main.py'), 'other content\n');
    expect(identity(b)).toBe(identity(a));
  });

  it.each([
    ['a file added deep below', (base: string) => writeFileSync(join(base, 'lib', 'deep', 'new.txt'), '')],
    ['a file removed', (base: string) => unlinkSync(join(base, 'main.py'))],
    ['a file renamed', (base: string) => renameSync(join(base, 'lib', 'deep', 'run.sh'), join(base, 'lib', 'deep', 'go.sh'))],
    ['an empty folder made', (base: string) => mkdirSync(join(base, 'empty'))],
    ['a chmod +x', (base: string) => chmodSync(join(base, 'main.py'), 0o755)],
    ['a link pointed elsewhere', (base: string) => {
      unlinkSync(join(base, 'entry.py'));
      symlinkSync('lib', join(base, 'entry.py'));
    }],
  ])('changes with %s', (what, change) => {
    const base = makeTree(`change-${what.replace(/\W+/g, '-')}`);
    const before = identity(base);
    change(base);
    expect(identity(base)).not.toBe(before);
  });
});
