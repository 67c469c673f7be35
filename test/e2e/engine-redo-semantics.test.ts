// End-to-end: redo's documented semantics (apenwarr/redo docs) on ordinary redo projects.
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useFixture, type Rig } from '../helpers/rig.js';

describe('108-redo-semantics', () => {
  let rig: Rig;
  let outside: string;
  beforeAll(() => {
    rig = useFixture('108-redo-semantics');
    outside = mkdtempSync(join(tmpdir(), 'redo-ts-outside-'));
  });
  afterAll(() => {
    rig.remove();
    rmSync(outside, { recursive: true, force: true });
  });

  it('names resolve against the caller folder: cd sub && redo-ifchange x builds sub/x', async () => {
    const result = await rig.run(['cdsub']);
    expect(result.stderr).not.toContain('redo: "');
    expect(result.code).toBe(0);
    expect(rig.read('cdsub')).toBe('x-in-sub\n');
    expect(rig.takeRunLog()).toEqual(['sub/x']);
  });

  it('redo-ifcreate, redo-whichdo and redo-targets in a rule resolve against its current folder', async () => {
    const result = await rig.run(['insub']);
    expect(result.code).toBe(0);
    const lines = (rig.read('insub') ?? '').split('\n');
    expect(lines[0]).toBe('x.do');
    expect(lines).toContain('x');
    expect(lines).not.toContain('sub/x');
    expect((await rig.run(['insub'])).stderr).toBe('');
    writeFileSync(rig.path('sub/flag'), '');
    expect((await rig.run(['insub'])).stderr).toContain('redo  insub  (created: sub/flag)');
    rig.takeRunLog();
  });

  it('cd .. && redo-ifchange dir/y from a rule in dir/ means dir/y', async () => {
    const result = await rig.run(['dir/up']);
    expect(result.code).toBe(0);
    expect(rig.read('dir/up')).toBe('y\n');
    expect(existsSync(rig.path('dir/dir'))).toBe(false);
  });

  it('paths through a symlinked folder resolve as the OS does', async () => {
    symlinkSync('real/deep', rig.path('link'));
    const result = await rig.run(['vialink']);
    expect(result.stderr).not.toContain('redo: "');
    expect(result.code).toBe(0);
    expect(rig.read('vialink')).toBe('sib\n');
    expect(rig.read('real/sib')).toBe('sib\n');
  });

  it('a folder linked to itself: names resolve physically, .. leaves it, outside files are sources', async () => {
    mkdirSync(rig.path('loop'));
    writeFileSync(rig.path('loop/static'), '');
    symlinkSync('.', rig.path('loop/x'));
    const result = await rig.run(['sympath']);
    expect(result.code).toBe(0);
    expect(rig.read('sympath')).toBe('ok\n');
    expect(rig.read('loop/1.dyn')).toBe('dynamic\n');
    expect(rig.read('2.dyn')).toBe('dynamic\n');
    expect((await rig.run(['sources', 'sympath'])).stdout).toContain('loop/static\n');
  });

  it('a target deleted after it was built in this run is built again when asked for', async () => {
    const result = await rig.run(['regen']);
    expect(result.code).toBe(0);
    expect(rig.read('regen')).toBe('dynamic\n');
  });

  it("a parent's NAME.do does not build d/NAME; redo-whichdo prints redo's candidate list", async () => {
    const refused = await rig.run(['d/snork']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('redo: "d/snork": no rule to build it and no such file');
    const which = await rig.run(['whichdo', 'x/y/a.b.o']);
    expect(which.code).toBe(1);
    // Then the folders above the root, up to '/', as redo-whichdo.md lists them.
    const above: string[] = [];
    for (let up = '../', depth = 1; depth < rig.dir.split('/').length; up += '../', depth += 1) {
      above.push(`${up}default.b.o.do`, `${up}default.o.do`, `${up}default.do`);
    }
    expect(which.stdout).toBe(
      ['x/y/a.b.o.do', 'x/y/default.b.o.do', 'x/y/default.o.do', 'x/y/default.do', 'x/default.b.o.do', 'x/default.o.do', 'x/default.do', 'default.b.o.do', 'default.o.do', 'default.do', ...above, ''].join('\n'),
    );
    const found = await rig.run(['whichdo', 'z.out'], { cwd: 'd' });
    expect(found.stdout).toBe(['z.out.do', 'default.out.do', 'default.do', '../default.out.do', ''].join('\n'));
    expect(found.code).toBe(0);
  });

  it('a source outside the project is recorded by content', async () => {
    const file = join(outside, 'header.h');
    writeFileSync(file, 'one\n');
    const env = { OUTSIDE_FILE: file };
    const first = await rig.run(['outside'], { env });
    expect(first.stderr).not.toContain('redo: "');
    expect(first.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['outside']);
    await rig.run(['outside'], { env });
    expect(rig.takeRunLog()).toEqual([]);
    writeFileSync(file, 'two\n');
    const changed = await rig.run(['outside'], { env });
    expect(changed.stderr).toContain(`(changed: ${file})`);
    expect(rig.read('outside')).toBe('two\n');
    expect(rig.takeRunLog()).toEqual(['outside']);
  });

  it('a C program with gcc -MD output: system headers are sources; a header edit rebuilds', async () => {
    const first = await rig.run(['c/hello']);
    expect(first.stderr).not.toContain('redo: "');
    expect(first.code).toBe(0);
    rig.takeRunLog();
    expect((await rig.run(['c/hello'])).stderr).toBe('');
    writeFileSync(rig.path('c/greeting.h'), '#define GREETING "hi"\n');
    const changed = await rig.run(['c/hello']);
    expect(changed.stderr).toContain('redo  c/hello.o  (changed: c/greeting.h)');
    expect(rig.takeRunLog()).toEqual(['hello']);
    expect((await rig.run(['sources', 'c/hello'])).stdout).toContain('/usr/include/stdio.h\n');
    const ood = await rig.run(['ood']);
    expect(ood.code).toBe(0);
    expect(ood.stdout).not.toContain('c/hello');
    expect((await rig.run(['--why', 'c/hello'])).code).toBe(0);
  });

  it('redo X always rebuilds X, also when already built in the same run', async () => {
    const result = await rig.run(['twice']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['counted', 'counted', 'counted']);
  });

  it('-f on a file redo-ts never built refuses and leaves it alone', async () => {
    const result = await rig.run(['-f', 'notes.txt']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "notes.txt": exists and was not built by redo-ts; not rebuilding a source');
    expect(result.stderr).toContain('delete it (or move it aside), then run `redo-ts notes.txt`');
    expect(rig.read('notes.txt')).toBe('hand-written source\n');
    const folder = await rig.run(['-f', 'keep.dir']);
    expect(folder.code).toBe(1);
    expect(rig.read('keep.dir/file')).toBe('precious\n');
    const redo = await rig.run(['redo', 'notes.txt']);
    expect(redo.code).toBe(1);
    expect(rig.read('notes.txt')).toBe('hand-written source\n');
  });

  it('a file a rule could build but redo-ts never built is a source, said once', async () => {
    const result = await rig.run(['uses-stale']);
    expect(result.code).toBe(0);
    expect(rig.read('uses-stale')).toBe('copied in, stale\n');
    const warning = 'redo: "stale.out": exists and was not built by redo-ts; treating it as a source';
    expect(result.stderr.split(warning).length - 1).toBe(1);
    expect(rig.takeRunLog()).toEqual([]);
  });

  it('a tolerated failure is printed once and does not fail the build', async () => {
    const result = await rig.run(['tolerant', 'other']);
    expect(result.code).toBe(0);
    expect(rig.read('tolerant')).toBe('tolerant\n');
    expect(rig.read('other')).toBe('other\n');
    expect(result.stderr.split('redo: "bad": rule "bad.do" exited with status 1').length - 1).toBe(2);
    expect(result.stderr).not.toContain('earlier failure');
  });

  it('a target that failed earlier in the run and was then made by hand is a source', async () => {
    const result = await rig.run(['failthenhand']);
    expect(result.code).toBe(0);
    expect(rig.read('failthenhand')).toBe('by-hand\n');
  });

  it('a rule that tolerates a failure and then fails for its own reason is reported', async () => {
    const result = await rig.run(['selffail']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "selffail": rule "selffail.do" exited with status 3');
    expect(result.stderr).toContain('selffail: my own problem');
  });

  it('a rule inherits the environment and umask of the rule that called for it', async () => {
    const result = await rig.run(['envcall', 'umaskcall']);
    expect(result.code).toBe(0);
    expect(rig.read('envcall')).toBe('prefix=/x\n');
    expect(rig.read('umaskcall')).toBe('0077\n');
  });

  it('redo x 2>log puts the stderr of x in log', async () => {
    const result = await rig.run(['errcall']);
    expect(result.code).toBe(0);
    expect(rig.read('captured.log')).toBe('errsay: to stderr\n');
    expect(result.stderr).not.toContain('errsay: to stderr');
  });

  it('a #! first line picks the interpreter; without one, sh -e', async () => {
    const result = await rig.run(['shebang', 'node']);
    expect(result.code).toBe(0);
    expect(rig.read('shebang')).toBe('went on\n');
    expect(rig.read('node')).toBe('from node node\n');
    const strict = await rig.run(['noshebang']);
    expect(strict.code).toBe(1);
    expect(rig.read('noshebang')).toBeUndefined();
  });

  it('a rule may build a folder at $3; dependents see its content; removing the old $1 is allowed', async () => {
    const first = await rig.run(['usefolder']);
    expect(first.stderr).not.toContain('redo: "');
    expect(first.code).toBe(0);
    expect(rig.read('usefolder')).toBe('one\nb\n');
    expect(rig.takeRunLog()).toEqual(['folder', 'usefolder']);
    writeFileSync(rig.path('folder.in'), 'two\n');
    expect((await rig.run(['usefolder'])).code).toBe(0);
    expect(rig.read('usefolder')).toBe('two\nb\n');
    expect(rig.takeRunLog()).toEqual(['folder', 'usefolder']);
    expect((await rig.run(['-f', 'folder'])).code).toBe(0);
    expect((await rig.run(['usefolder'])).code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['folder']);
    expect((await rig.run(['rmold'])).code).toBe(0);
    const again = await rig.run(['-f', 'rmold']);
    expect(again.stderr).not.toContain('modified $1');
    expect(again.code).toBe(0);
    expect(rig.read('rmold')).toBe('new\n');
  });

  it('a symlink written at $3 becomes the target, even a dangling one', async () => {
    const result = await rig.run(['symout']);
    expect(result.code).toBe(0);
    expect(readlinkSync(rig.path('symout'))).toBe('nowhere');
  });

  it('a nested redo-ifchange -j3 runs three rules at once under redo-ts -j1 (its own budget)', async () => {
    const result = await rig.run(['-j1', 'nestedj']);
    expect(result.code).toBe(0);
    expect(rig.read('nestedj')).toBe('together\ntogether\ntogether\n');
  });

  it('a nested redo -j1 runs its subtree one rule at a time under redo-ts -j3', async () => {
    const result = await rig.run(['-j3', 'serialj']);
    expect(result.code).toBe(0);
    expect(rig.read('serialj')).toBe('alone\nalone\nalone\n');
  });

  it('nested -x traces the rules it starts; nested -k keeps going after a failure', async () => {
    const traced = await rig.run(['xcall']);
    expect(traced.code).toBe(0);
    expect(traced.stderr).toContain('+ echo traced-command');
    const stop = await rig.run(['-j1', 'nok']);
    expect(stop.code).toBe(0);
    expect(rig.read('nok')).toBe('skipped\n');
    const keep = await rig.run(['-j1', 'withk']);
    expect(keep.code).toBe(0);
    expect(rig.read('withk')).toBe('built\n');
  });

  it('--shuffle starts independent targets in random order', async () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((n) => `${n}.order`);
    const orders = new Set<string>();
    for (let i = 0; i < 4; i += 1) {
      rmSync(rig.path('order.log'), { force: true });
      expect((await rig.run(['-j1', '-f', '--shuffle', ...names])).code).toBe(0);
      orders.add(rig.read('order.log') ?? '');
      if (i === 0) expect((rig.read('order.log') ?? '').split('\n').filter((l) => l !== '').sort()).toEqual(names.map((n) => n.slice(0, 1)));
    }
    expect(orders.size).toBeGreaterThan(1);
  });
});
