// End to end: hostile and careless input (issue 10, items 11-17): nothing escapes the
// project or the build folder, nothing unchecked enters an image, nothing grows
// without bound, and each refusal names the input.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli, type RigResult } from '../helpers/rig.js';

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary folder, removed after the file's tests. */
function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `redo-ts-hostile-${prefix}-`));
  made.push(dir);
  return dir;
}

/** A fresh project holding this repository's rules/ and the given files. */
function project(files: Record<string, string | Buffer> = {}): { dir: string; run(args: string[], env?: NodeJS.ProcessEnv): Promise<RigResult> } {
  const dir = scratch('project');
  cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{}\n');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return {
    dir,
    async run(args, env = {}) {
      const result = await runCli(dir, args, { env: { REDO_TS_CACHE: join(dir, '.cache'), ...env } });
      return { ...result, stderr: result.stderr.split(dir).join('<dir>') };
    },
  };
}

describe('15: the project boundary is checked on real paths', () => {
  it('a target under a symlinked folder that points outside is refused, and nothing is written there', async () => {
    const outside = scratch('outside');
    const p = project({ 'default.do': 'echo built > "$3"\n' });
    symlinkSync(outside, join(p.dir, 'out'));
    const result = await p.run(['out/x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('redo: "out/x": target is outside the project through a symlinked folder');
    expect(result.stderr).toContain(`resolved to: ${join(outside, 'x')}`);
    expect(readdirSync(outside)).toEqual([]);
  });

  it('a symlinked folder that stays inside the project is fine', async () => {
    const p = project({ 'default.do': 'echo built > "$3"\n', 'real/.keep': '' });
    symlinkSync('real', join(p.dir, 'alias'));
    const result = await p.run(['alias/x']);
    expect(result.code).toBe(0);
    expect(readFileSync(join(p.dir, 'real', 'x'), 'utf8')).toBe('built\n');
  });
});
