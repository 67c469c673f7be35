// findProjectRoot: the nearest folder with a project marker wins; resolvePhysical: paths as the OS sees them.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findProjectRoot, resolvePhysical } from '../../../dist/lib/engine/paths.js';

const top = mkdtempSync(join(tmpdir(), 'redo-ts-root-'));
afterAll(() => rmSync(top, { recursive: true, force: true }));

/** Makes `folders` (relative to a fresh folder under `top`) and returns that folder. */
function tree(name: string, folders: string[], files: string[] = []): string {
  const base = join(top, name);
  for (const folder of folders) mkdirSync(join(base, folder), { recursive: true });
  for (const file of files) writeFileSync(join(base, file), '{}');
  return base;
}

describe('findProjectRoot', () => {
  it.each([
    ['a stray .redo/ above does not capture a project with rules/', 'stray', ['.redo', 'p/rules', 'p/sub'], [], 'p/sub', 'p'],
    ['a stray .redo/ above does not capture a project with package.json', 'stray-pkg', ['.redo', 'p/sub'], ['p/package.json'], 'p/sub', 'p'],
    ['a built project is found from a subfolder through its .redo/', 'built', ['p/.redo', 'p/a/b'], [], 'p/a/b', 'p'],
  ])('%s', (_what, name, folders, files, start, wanted) => {
    const base = tree(name, folders, files);
    expect(findProjectRoot(join(base, start))).toBe(join(base, wanted));
  });

  it('REDO_TS_ROOT-style override wins over every marker', () => {
    const base = tree('override', ['p/.redo', 'q']);
    expect(findProjectRoot(join(base, 'p'), '../q')).toBe(join(base, 'q'));
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
