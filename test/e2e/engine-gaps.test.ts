// End-to-end: the last redo gaps of issue 17 (stale builds, dead engines, nested stderr,
// folder targets, rules above the root, umask of stdout targets, missing rules).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli, type RigResult } from '../helpers/rig.js';

/** A fresh project folder (a `.git` marker makes it the root) with `files` written into it. */
function makeProject(files: Record<string, string>): { dir: string; write(name: string, text: string): void; run(args: string[], options?: { umask?: string }): Promise<RigResult> } {
  const dir = mkdtempSync(join(tmpdir(), 'redo-ts-gaps-'));
  const write = (name: string, text: string): void => writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, '.git'), '');
  for (const [name, text] of Object.entries(files)) write(name, text);
  made.push(dir);
  return { dir, write, run: (args, options = {}) => runCli(dir, args, options) };
}

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('issue 17: silently stale', () => {
  it('a dependency recorded as a source is checked again once a rule builds it', async () => {
    const project = makeProject({ 'gen.txt': 'hello\n', 'out.do': 'redo-ifchange gen.txt\ncat gen.txt > "$3"\n' });
    expect((await project.run(['out'])).code).toBe(0);
    rmSync(join(project.dir, 'gen.txt'));
    project.write('input.txt', 'hello\n');
    project.write('gen.txt.do', 'redo-ifchange input.txt\ncat input.txt > "$3"\n');
    expect((await project.run(['out'])).code).toBe(0);
    project.write('input.txt', 'changed\n');
    const ood = await project.run(['ood']);
    expect(ood.stdout.split('\n').filter((line) => line !== '').sort()).toEqual(['gen.txt', 'out']);
    expect((await project.run(['out'])).code).toBe(0);
    expect(readFileSync(join(project.dir, 'out'), 'utf8')).toBe('changed\n');
    expect((await project.run(['ood'])).stdout).toBe('');
  });
});

describe('issue 17: one out-of-date decision for build, ood and explain', () => {
  it('a dependency target edited by hand makes its dependents out of date in ood, as the build rebuilds them', async () => {
    const project = makeProject({
      'src.txt': 'one\n',
      'mid.do': 'redo-ifchange src.txt\ncat src.txt > "$3"\n',
      'top.do': 'redo-ifchange mid\ncat mid > "$3"\n',
    });
    expect((await project.run(['top'])).code).toBe(0);
    project.write('mid', 'by hand\n');
    expect((await project.run(['ood'])).stdout).toBe('top\n');
    expect((await project.run(['explain', 'top'])).stdout).toContain('mid');
    const build = await project.run(['top']);
    expect(build.code).toBe(0);
    expect(readFileSync(join(project.dir, 'top'), 'utf8')).toBe('by hand\n');
    expect((await project.run(['ood'])).stdout).toBe('');
  });
});

/** Processes whose environment names the run folder `runDir`, with their command lines. */
function processesOfRun(runDir: string): Array<{ pid: number; command: string }> {
  const found: Array<{ pid: number; command: string }> = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (!`\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(`\0REDO_RUN_DIR=${runDir}\0`)) continue;
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[0];
      if (state === 'Z') continue;
      found.push({ pid, command: readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim() });
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** The parent of `pid` (undefined when it is gone). */
function parentOf(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Children of `pid` (by /proc stat's parent field). */
function childrenOf(pid: number): Array<{ pid: number; command: string }> {
  const found: Array<{ pid: number; command: string }> = [];
  for (const name of readdirSync('/proc')) {
    const child = Number(name);
    if (!Number.isInteger(child)) continue;
    try {
      if (Number(readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]) !== pid) continue;
      found.push({ pid: child, command: readFileSync(`/proc/${child}/cmdline`, 'latin1').split('\0').join(' ').trim() });
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return condition();
}

describe('issue 17: rules waiting on a dead engine', () => {
  it('kill -9 of the engine and its spawner: waiting clients exit within 2 s, the next engine ends the rest of the run', async () => {
    const slow = 'echo "$REDO_RUN_DIR" > "$REDO_ROOT/rundir.$1"\nsleep 60\necho "$1" > "$3"\n';
    const project = makeProject({
      'all.do': 'redo-ifchange top par\n',
      'top.do': 'redo-ifchange slow1\ncat slow1 > "$3"\n',
      // Two calls of one rule at once: the second waits on a private reply FIFO.
      'par.do': 'redo-ifchange slow2 & redo-ifchange slow3\nwait\n',
      'slow1.do': slow,
      'slow2.do': slow,
      'slow3.do': slow,
    });
    const engine = startCli(project.dir, ['-j8', 'all']);
    let runDir = '';
    try {
      expect(await waitFor(() => ['slow1', 'slow2', 'slow3'].every((name) => existsSync(join(project.dir, `rundir.${name}`))), 20000)).toBe(true);
      runDir = readFileSync(join(project.dir, 'rundir.slow1'), 'utf8').trim();
      // Let every client block in its read.
      await new Promise((resolve) => setTimeout(resolve, 500));
      // A sourced rule and its clients are subshells of the spawner (its command line): the
      // waiting ones are every process of the run but the `sleep 60`s and the rules above them.
      const clients = () => {
        const processes = processesOfRun(runDir);
        const parents = new Map(processes.map((p) => [p.pid, parentOf(p.pid)]));
        const sleepers = new Set<number>();
        for (const p of processes.filter((q) => q.command === 'sleep 60')) {
          for (let pid: number | undefined = p.pid; pid !== undefined && parents.has(pid); pid = parents.get(pid)) sleepers.add(pid);
        }
        return processes.filter((p) => !sleepers.has(p.pid));
      };
      expect(clients().length).toBeGreaterThanOrEqual(3);
      const spawner = childrenOf(engine.pid!).find((p) => p.command.includes('redo-spawner.sh'));
      expect(spawner).toBeDefined();
      // Both stopped first, then killed: between two kills, a spawner that saw its engine die
      // would end the run's processes itself (its sweep), which is not the case under test.
      for (const signal of ['SIGSTOP', 'SIGKILL'] as const) {
        for (const pid of [engine.pid!, spawner!.pid]) {
          try {
            process.kill(pid, signal);
          } catch {
            // Gone already.
          }
        }
      }
      expect(await waitFor(() => clients().length === 0, 2500), JSON.stringify(clients())).toBe(true);
      // The rules that were not waiting (sleep 60) are what is left; the next engine ends them.
      expect(processesOfRun(runDir).length).toBeGreaterThan(0);
      for (const name of ['slow1', 'slow2', 'slow3']) project.write(`${name}.do`, 'echo "$1" > "$3"\n');
      const journalDir = join(project.dir, '.redo', 'journal');
      const journals = readdirSync(journalDir).map((name) => `${name}: ${readFileSync(join(journalDir, name), 'utf8')}`).join('\n');
      const next = await project.run(['all']);
      expect(next.code, `${next.stderr}\nspawner: ${JSON.stringify(spawner)}`).toBe(0);
      expect(processesOfRun(runDir), `${next.stderr}\nspawner: ${JSON.stringify(spawner)}\njournals: ${journals}\nengine: ${existsSync(`/proc/${engine.pid}`) ? 'still there' : 'gone'}`).toEqual([]);
      expect(existsSync(runDir)).toBe(false);
    } finally {
      try {
        process.kill(-engine.pid!, 'SIGKILL');
      } catch {
        // Gone.
      }
      if (runDir !== '') {
        for (const p of processesOfRun(runDir)) {
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            // Gone meanwhile.
          }
        }
      }
    }
  }, 60000);
});

describe('issue 17: nested stderr follows the caller', () => {
  it('out=$(redo x 2>&1) captures the stderr of x and of what x builds; no message escapes to the terminal', async () => {
    const project = makeProject({
      'outer.do': 'out=$(redo x 2>&1)\nprintf "%s\\n" "$out" > "$3"\n',
      'x.do': 'echo x-says >&2\nredo y\necho x > "$3"\n',
      'y.do': 'echo y-says >&2\necho y > "$3"\n',
    });
    const result = await project.run(['outer']);
    expect(result.code).toBe(0);
    const captured = readFileSync(join(project.dir, 'outer'), 'utf8');
    expect(captured).toContain('x-says');
    expect(captured).toContain('y-says');
    expect(result.stderr).not.toContain('y-says');
    expect(result.stderr).not.toContain('x-says');
  });

  it('redo-ifchange nosuch 2>/dev/null in a rule: the error goes where the caller sent it', async () => {
    const project = makeProject({
      'quiet.do': 'redo-ifchange nosuch 2>/dev/null || echo fallback > "$3"\n',
      'loud.do': 'redo-ifchange nosuch 2>"$REDO_ROOT/loud.err" || echo fallback > "$3"\n',
    });
    const result = await project.run(['quiet', 'loud']);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain('nosuch');
    expect(readFileSync(join(project.dir, 'loud.err'), 'utf8')).toContain('redo: "nosuch": no rule to build it and no such file');
  });
});

describe('issue 17: a folder made at $1', () => {
  it('rm -rf "$1"; mkdir "$1" is accepted as the output; dependents see its content', async () => {
    const project = makeProject({
      'src.txt': 'one\n',
      'tree.do': 'redo-ifchange src.txt\nrm -rf "$1"\nmkdir "$1"\ncp src.txt "$1/copy"\n',
      'use.do': 'redo-ifchange tree\ncat tree/copy > "$3"\n',
    });
    const first = await project.run(['use']);
    expect(first.stderr).not.toContain('directly');
    expect(first.code).toBe(0);
    expect(readFileSync(join(project.dir, 'use'), 'utf8')).toBe('one\n');
    expect((await project.run(['use'])).stderr).toBe('');
    project.write('src.txt', 'two\n');
    const second = await project.run(['use']);
    expect(second.code).toBe(0);
    expect(readFileSync(join(project.dir, 'use'), 'utf8')).toBe('two\n');
    expect(second.stderr).toContain('redo  use');
    expect((await project.run(['ood'])).stdout).toBe('');
  });
});

describe('issue 17: default*.do above the project root', () => {
  it('a default*.do in a folder above the root builds the target, run there with $1 relative to it', async () => {
    const outer = makeProject({ 'default.up.do': 'echo "$1 in ${PWD##*/}" > "$3"\n' });
    mkdirSync(join(outer.dir, 'proj'));
    // A nested package.json makes proj/ the root; the search goes on above it.
    writeFileSync(join(outer.dir, 'proj', 'package.json'), '{}\n');
    const result = await runCli(join(outer.dir, 'proj'), ['x.up']);
    expect(result.stderr).not.toContain('no rule');
    expect(result.code).toBe(0);
    expect(readFileSync(join(outer.dir, 'proj', 'x.up'), 'utf8')).toBe(`proj/x.up in ${outer.dir.split('/').pop()}\n`);
    const which = await runCli(join(outer.dir, 'proj'), ['whichdo', 'x.up']);
    expect(which.stdout.split('\n')).toContain('../default.up.do');
    // A closer rule appearing in the project takes over.
    writeFileSync(join(outer.dir, 'proj', 'default.up.do'), 'echo inside > "$3"\n');
    expect((await runCli(join(outer.dir, 'proj'), ['x.up'])).code).toBe(0);
    expect(readFileSync(join(outer.dir, 'proj', 'x.up'), 'utf8')).toBe('inside\n');
  });
});

describe('issue 17: umask of a target written to stdout', () => {
  it("(umask 077; redo-ts all) where all.do sets umask 022: a stdout target gets 0644, as with $3", async () => {
    const project = makeProject({
      'all.do': 'umask 0022\nredo-ifchange viaout via3\n',
      'viaout.do': 'echo out\n',
      'via3.do': 'echo three > "$3"\n',
    });
    const result = await project.run(['all'], { umask: '077' });
    expect(result.code).toBe(0);
    expect(statSync(join(project.dir, 'via3')).mode & 0o777).toBe(0o644);
    expect(statSync(join(project.dir, 'viaout')).mode & 0o777).toBe(0o644);
  });
});

describe('issue 18 item 6: an out-of-date target whose rule is gone', () => {
  it('warns naming the target and the missing rule; --strict makes it an error', async () => {
    const project = makeProject({ 'src.txt': 'v1\n', 'top.do': 'redo-ifchange src.txt\ncat src.txt > "$3"\n' });
    expect((await project.run(['top'])).code).toBe(0);
    rmSync(join(project.dir, 'top.do'));
    project.write('src.txt', 'v3\n');
    const warned = await project.run(['top']);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain('warning: redo: "top": out of date, but no rule builds it any more');
    expect(warned.stderr).toContain('rule last used: top.do');
    const strict = await project.run(['--strict', 'top']);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain('redo: "top": out of date, but no rule builds it any more; not using its old output');
    expect(strict.stderr).toContain('hint: restore "top.do"');
    expect((await project.run(['--help'])).stdout).toContain('--strict');
  });
});

describe('issue 17: the verified no-op (.redo/no-op.json)', () => {
  // Files changed in the last two seconds are not trusted by the memo.
  const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2100));

  it('answers a repeated request by stats, and every kind of change still rebuilds', { timeout: 60000 }, async () => {
    const project = makeProject({
      'src.txt': 'one\n',
      'default.out.do': 'redo-ifchange src.txt\nredo-ifchange-env FLAVOUR\necho "$FLAVOUR" | cat src.txt - > "$3"\n',
      'all.do': 'redo-ifchange a.out\n',
    });
    const env = { FLAVOUR: 'plain' };
    const run = (args: string[]): Promise<RigResult> => runCli(project.dir, args, { env });
    expect((await run(['all'])).code).toBe(0);
    await settle();
    expect((await run(['all'])).stderr).toBe('');
    const memo = join(project.dir, '.redo', 'no-op.json');
    expect(existsSync(memo)).toBe(true);
    expect((await run(['all'])).stderr).toBe('');
    // Same size, new content.
    project.write('src.txt', 'two\n');
    expect((await run(['all'])).stderr).toContain('redo  a.out  (changed: src.txt)');
    await settle();
    expect((await run(['all'])).stderr).toBe('');
    expect(existsSync(memo)).toBe(true);
    // A more specific rule appears (an ifcreate dependency, answered from a folder listing).
    project.write('a.out.do', 'echo specific > "$3"\n');
    expect((await run(['all'])).stderr).toContain('redo  a.out  (rule appeared: a.out.do)');
    expect(readFileSync(join(project.dir, 'a.out'), 'utf8')).toBe('specific\n');
    rmSync(join(project.dir, 'a.out.do'));
    expect((await run(['all'])).code).toBe(0);
    await settle();
    expect((await run(['all'])).stderr).toBe('');
    // An environment dependency changes.
    const spicy = await runCli(project.dir, ['all'], { env: { FLAVOUR: 'spicy' } });
    expect(spicy.stderr).toContain('redo  a.out  (changed: $FLAVOUR)');
    await settle();
    expect((await runCli(project.dir, ['all'], { env: { FLAVOUR: 'spicy' } })).stderr).toBe('');
    // A target edited by hand in place: warned about on every run, never silently.
    const { appendFileSync } = await import('node:fs');
    appendFileSync(join(project.dir, 'a.out'), 'by hand\n');
    for (let i = 0; i < 2; i += 1) {
      expect((await runCli(project.dir, ['all'], { env: { FLAVOUR: 'spicy' } })).stderr).toContain('warning: redo: "a.out": modified since redo-ts built it');
      await settle();
    }
    // Another request (another target) is not answered by this memo.
    rmSync(join(project.dir, 'a.out'));
    expect((await runCli(project.dir, ['a.out'], { env: { FLAVOUR: 'spicy' } })).stderr).toContain('redo  a.out  (output was deleted)');
  });
});

describe("issue 17: what apenwarr's test suite (t/) asks of redo-ts", () => {
  it('redo-whichdo of a target outside the project lists the search up to / and exits 1, as redo does', async () => {
    const project = makeProject({ 'all.do': 'a=$(cd / && redo-whichdo __nonexist/a/x.y.z) && exit 1; printf "%s\\n" "$a" > "$3"\n' });
    const result = await project.run(['all']);
    expect(result.stderr).not.toContain('outside the project');
    expect(result.code).toBe(0);
    expect(readFileSync(join(project.dir, 'all'), 'utf8').split('\n').filter((line) => line !== '')).toEqual([
      '__nonexist/a/x.y.z.do',
      '__nonexist/a/default.y.z.do',
      '__nonexist/a/default.z.do',
      '__nonexist/a/default.do',
      '__nonexist/default.y.z.do',
      '__nonexist/default.z.do',
      '__nonexist/default.do',
      'default.y.z.do',
      'default.z.do',
      'default.do',
    ]);
  });

  it("the flush-cache call (apenwarr's t/flush-cache) makes the run look at settled targets again, as a new run would", async () => {
    const libexec = join(__dirname, '..', '..', 'libexec');
    const project = makeProject({
      // A target that fails while want-fail exists; a rule that asks for it twice around a flush.
      'maybe-fail.do': 'echo ran >> maybe-fail.log\n[ ! -e want-fail ]\necho ok > "$3"\n',
      'flush-cache': `#!/bin/sh\ncmd=flush-cache\nredo_libexec=${libexec}\n. "$redo_libexec/redo-call.sh"\n`,
      'all.do': [
        ': > want-fail',
        '! redo-ifchange maybe-fail 2>/dev/null || exit 11',
        'rm want-fail',
        '! redo-ifchange maybe-fail 2>/dev/null || exit 12   # same run: the failure stands',
        './flush-cache',
        'redo-ifchange maybe-fail || exit 13                  # looked at again: it builds',
        'echo done > "$3"',
        '',
      ].join('\n'),
    });
    execFileSync('chmod', ['+x', join(project.dir, 'flush-cache')]);
    const result = await project.run(['all']);
    expect(result.stderr).not.toContain('exited with status');
    expect(result.code).toBe(0);
    expect(readFileSync(join(project.dir, 'maybe-fail.log'), 'utf8')).toBe('ran\nran\n');
    expect(readFileSync(join(project.dir, 'maybe-fail'), 'utf8')).toBe('ok\n');
  });
});
