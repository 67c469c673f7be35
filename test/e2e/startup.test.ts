// Start-up costs what it does (issue 20): the bundled CLI (dist/bundle/) starts no process
// a build does not need, reads no source map, and still loads every on-demand part.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasStrace, node, programsStarted, traced } from '../helpers/exec-trace.js';
import { cliEnvironment, repoRoot, startCli } from '../helpers/rig.js';

const bin = join(repoRoot, 'bin', 'redo-ts.js');

/** True when `pid` runs and is no zombie. */
function isRunning(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

describe.skipIf(!hasStrace)('start-up of the bundled CLI', () => {
  let scratch: string;
  let dir: string;
  /** A new project folder `name` in the scratch folder, with a package.json. */
  /** Runs `redo-ts out.txt` in `cwd` (untraced). */
  const buildOutTxt = (cwd: string) => spawnSync(process.execPath, [bin, 'out.txt'], { cwd, env: cliEnvironment(), encoding: 'utf8' });
  const projectIn = (name: string): string => {
    const folder = join(scratch, name);
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'package.json'), '{ "private": true }\n');
    return folder;
  };

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'redo-ts-startup-'));
    // A project of TypeScript rules only: no sh rule, no zx shell.
    dir = projectIn('p');
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
    const first = buildOutTxt(dir);
    expect(first.status, first.stderr).toBe(0);
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('a build of TypeScript rules that start no child starts no process (no mkfifo, no spawner, no esbuild); its no-op starts nothing', () => {
    writeFileSync(join(dir, 'in.txt'), 'hello again\n');
    const build = traced(dir, 'execve', ['out.txt']);
    expect(build.status, build.stderr).toBe(0);
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('HELLO AGAIN\n');
    // The sh spawner starts with the first child process instead (the tests below).
    expect(programsStarted(build.lines)).toEqual([node]);
    const noOp = traced(dir, 'execve,fork,vfork', ['out.txt']);
    expect(noOp.status, noOp.stderr).toBe(0);
    expect(programsStarted(noOp.lines)).toEqual([node]);
    expect(noOp.lines.filter((line) => /\b(v?fork)\(/.test(line))).toEqual([]);
  });

  it('a TypeScript rule\'s first child, by any node:child_process function, finds the spawner started and REDO_RUN_DIR in its environment; one given ctx.env can call back', () => {
    const childDir = projectIn('children');
    writeFileSync(join(childDir, 'dep.txt'), 'one\n');
    // What each child prints: its name, and whether the spawner of the run folder it names
    // runs (the one process with that folder as an argument).
    const probe = 'if [ -n "$REDO_RUN_DIR" ] && grep -qlzxF "$REDO_RUN_DIR" /proc/[0-9]*/cmdline 2>/dev/null; then echo "$1 spawner"; else echo "$1 none"; fi';
    writeFileSync(join(childDir, 'fork-child.cjs'), `require('node:child_process').execFileSync('sh', ['-c', ${JSON.stringify(probe)}, 'sh', 'fork'], { stdio: 'inherit' });\n`);
    writeFileSync(
      join(childDir, 'out.txt.do.ts'),
      [
        "import { exec, execFile, execFileSync, execSync, fork, spawn, spawnSync } from 'node:child_process';",
        "import { writeFileSync } from 'node:fs';",
        "import { createRequire } from 'node:module';",
        "import { promisify } from 'node:util';",
        "import type { RuleContext } from 'redo-ts';",
        `const probe = ${JSON.stringify(probe)};`,
        "const argv = (name: string): string[] => ['-c', probe, 'sh', name];",
        'const collect = (child: { stdout: NodeJS.ReadableStream | null; on(event: \'close\', listener: () => void): unknown }): Promise<string> => new Promise((resolve) => {',
        "  let text = '';",
        "  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));",
        "  child.on('close', () => resolve(text));",
        '});',
        'export default async function (ctx: RuleContext): Promise<void> {',
        '  const lines: string[] = [];',
        "  lines.push(spawnSync('sh', argv('spawnSync'), { encoding: 'utf8' }).stdout);",
        "  lines.push(execFileSync('sh', argv('execFileSync'), { encoding: 'utf8' }));",
        "  lines.push(execSync(`sh -c '${probe}' sh execSync`, { encoding: 'utf8' }));",
        "  lines.push((await promisify(execFile)('sh', argv('execFile'))).stdout);",
        "  lines.push((await promisify(exec)(`sh -c '${probe}' sh exec`)).stdout);",
        "  lines.push(await collect(spawn('sh', argv('spawn'))));",
        "  lines.push(await collect(fork(`${ctx.dir}/fork-child.cjs`, [], { silent: true })));",
        "  const required = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');",
        "  lines.push(required.execFileSync('sh', argv('require'), { encoding: 'utf8' }));",
        '  // A redo call from a child: its job\'s reply FIFO was made with the request FIFO, after the rule started.',
        "  await promisify(execFile)('sh', ['-c', 'redo-ifchange dep.txt'], { cwd: ctx.dir, env: ctx.env });",
        '  writeFileSync(ctx.output, lines.join(\'\'));',
        '}',
        '',
      ].join('\n'),
    );
    const build = traced(childDir, 'execve', ['out.txt']);
    expect(build.status, build.stderr).toBe(0);
    const names = ['spawnSync', 'execFileSync', 'execSync', 'execFile', 'exec', 'spawn', 'fork', 'require'];
    expect(readFileSync(join(childDir, 'out.txt'), 'utf8')).toBe(names.map((name) => `${name} spawner\n`).join(''));
    const started = programsStarted(build.lines);
    expect(started.filter((name) => name === 'mkfifo')).toEqual(['mkfifo']);
    // The dependency the child's redo-ifchange declared is the rule's own.
    writeFileSync(join(childDir, 'dep.txt'), 'two\n');
    const again = buildOutTxt(childDir);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain('(changed: dep.txt)');
  });

  it('a TypeScript rule\'s child that cannot call back (no REDO_PARENT in its environment) starts the spawner but no mkfifo', () => {
    const plainDir = projectIn('plain-child');
    writeFileSync(join(plainDir, 'in.txt'), 'one\n');
    writeFileSync(
      join(plainDir, 'out.txt.do.ts'),
      [
        "import { execFileSync } from 'node:child_process';",
        "import { writeFileSync } from 'node:fs';",
        "import type { RuleContext } from 'redo-ts';",
        'export default async function (ctx: RuleContext): Promise<void> {',
        "  await ctx.ifchange('in.txt');",
        "  writeFileSync(ctx.output, execFileSync('cat', [`${ctx.dir}/in.txt`]));",
        '}',
        '',
      ].join('\n'),
    );
    const first = buildOutTxt(plainDir);
    expect(first.status, first.stderr).toBe(0);
    writeFileSync(join(plainDir, 'in.txt'), 'two\n');
    const build = traced(plainDir, 'execve', ['out.txt']);
    expect(build.status, build.stderr).toBe(0);
    expect(readFileSync(join(plainDir, 'out.txt'), 'utf8')).toBe('two\n');
    expect(programsStarted(build.lines)).toEqual([node, 'sh', 'cat']);
  });

  it('kill -9 of redo-ts while a TypeScript rule waits in spawnSync: the child ends within a few seconds', async () => {
    const killDir = projectIn('killed');
    const pidFile = join(killDir, 'sleep.pid');
    writeFileSync(
      join(killDir, 'slow.do.ts'),
      [
        "import { spawnSync } from 'node:child_process';",
        "import { existsSync } from 'node:fs';",
        "import type { RuleContext } from 'redo-ts';",
        'export default function (ctx: RuleContext): void {',
        "  if (!existsSync(`${ctx.dir}/go`)) return;",
        `  spawnSync('sh', ['-c', 'echo $$ > ${pidFile}.tmp && mv ${pidFile}.tmp ${pidFile} && exec sleep 30']);`,
        '}',
        '',
      ].join('\n'),
    );
    // Compiled first (esbuild is a child too, which would start the spawner): the killed
    // run's first child is the rule's own.
    const compile = spawnSync(process.execPath, [bin, 'slow'], { cwd: killDir, env: cliEnvironment(), encoding: 'utf8' });
    expect(compile.status, compile.stderr).toBe(0);
    writeFileSync(join(killDir, 'go'), '');
    const child = startCli(killDir, ['-f', 'slow']);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    let sleepPid: number | undefined;
    try {
      const deadline = Date.now() + 30_000;
      while (!existsSync(pidFile) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      sleepPid = Number(readFileSync(pidFile, 'utf8'));
      expect(isRunning(sleepPid)).toBe(true);
      process.kill(child.pid as number, 'SIGKILL');
      await exited;
      const end = Date.now() + 4000;
      while (isRunning(sleepPid) && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(isRunning(sleepPid)).toBe(false);
    } finally {
      for (const pid of [child.pid, sleepPid]) {
        try {
          if (pid !== undefined) process.kill(pid, 'SIGKILL');
        } catch {
          // Ended already.
        }
      }
    }
  }, 40_000);

  it('a repeated no-op answered from its memo loads one module of the bundle (main.cjs), not the CLI', async () => {
    const settle = async (): Promise<void> => {
      // The memo is written once the files it rests on are older than its racy window (2 s).
      await new Promise((resolve) => setTimeout(resolve, 2100));
      const run = buildOutTxt(dir);
      expect(run.status, run.stderr).toBe(0);
    };
    await settle();
    const noOp = traced(dir, 'openat', ['out.txt']);
    expect(noOp.status, noOp.stderr).toBe(0);
    expect(noOp.stderr).toBe('');
    const modules = noOp.lines.filter((line) => line.includes('/dist/bundle/') && !line.includes('ENOENT'))
      .map((line) => /\/dist\/bundle\/([^"]+)"/.exec(line)?.[1]);
    expect(modules).toEqual(['main.cjs']);
  }, 20_000);

  it('redo-ifchange in a plain sh rule starts no sh of its own (a function in the rule\'s shell); parallel calls and the quoted command still work', () => {
    const shDir = projectIn('sh');
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
    expect(started.filter((name) => name === 'cat'), started.join(' ')).toHaveLength(4);
  });

  it('reads no source map: not for --version, a no-op, nor a build of a TypeScript rule', () => {
    writeFileSync(join(dir, 'in.txt'), 'maps?\n');
    for (const args of [['--version'], ['out.txt'], ['out.txt']]) {
      const run = traced(dir, 'openat', args);
      expect(run.status, run.stderr).toBe(0);
      const opened = run.lines.filter((line) => line.includes('/dist/'));
      // It did run the bundle, and nothing of tsc's dist/lib/.
      expect(opened.some((line) => line.includes('/dist/bundle/main.cjs"'))).toBe(true);
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
