// End to end: hostile and careless input (issue 10, items 11-17): nothing escapes the
// project or the build folder, nothing unchecked enters an image, nothing grows
// without bound, and each refusal names the input.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliEnvironment, repoRoot, runCli, type RigResult } from '../helpers/rig.js';

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

/** Runs redo-ts under `/usr/bin/time -v`: its exit status, stderr and peak RSS in KiB. */
function runMeasured(dir: string, args: string[]): { status: number | null; stderr: string; maxRssKiB: number } {
  const result = spawnSync('/usr/bin/time', ['-v', process.execPath, join(repoRoot, 'bin', 'redo-ts.js'), ...args], {
    cwd: dir,
    env: cliEnvironment({ REDO_TS_CACHE: join(dir, '.cache') }),
    encoding: 'utf8',
  });
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr);
  return { status: result.status, stderr: result.stderr, maxRssKiB: rss === null ? Number.NaN : Number(rss[1]) };
}

const GiB = 1024 ** 3;

describe('12: files of 2 GiB and more are hashed and copied as streams', () => {
  it.skipIf(!existsSync('/usr/bin/time'))('a 3 GiB source, a 3 GiB output and a fragment holding a file over 2 GiB build in flat memory', async () => {
    const p = project({
      'sum.do': 'redo-ifchange big.bin\nwc -c < big.bin > "$3"\n',
      'huge.do': 'truncate -s 3G "$3"\n',
      'targets/big.spec.yaml': ['name: big', 'version: "1"', 'build:', '  - truncate -s 2100M "$DESTDIR/big"', 'files:', '  - path: /big', ''].join('\n'),
    });
    // Sparse: no disk is used for the sources, only for the fragment tar.
    writeFileSync(join(p.dir, 'big.bin'), '');
    truncateSync(join(p.dir, 'big.bin'), 3 * GiB);
    const first = runMeasured(p.dir, ['sum', 'huge', 'targets/big.fragment.tar']);
    expect(first.stderr).not.toContain('internal error');
    expect(first.status).toBe(0);
    expect(readFileSync(join(p.dir, 'sum'), 'utf8')).toBe(`${3 * GiB}\n`);
    expect(statSync(join(p.dir, 'huge')).size).toBe(3 * GiB);
    expect(statSync(join(p.dir, 'targets', 'big.fragment.tar')).size).toBeGreaterThan(2100 * 1024 * 1024);
    // Flat: the whole process stays far below the size of any one file.
    expect(first.maxRssKiB).toBeLessThan(200 * 1024);
    // Every output has its record: nothing is rebuilt.
    const second = runMeasured(p.dir, ['sum', 'huge', 'targets/big.fragment.tar']);
    expect(second.status).toBe(0);
    expect(second.stderr).not.toMatch(/^redo {2}/m);
    rmSync(join(p.dir, 'targets', 'big.fragment.tar'));
    rmSync(join(p.dir, 'huge'));
  }, 120_000);
});
