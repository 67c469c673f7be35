// statTuple (quick-stat.ts) answers exactly as fs.statSync does, through Node's internal
// stat or its fs.statSync fallback, and never prints a deprecation warning.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { statTuple } from '../../../lib/engine/quick-stat.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redo-ts-quick-stat-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.writeFileSync(path.join(dir, 'file'), 'some bytes\n');
fs.mkdirSync(path.join(dir, 'folder'));
fs.symlinkSync('nowhere', path.join(dir, 'dangling'));
fs.symlinkSync('file', path.join(dir, 'link'));
const probe = path.join(dir, 'file');

const expected = (file: string): [number, number, number, number] | undefined => {
  const stats = fs.statSync(file, { throwIfNoEntry: false });
  return stats === undefined ? undefined : [stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs];
};

describe('statTuple', () => {
  for (const name of ['file', 'folder', 'link', 'dangling', 'absent']) {
    it(`gives what fs.statSync gives for ${name}`, () => {
      const file = path.join(dir, name);
      expect(statTuple(file, probe)).toEqual(expected(file));
    });
  }

  it('throws as fs.statSync does for a path through a file (ENOTDIR)', () => {
    const file = path.join(dir, 'file', 'below-a-file');
    expect(() => fs.statSync(file, { throwIfNoEntry: false })).toThrow(/ENOTDIR/);
    expect(() => statTuple(file, probe)).toThrow(/ENOTDIR/);
  });

  it('sees a change of content in place (size, mtime)', () => {
    const file = path.join(dir, 'changing');
    fs.writeFileSync(file, 'a');
    const before = statTuple(file, probe);
    fs.writeFileSync(file, 'ab');
    fs.utimesSync(file, new Date(1_000_000), new Date(2_000_123.5));
    expect(statTuple(file, probe)).not.toEqual(before);
    expect(statTuple(file, probe)).toEqual(expected(file));
  });

  // Each mode in a fresh process, since the choice is made once per process.
  const compiled = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dist/lib/engine/quick-stat.js');
  const script = `import(${JSON.stringify(compiled)}).then(({ statTuple }) => { const fs = require('node:fs');
    const s = fs.statSync(${JSON.stringify(probe)}); const t = statTuple(${JSON.stringify(probe)}, ${JSON.stringify(probe)});
    process.stdout.write(JSON.stringify(t) === JSON.stringify([s.ino, s.size, s.mtimeMs, s.ctimeMs]) ? 'same' : 'different'); })`;
  for (const flags of [[], ['--pending-deprecation'], ['--throw-deprecation']]) {
    it(`agrees in a fresh process with ${flags.join(' ') || 'no flags'} and prints no warning`, () => {
      const result = spawnSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('same');
      expect(result.status).toBe(0);
    });
  }
});
