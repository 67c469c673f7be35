// Tutorial chapter 1 (redo basics): builds the chapter in a temporary copy and checks
// which rules run on a first build, a no-op rebuild, a touch, and two edits.
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyChapter, shownFiles } from '../helpers/tutorial.js';

const chapter = '01-redo-basics';
const copy = copyChapter(chapter);
afterAll(() => copy.remove());

describe('tutorial chapter 1: redo basics', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual(['all.do', 'default.upper.do', 'message.txt.do', 'stats.txt.do.ts']);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('builds everything on the first run, sh and TypeScript rules alike', async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(copy.takeRuns()).toEqual(['all', 'message.txt', 'message.txt.upper', 'stats.txt']);
    expect(copy.read('message.txt')).toBe('Hello, world!\n');
    expect(copy.read('message.txt.upper')).toBe('HELLO, WORLD!\n');
    expect(copy.read('stats.txt')).toBe('greeting: 5 characters\n');
  });

  it('runs no rule at all when nothing changed', async () => {
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(copy.takeRuns()).toEqual([]);
  });

  it('runs no rule after a touch that changes no content', async () => {
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(copy.dir, 'name.txt'), later, later);
    utimesSync(join(copy.dir, 'greeting.txt'), later, later);
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(copy.takeRuns()).toEqual([]);
  });

  it('stops at a rebuilt target whose output did not change (World is WORLD in capitals too)', async () => {
    copy.write('name.txt', 'World\n');
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(copy.takeRuns()).toEqual(['message.txt', 'message.txt.upper']);
    expect(copy.read('message.txt.upper')).toBe('HELLO, WORLD!\n');
  });

  it('rebuilds only the dependents of an edited source', async () => {
    copy.write('name.txt', 'redo\n');
    const result = await copy.redo(['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(copy.takeRuns()).toEqual(['all', 'message.txt', 'message.txt.upper']);
    expect(copy.read('message.txt.upper')).toBe('HELLO, REDO!\n');
    expect(copy.read('stats.txt')).toBe('greeting: 5 characters\n');
  });

  it('rebuilds a target on request with -f, and only that one', async () => {
    const result = await copy.redo(['-f', 'stats.txt']);
    expect(result.status, result.stderr).toBe(0);
    expect(copy.takeRuns()).toEqual(['stats.txt']);
  });
});
