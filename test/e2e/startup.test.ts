// Start-up costs what it does (issue 20): the bundled CLI (dist/bundle/) starts no process
// a build does not need, reads no source map, and still loads every on-demand part.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnvironment, repoRoot } from '../helpers/rig.js';

const bin = join(repoRoot, 'bin', 'redo-ts.js');
const hasStrace = spawnSync('strace', ['-V']).status === 0;

/** Runs redo-ts ARGS in `dir` under `strace -f -e trace=TRACE`; returns its status, stderr and the trace lines. */
function traced(dir: string, trace: string, args: string[]): { status: number | null; stderr: string; lines: string[] } {
  const log = join(dir, '..', `${basename(dir)}.strace`);
  const result = spawnSync('strace', ['-f', '-qq', '-e', `trace=${trace}`, '-o', log, process.execPath, bin, ...args], { cwd: dir, env: cliEnvironment(), encoding: 'utf8' });
  const lines = readFileSync(log, 'utf8').split('\n');
  rmSync(log, { force: true });
  return { status: result.status, stderr: result.stderr, lines };
}

/**
 * The programs started by exec (successful execve calls), by file name, in order. A call
 * another process interrupts in the trace is split in two lines, `PID execve("X", ...
 * <unfinished ...>` and `PID <... execve resumed>...) = 0`: joined by pid.
 */
function programsStarted(lines: string[]): string[] {
  const unfinished = new Map<string, string>();
  return lines.flatMap((line) => {
    const pid = /^(\d+) /.exec(line)?.[1] ?? '';
    const started = /execve\("([^"]+)"/.exec(line);
    if (started !== null && line.endsWith('<unfinished ...>')) {
      unfinished.set(pid, started[1]!);
      return [];
    }
    if (/<\.\.\. execve resumed>.* = 0$/.test(line)) {
      const program = unfinished.get(pid);
      unfinished.delete(pid);
      return program === undefined ? [] : [basename(program)];
    }
    return started !== null && / = 0$/.test(line) ? [basename(started[1]!)] : [];
  });
}

describe.skipIf(!hasStrace)('start-up of the bundled CLI', () => {
  let scratch: string;
  let dir: string;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'redo-ts-startup-'));
    dir = join(scratch, 'p');
    spawnSync('mkdir', ['-p', dir]);
    // A project of TypeScript rules only: no sh rule, no zx shell.
    writeFileSync(join(dir, 'package.json'), '{ "private": true }\n');
    writeFileSync(join(dir, 'in.txt'), 'hello\n');
    writeFileSync(
      join(dir, 'out.txt.do.ts'),
      [
        "import { readFileSync, writeFileSync } from 'node:fs';",
        "import type { RuleContext } from 'redo-ts';",
        'export default async function (ctx: RuleContext): Promise<void> {',
        "  await ctx.ifchange('in.txt');",
        "  writeFileSync(ctx.output, readFileSync(`${ctx.dir}/in.txt`, 'utf8').toUpperCase());",
        '}',
        '',
      ].join('\n'),
    );
    const first = spawnSync(process.execPath, [bin, 'out.txt'], { cwd: dir, env: cliEnvironment(), encoding: 'utf8' });
    expect(first.status, first.stderr).toBe(0);
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('a build that runs only TypeScript rules starts one mkfifo and the spawner (the watchdog of its rules\' processes), no esbuild; its no-op starts nothing', () => {
    writeFileSync(join(dir, 'in.txt'), 'hello again\n');
    const build = traced(dir, 'execve', ['out.txt']);
    expect(build.status, build.stderr).toBe(0);
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('HELLO AGAIN\n');
    // The sh spawner also ends a killed engine's rule processes, a TypeScript rule's
    // children too (test/e2e/engine-faults.test.ts): it starts with the first rule.
    expect(programsStarted(build.lines).sort()).toEqual(['mkfifo', 'node', 'sh']);
    const noOp = traced(dir, 'execve,fork,vfork', ['out.txt']);
    expect(noOp.status, noOp.stderr).toBe(0);
    expect(programsStarted(noOp.lines)).toEqual(['node']);
    expect(noOp.lines.filter((line) => /\b(v?fork)\(/.test(line))).toEqual([]);
  });

  it('a repeated no-op answered from its memo loads one module of the bundle (main.js), not the CLI', async () => {
    const settle = async (): Promise<void> => {
      // The memo is written once the files it rests on are older than its racy window (2 s).
      await new Promise((resolve) => setTimeout(resolve, 2100));
      const run = spawnSync(process.execPath, [bin, 'out.txt'], { cwd: dir, env: cliEnvironment(), encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
    };
    await settle();
    const noOp = traced(dir, 'openat', ['out.txt']);
    expect(noOp.status, noOp.stderr).toBe(0);
    expect(noOp.stderr).toBe('');
    const modules = noOp.lines.filter((line) => line.includes('/dist/bundle/') && !line.includes('ENOENT'))
      .map((line) => /\/dist\/bundle\/([^"]+)"/.exec(line)?.[1]);
    expect(modules).toEqual(['main.js']);
  }, 20_000);

  it('redo-ifchange in a plain sh rule starts no sh of its own (a function in the rule\'s shell); parallel calls and the quoted command still work', () => {
    const shDir = join(scratch, 'sh');
    spawnSync('mkdir', ['-p', shDir]);
    writeFileSync(join(shDir, 'package.json'), '{ "private": true }\n');
    for (const name of ['a', 'b', 'c']) writeFileSync(join(shDir, `${name}.src`), `${name}\n`);
    writeFileSync(join(shDir, 'default.leaf.do'), 'redo-ifchange "$2.src"\ncat "$2.src" > "$3"\n');
    // Two calls at once in one rule (each its own pid), then the command itself, quoted.
    writeFileSync(join(shDir, 'all.do'), 'redo-ifchange a.leaf &\nredo-ifchange b.leaf &\nwait\n"redo-ifchange" c.leaf\ncat a.leaf b.leaf c.leaf > "$3"\n');
    const build = traced(shDir, 'execve', ['all']);
    expect(build.status, build.stderr).toBe(0);
    expect(readFileSync(join(shDir, 'all'), 'utf8')).toBe('a\nb\nc\n');
    const started = programsStarted(build.lines);
    // Only the quoted call starts the redo-ifchange script.
    expect(started.filter((name) => name === 'redo-ifchange')).toEqual(['redo-ifchange']);
    expect(started.filter((name) => name === 'cat')).toHaveLength(4);
  });

  it('reads no source map: not for --version, a no-op, nor a build of a TypeScript rule', () => {
    writeFileSync(join(dir, 'in.txt'), 'maps?\n');
    for (const args of [['--version'], ['out.txt'], ['out.txt']]) {
      const run = traced(dir, 'openat', args);
      expect(run.status, run.stderr).toBe(0);
      const opened = run.lines.filter((line) => line.includes('/dist/'));
      // It did run the bundle, and nothing of tsc's dist/lib/.
      expect(opened.some((line) => line.includes('/dist/bundle/main.js"'))).toBe(true);
      expect(opened.filter((line) => line.includes('/dist/lib/'))).toEqual([]);
      expect(run.lines.filter((line) => /\.map"/.test(line))).toEqual([]);
    }
  });

  it('every subcommand loads on demand from its own chunk (--help asks each for its summary), and key generate runs', () => {
    const help = spawnSync(process.execPath, [bin, '--help'], { cwd: dir, env: cliEnvironment(), encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('  push ');
    expect(help.stdout).not.toContain('unavailable in this build');
    const key = spawnSync(process.execPath, [bin, 'key', 'generate', '--out', join(scratch, 'signing')], { cwd: dir, env: cliEnvironment(), encoding: 'utf8' });
    expect(key.status, key.stderr).toBe(0);
    expect(readFileSync(join(scratch, 'signing.pub'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(existsSync(join(dir, '.redo', 'ts'))).toBe(true);
  });
});
