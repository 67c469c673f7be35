// Two redo-ts processes started at once on a tree that has never been built: both must
// set up .redo/ and build, never report the state as corrupt or unwritable because the
// other one was half-way through creating it (seen about once in 30 starts before).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/rig.js';

describe('concurrent first builds', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('two redo-ts processes starting on a fresh tree both build', async () => {
    const failures: string[] = [];
    for (let trial = 0; trial < 30; trial += 1) {
      const dir = mkdtempSync(join(tmpdir(), 'redo-ts-fresh-race-'));
      dirs.push(dir);
      writeFileSync(join(dir, 'package.json'), '{}\n');
      writeFileSync(join(dir, 'default.x.do'), 'echo built >"$3"\n');
      const [a, b] = await Promise.all([runCli(dir, ['a.x']), runCli(dir, ['b.x'])]);
      for (const result of [a, b]) if (result.code !== 0) failures.push(`trial ${trial}: exit ${result.code}: ${result.stderr.trim()}`);
    }
    expect(failures).toEqual([]);
  });
});
