import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { candidateNames, findRule } from '../../../lib/engine/lookup.js';
import { isRedoError } from '../../../lib/errors.js';

describe('candidateNames', () => {
  it.each([
    ['x', ['x.do', 'default.do']],
    ['x.layer', ['x.layer.do', 'default.layer.do', 'default.do']],
    ['a.b.c', ['a.b.c.do', 'default.b.c.do', 'default.c.do', 'default.do']],
    ['.hidden', ['.hidden.do', 'default.do']],
    ['.hidden.txt', ['.hidden.txt.do', 'default.txt.do', 'default.do']],
  ])('%s is looked up as %j, most specific first', (name, expected) => {
    expect(candidateNames(name).map((c) => c.name)).toEqual(expected);
  });
});

describe('findRule', () => {
  let root = '';
  const make = (files: string[]): void => {
    root = mkdtempSync(join(tmpdir(), 'redo-ts-lookup-'));
    for (const file of files) {
      mkdirSync(dirname(join(root, file)), { recursive: true });
      writeFileSync(join(root, file), '');
    }
  };
  afterEach(() => rmSync(root, { recursive: true, force: true }));
  /** The candidates in the folders above the root, up to '/' (absolute), as redo searches them. */
  const aboveRoot = (): string[] => {
    const candidates: string[] = [];
    for (let dir = dirname(root); ; dir = dirname(dir)) {
      const prefix = dir === '/' ? '/' : `${dir}/`;
      candidates.push(`${prefix}default.do`, `${prefix}default.do.ts`);
      if (dirname(dir) === dir) break;
    }
    return candidates;
  };

  it.each([
    ['NAME.do wins over default.*.do in the same folder', ['a/b/x.layer.do', 'a/b/default.layer.do'], 'a/b/x.layer', 'a/b/x.layer.do', 'a/b', 'x.layer', 'x.layer'],
    ['default.layer.do wins over default.do in the same folder', ['a/b/default.layer.do', 'a/b/default.do'], 'a/b/x.layer', 'a/b/default.layer.do', 'a/b', 'x.layer', 'x'],
    ['a rule in the target folder wins over one in a parent', ['a/b/default.do', 'a/default.layer.do'], 'a/b/x.layer', 'a/b/default.do', 'a/b', 'x.layer', 'x.layer'],
    ['a parent folder rule runs there, with $1 relative to it', ['a/default.layer.do'], 'a/b/x.layer', 'a/default.layer.do', 'a', 'b/x.layer', 'b/x'],
    ['rules/ is searched last and runs in the target folder', ['rules/default.layer.do'], 'a/b/x.layer', 'rules/default.layer.do', 'a/b', 'x.layer', 'x'],
    ['the project root beats rules/', ['default.do', 'rules/default.layer.do'], 'a/x.layer', 'default.do', '', 'a/x.layer', 'a/x.layer'],
    ['a TypeScript rule is found like an sh rule', ['a/default.layer.do.ts'], 'a/x.layer', 'a/default.layer.do.ts', 'a', 'x.layer', 'x'],
  ])('%s', (_name, files, target, rule, cwd, targetArg, baseArg) => {
    make(files);
    const { found } = findRule(root, target);
    expect(found).toMatchObject({ rule, cwd, targetArg, baseArg });
  });

  it('records every candidate tried before the rule as a miss (both .do and .do.ts)', () => {
    make(['default.do']);
    expect(findRule(root, 'x.txt').misses).toEqual(['x.txt.do', 'x.txt.do.ts', 'default.txt.do', 'default.txt.do.ts']);
  });

  it('finds nothing and lists every candidate when no rule exists', () => {
    make([]);
    const lookup = findRule(root, 'x');
    expect(lookup.found).toBeUndefined();
    expect(lookup.misses).toEqual(['x.do', 'x.do.ts', 'default.do', 'default.do.ts', 'rules', ...aboveRoot()]);
  });

  it('offers a parent folder only default*.do, and rules/ (when it exists) only default*.do', () => {
    make(['snork.do', 'rules/d.do', 'rules/default.x.do']);
    const lookup = findRule(root, 'd/snork');
    expect(lookup.found).toBeUndefined();
    expect(lookup.misses).toEqual([
      'd/snork.do', 'd/snork.do.ts', 'd/default.do', 'd/default.do.ts', 'default.do', 'default.do.ts', 'rules/default.do', 'rules/default.do.ts', ...aboveRoot(),
    ]);
  });

  it('searches the folders above the root up to /, after rules/; such a rule runs in its folder, $1 relative to it', () => {
    make(['proj/.git', 'default.up.do']);
    const lookup = findRule(join(root, 'proj'), 'sub/x.up');
    expect(lookup.found?.rule).toBe(join(root, 'default.up.do'));
    expect(lookup.found?.cwd).toBe(root);
    expect(lookup.found?.targetArg).toBe('proj/sub/x.up');
    expect(lookup.found?.baseArg).toBe('proj/sub/x');
  });

  it('with isProjectOnly, searches only the target folder and its parents in the project, in the same order', () => {
    make(['proj/.git', 'proj/sub/default.do', 'proj/default.c.do', 'proj/rules/default.b.c.do', 'default.up.do']);
    const project = join(root, 'proj');
    expect(findRule(project, 'sub/a.b.c', undefined, undefined, true).found?.rule).toBe('sub/default.do');
    expect(findRule(project, 'a.b.c', undefined, undefined, true).found?.rule).toBe('default.c.do');
    // The full search finds the same in-project rules first; rules/ and above only without one.
    expect(findRule(project, 'a.b.c').found?.rule).toBe('default.c.do');
    expect(findRule(project, 'x.up').found?.rule).toBe(join(root, 'default.up.do'));
    const lookup = findRule(project, 'x.up', undefined, undefined, true);
    expect(lookup.found).toBeUndefined();
    expect(lookup.misses).toEqual(['x.up.do', 'x.up.do.ts', 'default.up.do', 'default.up.do.ts', 'default.do', 'default.do.ts']);
  });

  it('NAME.do and NAME.do.ts together are ERR_RULE_AMBIGUOUS naming both', () => {
    make(['x.do', 'x.do.ts']);
    let caught: unknown;
    try {
      findRule(root, 'x');
    } catch (error) {
      caught = error;
    }
    expect(isRedoError(caught, 'ERR_RULE_AMBIGUOUS')).toBe(true);
    expect((caught as Error & { details: string[] }).details).toEqual(['found: x.do', 'found: x.do.ts']);
  });
});
