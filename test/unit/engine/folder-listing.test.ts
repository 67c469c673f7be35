// FolderListings (folder-listing.ts) and the rule lookup's use of it for folders outside
// the project (lookup.ts findRule's isFileOutside): answers equal to a stat's, each folder
// listed once.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FolderListings } from '../../../lib/engine/folder-listing.js';
import { findRule } from '../../../lib/engine/lookup.js';

const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'redo-ts-folder-listing-')));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.mkdirSync(path.join(dir, 'above', 'project', 'sub'), { recursive: true });
fs.writeFileSync(path.join(dir, 'above', 'default.txt.do'), 'echo above\n');
fs.mkdirSync(path.join(dir, 'above', 'default.bin.do'));
fs.writeFileSync(path.join(dir, 'above', 'project', 'file'), 'x');
fs.symlinkSync('default.txt.do', path.join(dir, 'above', 'link.do'));
fs.symlinkSync('nowhere', path.join(dir, 'above', 'dangling.do'));
const root = path.join(dir, 'above', 'project');

describe('FolderListings.isFile', () => {
  const listed: string[] = [];
  const listings = new FolderListings((folder) => listed.push(folder), () => undefined);
  const cases: [string, boolean][] = [
    ['above/default.txt.do', true],
    ['above/default.bin.do', false],
    ['above/link.do', true],
    ['above/dangling.do', false],
    ['above/absent.do', false],
    ['above/project/file', true],
    ['no-such-folder/x.do', false],
  ];
  for (const [name, expected] of cases) {
    it(`says ${expected ? 'file' : 'no file'} for ${name}, as a stat does`, () => {
      const file = path.join(dir, name);
      expect(listings.isFile(file)).toBe(expected);
      expect(fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true).toBe(expected);
    });
  }
  it('listed each folder once', () => {
    expect(listed.filter((folder) => folder === path.join(dir, 'above'))).toHaveLength(1);
  });
});

describe('findRule with isFileOutside', () => {
  it('asks it only about candidates outside the project, and finds a rule above the root through it', () => {
    const asked: string[] = [];
    const listings = new FolderListings(() => undefined, () => undefined);
    const lookup = findRule(root, 'sub/a.txt', undefined, (file) => {
      asked.push(file);
      return listings.isFile(file);
    });
    expect(lookup.found?.rule).toBe(path.join(dir, 'above', 'default.txt.do'));
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((file) => !file.startsWith(`${root}/`))).toBe(true);
    expect(lookup).toEqual(findRule(root, 'sub/a.txt'));
  });

  it('gives the same misses as without it when nothing matches', () => {
    const listings = new FolderListings(() => undefined, () => undefined);
    expect(findRule(root, 'sub/a.none', undefined, (file) => listings.isFile(file))).toEqual(findRule(root, 'sub/a.none'));
  });
});
