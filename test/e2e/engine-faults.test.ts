// End-to-end: faults. kill -9 at any instant, signals, stale and foreign locks, a
// cross-process cycle, damaged state, a removed rule, a rule writing $1, environment
// dependencies, a full disk, a read-only project. Each test kills only the processes of
// the builds it started (found by their environment) and cleans up even on failure.
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { copyFixture } from '../helpers/project-copy.js';
import { copyWithRules, repoRoot, runCli, startCli, useFixture, type Rig } from '../helpers/rig.js';

/**
 * Pids of processes of a build of the project `dir`: rules and clients (REDO_ROOT in
 * their environment) and redo-ts itself (working folder inside `dir`).
 */
function buildProcesses(dir: string): number[] {
  const marker = `\0REDO_ROOT=${dir}\0`;
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (`\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(marker)) found.push(pid);
      else if (`${readlinkSync(`/proc/${pid}/cwd`)}/`.startsWith(`${dir}/`)) found.push(pid);
    } catch {
      // Gone, or a zombie.
    }
  }
  return found.filter(isRunning);
}

/** True when `pid` is a process that has not ended (a zombie has). */
/** Rewrites the record store's base file through `change` (what a test needs a killed or damaged state to hold). */
function editRecords(file: string, change: (records: Array<[number, string, Record<string, unknown>]>) => unknown[]): void {
  const data = JSON.parse(readFileSync(file, 'utf8')) as { version: number; records: Array<[number, string, Record<string, unknown>]> };
  writeFileSync(file, JSON.stringify({ ...data, records: change(data.records) }));
}

function isRunning(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

/** Waits up to `limitMs` for every process of the build of `dir` to end; returns those left. */
async function waitForNoProcesses(dir: string, limitMs: number): Promise<number[]> {
  const deadline = Date.now() + limitMs;
  let left = buildProcesses(dir);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(50);
    left = buildProcesses(dir);
  }
  return left;
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Every file under `dir` (relative), skipping .redo/. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) return name === '.redo' ? [] : listFiles(dir, name);
    return [name];
  });
}

function closed(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  child.stdout?.resume();
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

async function waitFor(check: () => boolean, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(20);
  }
}

/** The lock file redo-ts uses for `target` of the project `root` (see lib/engine/lock.ts). */
function lockFileOf(root: string, target: string): string {
  const uid = process.getuid?.() ?? 0;
  const folder = join('/dev/shm', `redo-ts-locks-${uid}-${createHash('sha256').update(root).digest('hex').slice(0, 24)}`);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  return join(folder, `${createHash('sha256').update(target).digest('hex').slice(0, 32)}.lock`);
}

function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

describe('108-faults', () => {
  const rigs: Rig[] = [];
  const cleanups: Array<() => void> = [];
  const fixture = (): Rig => {
    const rig = useFixture('108-faults');
    rigs.push(rig);
    return rig;
  };
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        cleanup();
      } catch {
        // Clean up the rest.
      }
    }
    for (const rig of rigs.splice(0)) {
      killAll(buildProcesses(rig.dir));
      rig.remove();
    }
  });

  // FAULTS_KILLS=N runs a longer loop (for stress runs by hand).
  const kills = Number(process.env.FAULTS_KILLS ?? 20);
  it(`kill -9 at any instant of a first build: the next build after an edit gives a clean build's bytes (${kills} kills)`, async () => {
    const reference = fixture();
    const startMs = Date.now();
    const first = await reference.run(['final.out']);
    expect(first.code, first.stderr).toBe(0);
    const durationMs = Date.now() - startMs;
    writeFileSync(reference.path('src.txt'), 'beta\n');
    const second = await reference.run(['final.out']);
    expect(second.code, second.stderr).toBe(0);
    const expected = reference.read('final.out');
    expect(expected).toContain('final: beta');

    for (let kill = 0; kill < kills; kill += 1) {
      // A first build (no records yet) is where an output without its record used to
      // become a source for good; every fourth kill lands on the leftovers of the last one.
      const rig = kill % 4 === 3 ? rigs[rigs.length - 1]! : fixture();
      writeFileSync(rig.path('src.txt'), 'alpha\n');
      const child = rig.start(['final.out']);
      const done = closed(child);
      await sleep(Math.random() * durationMs);
      // Even kills take the whole process group; odd ones only redo-ts, whose rules must then stop by themselves.
      try {
        process.kill(kill % 2 === 0 ? -(child.pid as number) : (child.pid as number), 'SIGKILL');
      } catch {
        // It finished first.
      }
      await done;
      expect(await waitForNoProcesses(rig.dir, 3000), `processes left after kill ${kill + 1}`).toEqual([]);
      writeFileSync(rig.path('src.txt'), 'beta\n');
      const result = await rig.run(['final.out']);
      const context = `after kill ${kill + 1}:\n${result.stderr}`;
      expect(result.stderr, context).not.toContain('warning');
      expect(result.code, context).toBe(0);
      expect(rig.read('final.out'), context).toBe(expected);
      expect(listFiles(rig.dir).filter((name) => name.includes('.tmp')), context).toEqual([]);
      expect(existsSync(rig.path('.redo/journal')) ? readdirSync(rig.path('.redo/journal')) : [], context).toEqual([]);
    }
  }, Math.max(90_000, kills * 4000));

  it('an output renamed into place before its record was saved is rebuilt, not taken for a source', async () => {
    const rig = fixture();
    expect((await rig.run(['gen.out'])).code).toBe(0);
    // What a kill between the rename and the record save leaves: the output, no record,
    // and the journal of an engine that is gone.
    editRecords(rig.path('.redo/db/records.json'), (records) => records.filter(([, target]) => target !== 'gen.out'));
    writeFileSync(rig.path('gen.out'), 'new output of a killed build\n');
    mkdirSync(rig.path('.redo/journal'), { recursive: true });
    writeFileSync(rig.path('.redo/journal/999999999-1'), `${JSON.stringify('gen.out')}\n`);
    writeFileSync(rig.path('gen.out.redo.999999999.tmp'), 'half');
    const result = await rig.run(['gen.out']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('redo  gen.out  (no previous build)\n');
    expect(rig.read('gen.out')).toBe('one\n');
    expect(existsSync(rig.path('gen.out.redo.999999999.tmp'))).toBe(false);
    expect(readdirSync(rig.path('.redo/journal'))).toEqual([]);
  });

  it('SIGTERM stops every process of the build, removes temporary outputs, exits 143; the next build works', async () => {
    const rig = fixture();
    writeFileSync(rig.path('slow'), '');
    const child = rig.start(['sig.out']);
    const done = closed(child);
    await waitFor(() => (rig.read('pids') ?? '').split('\n').filter((line) => line !== '').length >= 3, 10_000);
    const pids = (rig.read('pids') ?? '').split('\n').filter((line) => line !== '').map(Number);
    process.kill(child.pid as number, 'SIGTERM');
    const result = await done;
    expect(result.code).toBe(143);
    expect(result.stderr).toContain('redo: interrupted by SIGTERM');
    expect(result.stderr).not.toContain('status');
    expect(await waitForNoProcesses(rig.dir, 1000)).toEqual([]);
    for (const pid of pids) expect(isRunning(pid), `pid ${pid}`).toBe(false);
    expect(listFiles(rig.dir).filter((name) => name.includes('.tmp'))).toEqual([]);
    expect(existsSync(lockFileOf(rig.dir, 'sig.out')) || existsSync(lockFileOf(rig.dir, 'sleeper.out'))).toBe(false);
    rmSync(rig.path('slow'));
    const next = await rig.run(['sig.out']);
    expect(next.code).toBe(0);
    expect(rig.read('sig.out')).toBe('partial done\n');
  });

  it('Ctrl-C to the process group exits 130 and leaves no process behind', async () => {
    const rig = fixture();
    writeFileSync(rig.path('slow'), '');
    const child = rig.start(['sig.out']);
    const done = closed(child);
    await waitFor(() => (rig.read('pids') ?? '').split('\n').filter((line) => line !== '').length >= 3, 10_000);
    process.kill(-(child.pid as number), 'SIGINT');
    const result = await done;
    expect(result.code).toBe(130);
    expect(await waitForNoProcesses(rig.dir, 1000)).toEqual([]);
    rmSync(rig.path('slow'));
    expect((await rig.run(['sig.out'])).code).toBe(0);
  });

  it('kill -9 of redo-ts alone: its rules and waiting redo-ifchange clients end within two seconds; scratch is collected', async () => {
    const rig = fixture();
    writeFileSync(rig.path('slow'), '');
    const child = rig.start(['sig.out']);
    const done = closed(child);
    await waitFor(() => (rig.read('pids') ?? '').split('\n').filter((line) => line !== '').length >= 3, 10_000);
    const scratch = (rig.read('scratch-dir') ?? '').trim();
    expect(existsSync(join(scratch, 'file'))).toBe(true);
    process.kill(child.pid as number, 'SIGKILL');
    await done;
    expect(await waitForNoProcesses(rig.dir, 2000)).toEqual([]);
    rmSync(rig.path('slow'));
    // The killed build's temporary output and scratch folder are collected by the next.
    expect(readdirSync(rig.dir).filter((name) => name.includes('.redo.'))).not.toEqual([]);
    const next = await rig.run(['sig.out']);
    expect(next.code).toBe(0);
    expect(existsSync(scratch)).toBe(false);
    expect(listFiles(rig.dir).filter((name) => name.includes('.tmp'))).toEqual([]);
  });

  it('an empty, garbage or foreign-pid lock is reclaimed at once', async () => {
    const rig = fixture();
    const sleeper = execFileSync('sh', ['-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim();
    cleanups.push(() => killAll([Number(sleeper)]));
    const contents = ['', 'garbage\n', `${sleeper}\n`, `${sleeper} 12345\n`];
    for (const content of contents) {
      writeFileSync(lockFileOf(rig.dir, 'gen.out'), content);
      rmSync(rig.path('gen.out'), { force: true });
      const startMs = Date.now();
      const result = await rig.run(['gen.out']);
      expect(result.code, JSON.stringify(content)).toBe(0);
      expect(Date.now() - startMs).toBeLessThan(5000);
      expect(existsSync(lockFileOf(rig.dir, 'gen.out'))).toBe(false);
    }
  });

  it('a lock held by a live process: after a few seconds the build says who holds it', async () => {
    const rig = fixture();
    const lock = lockFileOf(rig.dir, 'gen.out');
    writeFileSync(lock, `${process.pid} ${startTicks(process.pid)}\n`);
    cleanups.push(() => rmSync(lock, { force: true }));
    const child = rig.start(['gen.out']);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const done = closed(child);
    await waitFor(() => stderr.includes('held by'), 8000);
    expect(stderr).toContain(`warning: redo: "gen.out": waiting for another redo-ts process that is building it\n  held by: pid ${process.pid} (`);
    rmSync(lock);
    expect((await done).code).toBe(0);
    expect(rig.read('gen.out')).toBe('one\n');
  });

  it('two redo-ts processes building the two ends of a cycle both stop with a message naming both targets', async () => {
    const rig = fixture();
    const [first, second] = await Promise.all([rig.run(['cx']), rig.run(['cy'])]);
    expect(first.code).toBe(1);
    expect(second.code).toBe(1);
    const stderr = first.stderr + second.stderr;
    expect(stderr).toMatch(/dependency cycle through another redo-ts process: "c[xy]" and "c[xy]" wait for each other/);
    expect(stderr).toContain('"cx"');
    expect(stderr).toContain('"cy"');
  }, 20_000);

  it('a target whose rule was away for a while is rebuilt when the rule comes back', async () => {
    const rig = fixture();
    expect((await rig.run(['gen.out'])).code).toBe(0);
    renameSync(rig.path('gen.out.do'), rig.path('gen.out.do.away'));
    expect((await rig.run(['gen.out'])).code).toBe(0);
    writeFileSync(rig.path('gen.in'), 'two\n');
    renameSync(rig.path('gen.out.do.away'), rig.path('gen.out.do'));
    const result = await rig.run(['gen.out']);
    expect(result.code).toBe(0);
    expect(rig.read('gen.out')).toBe('two\n');
  });

  it('a rule that writes $1 keeps failing on every run until it is fixed', async () => {
    const rig = fixture();
    for (let run = 0; run < 2; run += 1) {
      const result = await rig.run(['direct']);
      expect(result.code).toBe(3);
      expect(result.stderr).toContain('redo: "direct": rule "direct.do" modified $1 directly');
      expect(existsSync(rig.path('direct'))).toBe(false);
    }
    writeFileSync(rig.path('direct.do'), 'echo fixed > "$3"\n');
    expect((await rig.run(['direct'])).code).toBe(0);
    expect(rig.read('direct')).toBe('fixed\n');
  });

  it('.redo/db deleted or replaced by a file is a state error (6), not outputs turned into sources', async () => {
    const rig = fixture();
    expect((await rig.run(['gen.out'])).code).toBe(0);
    rmSync(rig.path('.redo/db'), { recursive: true });
    const deleted = await rig.run(['gen.out']);
    expect(deleted.code).toBe(6);
    expect(deleted.stderr).toContain('redo: ".redo/db": the target records folder is missing\n');
    expect(deleted.stderr).toContain('hint: delete .redo/ and every file redo-ts built');
    writeFileSync(rig.path('.redo/db'), '');
    const replaced = await rig.run(['gen.out']);
    expect(replaced.code).toBe(6);
    expect(replaced.stderr).toContain('redo: ".redo/db": the target records folder is not a folder\n  found: .redo/db is a file (or another non-folder), where the records folder belongs\n');
    expect(replaced.stderr).not.toContain('without .redo/db');
  });

  it('a first run killed after making .redo/db but before .redo/VERSION is carried on', async () => {
    const rig = fixture();
    mkdirSync(rig.path('.redo/db'), { recursive: true });
    const result = await rig.run(['gen.out']);
    expect(result.code, result.stderr).toBe(0);
    expect(rig.read('.redo/VERSION')).toBe('redo-ts state 2\n');
  });

  it('records live in one store, not a file per target; version 1 state (a file per target) is converted without a rebuild', async () => {
    const rig = fixture();
    expect((await rig.run(['gen.out'])).code).toBe(0);
    expect(readdirSync(rig.path('.redo/db'))).toEqual(['records.json']);
    // Turn the store back into version 1: one db/<target>.json per record.
    const data = JSON.parse(rig.read('.redo/db/records.json')) as { records: Array<[number, string, Record<string, unknown>]> };
    expect(data.records.map(([, target]) => target)).toEqual(['gen.out']);
    for (const [, target, record] of data.records) writeFileSync(rig.path(`.redo/db/${target}.json`), JSON.stringify({ ...record, version: 1 }));
    rmSync(rig.path('.redo/db/records.json'));
    writeFileSync(rig.path('.redo/VERSION'), 'redo-ts state 1\n');
    rmSync(rig.path('.redo/no-op.json'), { force: true });
    rig.takeRunLog();
    const result = await rig.run(['gen.out']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    expect(rig.read('.redo/VERSION')).toBe('redo-ts state 2\n');
    expect(readdirSync(rig.path('.redo/db'))).toEqual(['records.json']);
  });

  it('a record of the wrong shape is a state error (6) naming the file to delete', async () => {
    const rig = fixture();
    expect((await rig.run(['gen.out'])).code).toBe(0);
    editRecords(rig.path('.redo/db/records.json'), (records) => records.map(([gen, target, record]) => [gen, target, target === 'gen.out' ? { ...record, deps: [{ path: 5 }] } : record]));
    const result = await rig.run(['gen.out']);
    expect(result.code).toBe(6);
    expect(result.stderr).toBe([
      'redo: ".redo/db/records.json": state file is unreadable',
      '  found: the record of "gen.out": dependency 1 is not a dependency record',
      '  wanted: redo-ts state version 2',
      '  hint: delete .redo/ and every file redo-ts built (for instance with `git clean -X` if they are ignored), then run again',
      '',
    ].join('\n'));
  });

  it('a damaged compiled rule in .redo/ts is compiled again', async () => {
    const rig = fixture();
    expect((await rig.run(['hello.out'])).code).toBe(0);
    const compiled = readdirSync(rig.path('.redo/ts')).filter((name) => name.endsWith('.mjs'));
    expect(compiled.length).toBe(1);
    writeFileSync(rig.path(`.redo/ts/${compiled[0]}`), 'export default (');
    rmSync(rig.path('hello.out'));
    const result = await rig.run(['hello.out']);
    expect(result.code).toBe(0);
    expect(rig.read('hello.out')).toBe('hello from TypeScript\n');
  });

  it('environment dependencies: changing SOURCE_DATE_EPOCH rebuilds exactly the targets that declared it', async () => {
    const rig = fixture();
    const build = (epoch: string | undefined): Promise<unknown> => rig.run(['epoch.out', 'plain.out', 'tsenv.out'], {
      env: epoch === undefined ? {} : { SOURCE_DATE_EPOCH: epoch },
    });
    // The rig's environment may carry one; start from a known value.
    await build('1');
    rig.takeRunLog();
    await build('1');
    expect(rig.takeRunLog()).toEqual([]);
    await build('2');
    expect(rig.takeRunLog().sort()).toEqual(['epoch.out', 'tsenv.out']);
    expect(rig.read('epoch.out')).toBe('epoch 2\n');
    expect(rig.read('tsenv.out')).toBe('ts epoch 2\n');
    const unset = await rig.run(['--why', 'epoch.out'], { env: { SOURCE_DATE_EPOCH: '3' } });
    expect(unset.stdout + unset.stderr).toContain('$SOURCE_DATE_EPOCH');
  });

  it('redo-ifchange-env outside a rule is a usage error', async () => {
    const rig = fixture();
    const result = await rig.run(['ifchange-env', 'SOURCE_DATE_EPOCH']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('only works inside a running rule');
  });
});

describe('faults with the shared rules', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  it('the layer rule declares SOURCE_DATE_EPOCH: a new epoch rebuilds the layers, the same one nothing', async () => {
    const project = copyFixture('501-layer-list');
    cleanups.push(() => project.remove());
    expect((await project.redo(['app.layer.tar'], { env: { SOURCE_DATE_EPOCH: '1000' } })).status).toBe(0);
    const first = project.sha256('app.layer.tar');
    expect((await project.redo(['app.layer.tar'], { env: { SOURCE_DATE_EPOCH: '1000' } })).stderr).toBe('');
    const changed = await project.redo(['app.layer.tar'], { env: { SOURCE_DATE_EPOCH: '2000' } });
    expect(changed.status).toBe(0);
    expect(changed.stderr).toContain('redo  extra.layer.tar  (changed: $SOURCE_DATE_EPOCH)\n');
    expect(changed.stderr).toContain('redo  app.layer.tar  (changed: $SOURCE_DATE_EPOCH)\n');
    expect(project.sha256('app.layer.tar')).not.toBe(first);
  });

  it('kill -9 of redo-ts while a spec build step runs: the step ends within two seconds', async () => {
    const source = mkdtempSync(join(tmpdir(), 'redo-ts-step-'));
    const dir = (() => {
      try {
        mkdirSync(join(source, 'targets'));
        mkdirSync(join(source, 'src'));
        writeFileSync(join(source, 'package.json'), '{ "private": true }\n');
        writeFileSync(join(source, 'src', 'a.txt'), 'a\n');
        return copyWithRules(source, 'redo-ts-step-project-');
      } finally {
        rmSync(source, { recursive: true, force: true });
      }
    })();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pidFile = join(dir, 'step.pid');
    writeFileSync(join(dir, 'targets', 'slow.spec.yaml'), [
      'name: slow',
      'version: "1"',
      'sources:',
      '  - url: file:src/a.txt',
      '    integrity: project',
      'build:',
      `  - echo $$ > ${pidFile}; sleep 30`,
      'files:',
      '  - path: /a.txt',
      // On the host, so the step's pid is one this test can see (in the sandbox it is 2).
      'build-environment: host',
      '',
    ].join('\n'));
    const child = startCli(dir, ['targets/slow.fragment.tar']);
    const done = closed(child);
    cleanups.push(() => killAll(buildProcesses(dir)));
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 20_000);
    const stepPid = Number(readFileSync(pidFile, 'utf8'));
    cleanups.push(() => killAll([stepPid]));
    process.kill(child.pid as number, 'SIGKILL');
    await done;
    const deadline = Date.now() + 2500;
    while (isRunning(stepPid) && Date.now() < deadline) await sleep(50);
    expect(isRunning(stepPid)).toBe(false);
  });
});

describe('a full disk (small tmpfs)', () => {
  let mountPoint: string | undefined;
  const mount = (sizeKiB: number): string | undefined => {
    const dir = mkdtempSync(join(tmpdir(), 'redo-ts-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir], { stdio: 'pipe' });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      console.log(`skipped: cannot mount a tmpfs here (${String(error).split('\n')[0]})`);
      return undefined;
    }
    mountPoint = dir;
    const project = join(dir, 'p');
    cpSync(join(repoRoot, 'test', 'fixtures', '108-faults'), project, { recursive: true });
    return project;
  };
  afterEach(() => {
    if (mountPoint === undefined) return;
    killAll(buildProcesses(join(mountPoint, 'p')));
    execFileSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
    mountPoint = undefined;
  });
  const usedKiB = (dir: string): number => Number(execFileSync('df', ['-k', '--output=used', dir], { encoding: 'utf8' }).split('\n')[1]);

  it('a rule whose $3 fills the disk fails naming the target; its temporary output is removed; the old output stays', async () => {
    const project = mount(1024);
    if (project === undefined) return;
    expect((await runCli(project, ['big.out'])).code).toBe(0);
    const before = usedKiB(project);
    const result = await runCli(project, ['big.out'], { env: { BIG_KIB: '4096' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "big.out": rule "big.out.do" exited with status 1');
    expect(result.stderr).toContain('No space left on device');
    expect(listFiles(project).filter((name) => name.includes('.tmp'))).toEqual([]);
    expect(statSync(join(project, 'big.out')).size).toBe(1024);
    expect(usedKiB(project)).toBeLessThanOrEqual(before + 8);
  });

  it('stdout that does not fit: ERR_WRITE_FAILED naming the target, nothing left behind', async () => {
    const project = mount(1024);
    if (project === undefined) return;
    const result = await runCli(project, ['bigout.out'], { env: { BIG_KIB: '2048' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "bigout.out": cannot put the output of rule "bigout.out.do" in place\n');
    expect(result.stderr).toContain('error: ENOSPC');
    expect(result.stderr).not.toContain('internal error');
    expect(listFiles(project).filter((name) => name.includes('.tmp') || name === 'bigout.out')).toEqual([]);
  });

  it('ENOSPC no rule handles (a stream without an error listener): the build stops with a plain message; the old output and record stay', async () => {
    const project = mount(1024);
    if (project === undefined) return;
    expect((await runCli(project, ['stream.out'])).code).toBe(0);
    const record = readFileSync(join(project, '.redo/db/records.json'), 'utf8');
    const result = await runCli(project, ['stream.out'], { env: { STREAM_KIB: '4096' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "stream.out": a write failed during the build; the build was stopped\n  error: ENOSPC: no space left on device');
    expect(result.stderr).not.toContain('internal error');
    expect(statSync(join(project, 'stream.out')).size).toBe(1024);
    expect(readdirSync(join(project, '.redo/db'))).toEqual(['records.json']);
    expect(readFileSync(join(project, '.redo/db/records.json'), 'utf8')).toBe(record);
    const next = await runCli(project, ['stream.out']);
    expect(next.code).toBe(0);
    expect(next.stderr).toBe('');
    expect(listFiles(project).filter((name) => name.includes('.tmp'))).toEqual([]);
  });

  it('a record that cannot be saved fails the run; after space is freed the target is rebuilt', async () => {
    const project = mount(1024);
    if (project === undefined) return;
    const result = await runCli(project, ['big.out'], { env: { FILL: '1' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('could not save the record of "big.out"');
    expect(result.stderr).toContain('ENOSPC');
    rmSync(join(project, 'filler'));
    const next = await runCli(project, ['big.out']);
    expect(next.code).toBe(0);
    expect(next.stderr).toBe('redo  big.out  (no previous build)\n');
    expect(readFileSync(join(project, '.redo/db/records.json'), 'utf8')).toContain('"big.out"');
    expect((await runCli(project, ['big.out'])).stderr).toBe('');
  });
});

describe('a read-only project', () => {
  it('gives a plain message, not an internal error; a built one still checks as up to date', async () => {
    const rig = useFixture('108-faults');
    let isMounted = false;
    try {
      expect((await rig.run(['gen.out'])).code).toBe(0);
      try {
        execFileSync('mount', ['--bind', rig.dir, rig.dir], { stdio: 'pipe' });
        isMounted = true;
        execFileSync('mount', ['-o', 'remount,bind,ro', rig.dir], { stdio: 'pipe' });
      } catch (error) {
        console.log(`skipped: cannot make a read-only bind mount here (${String(error).split('\n')[0]})`);
        return;
      }
      const fresh = await rig.run(['gen.out']);
      expect(fresh.code).toBe(0);
      expect(fresh.stderr).toBe('');
      const blocked = await rig.run(['plain.out']);
      expect(blocked.code).toBe(1);
      expect(blocked.stderr).not.toContain('internal error');
      expect(blocked.stderr).toContain('hint: the project is on a read-only file system; build a writable copy');
    } finally {
      if (isMounted) execFileSync('umount', [rig.dir]);
      rig.remove();
    }
    const unbuilt = useFixture('108-faults');
    let isUnbuiltMounted = false;
    try {
      execFileSync('mount', ['--bind', unbuilt.dir, unbuilt.dir], { stdio: 'pipe' });
      isUnbuiltMounted = true;
      execFileSync('mount', ['-o', 'remount,bind,ro', unbuilt.dir], { stdio: 'pipe' });
      const result = await unbuilt.run(['gen.out']);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe([
        'redo: ".redo": cannot create the build state folder',
        '  error: EROFS: read-only file system',
        '  hint: the project is on a read-only file system; build a writable copy',
        '',
      ].join('\n'));
    } finally {
      if (isUnbuiltMounted) execFileSync('umount', [unbuilt.dir]);
      unbuilt.remove();
    }
  });
});
