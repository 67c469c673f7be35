// End-to-end: -j, kill -9 in the middle of a build, and two concurrent invocations on one tree.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { useFixture, type Rig } from '../helpers/rig.js';

const targets = ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => `${name}.slow`);

/** Largest number of rules running at once, from the start/end lines of run.log. */
function maxConcurrency(lines: string[]): number {
  let running = 0;
  let most = 0;
  for (const line of lines) {
    running += line.startsWith('start ') ? 1 : -1;
    most = Math.max(most, running);
  }
  return most;
}

describe('105-parallel', () => {
  const rigs: Rig[] = [];
  const fixture = (): Rig => {
    const rig = useFixture('105-parallel');
    rigs.push(rig);
    return rig;
  };
  afterEach(() => {
    for (const rig of rigs.splice(0)) rig.remove();
  });

  it('-j1 runs one rule at a time; -j3 runs up to three at once', async () => {
    const serial = fixture();
    expect((await serial.run(['all'])).code).toBe(0);
    expect(maxConcurrency(serial.takeRunLog())).toBe(1);
    const parallel = fixture();
    expect((await parallel.run(['-j3', 'all'])).code).toBe(0);
    const concurrency = maxConcurrency(parallel.takeRunLog());
    expect(concurrency).toBeGreaterThan(1);
    expect(concurrency).toBeLessThanOrEqual(3);
  });

  it('kill -9 mid-build leaves no half-written target, and the next run finishes correctly', async () => {
    const rig = fixture();
    const child = rig.start(['all']);
    child.stdout?.resume();
    child.stderr?.resume();
    // Wait until the second rule is running, then kill the whole process group.
    for (let i = 0; i < 200 && (rig.read('run.log') ?? '').split('\n').filter((l) => l.startsWith('start')).length < 2; i += 1) await sleep(25);
    process.kill(-(child.pid as number), 'SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
    for (const target of targets) {
      const content = rig.read(target);
      if (content !== undefined) expect(content).toBe(`partial content ${target[0]}\n`);
    }
    const before = rig.takeRunLog();
    const finished = before.filter((line) => line.startsWith('end ')).map((line) => line.slice(4));
    const result = await rig.run(['all']);
    expect(result.code).toBe(0);
    for (const target of targets) expect(rig.read(target)).toBe(`partial content ${target[0]}\n`);
    const rerun = rig.takeRunLog().filter((line) => line.startsWith('start ')).map((line) => line.slice(6));
    for (const target of finished) if (existsSync(rig.path(target))) expect(rerun).not.toContain(target);
    expect(readdirSync(rig.dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect((await rig.run(['all'])).stderr).toBe('');
  });

  it('two concurrent invocations build each target exactly once and both succeed', async () => {
    const rig = fixture();
    // The second asks for the leaves itself, in reverse order, so both contend for each lock.
    const [first, second] = await Promise.all([rig.run(['-j2', 'all']), rig.run(['-j2', ...[...targets].reverse(), 'all'])]);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    const starts = rig.takeRunLog().filter((line) => line.startsWith('start ')).sort();
    expect(starts).toEqual(targets.map((target) => `start ${target}`));
    for (const target of targets) expect(readFileSync(rig.path(target), 'utf8')).toBe(`partial content ${target[0]}\n`);
    // Both saved records into one store: none was lost, so nothing runs again.
    const again = await rig.run(['all']);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');
    expect(rig.takeRunLog().filter((line) => line.startsWith('start '))).toEqual([]);
  });
});

describe('status line', () => {
  it('on a terminal, a live status line is drawn and erased; plain lines otherwise', async () => {
    const { execFileSync } = await import('node:child_process');
    const { repoRoot } = await import('../helpers/rig.js');
    const rig = useFixture('105-parallel');
    try {
      const output = execFileSync('script', ['-qec', `${process.execPath} ${repoRoot}/bin/redo-ts.js -j2 all`, '/dev/null'], {
        cwd: rig.dir,
        encoding: 'utf8',
      });
      expect(output).toContain('\r\x1b[K[1 running, 0 done, 1 seen] all');
      expect(output).toContain('redo  a.slow  (no previous build)');
      const plainRig = useFixture('105-parallel');
      const plain = await plainRig.run(['all']);
      plainRig.remove();
      expect(plain.stderr).not.toContain('\x1b[');
    } finally {
      rig.remove();
    }
  });
});
