import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMAND_NAMES } from '../../../lib/cli/fast-no-op.js';

const repoRoot = join(import.meta.dirname, '..', '..', '..');

describe('the no-op fast path', () => {
  it('knows every subcommand main.ts routes (a first word among them is never taken for a target)', () => {
    const source = readFileSync(join(repoRoot, 'lib', 'cli', 'main.ts'), 'utf8');
    const routed = [...source.matchAll(/^ {2}'?([a-z-]+)'?: \(\) => import\(/gm)].map((match) => match[1]);
    expect([...COMMAND_NAMES].sort()).toEqual(routed.sort());
  });
});
