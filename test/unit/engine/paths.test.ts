// findProjectRoot: the nearest folder with a project marker wins.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findProjectRoot } from '../../../dist/lib/engine/paths.js';

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
