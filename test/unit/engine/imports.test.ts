import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../helpers/rig.js';

describe('engine import boundary', () => {
  it('lib/engine imports only node: builtins, errors.ts, env.ts and itself', () => {
    const dir = join(repoRoot, 'lib', 'engine');
    const offending: string[] = [];
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.ts'))) {
      const text = readFileSync(join(dir, file), 'utf8');
      for (const match of text.matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)) {
        const specifier = match[1] as string;
        const isAllowed = specifier.startsWith('node:') || specifier === '../errors.js' || specifier === '../env.js' || /^\.\/[a-z-]+\.js$/.test(specifier);
        if (!isAllowed) offending.push(`${file}: ${specifier}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
