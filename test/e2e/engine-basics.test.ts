// End-to-end: incremental builds of the 101-basics fixture with the built CLI.
import { appendFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useFixture, type Rig } from '../helpers/rig.js';

describe('101-basics: build, rebuild nothing, rebuild exactly what changed', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = useFixture('101-basics');
  });
  afterAll(() => rig.remove());

  it('first build runs every rule once, in dependency order', async () => {
    const result = await rig.run(['all']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['upper', 'shout', 'sub/letters.count', 'all']);
    expect(rig.read('upper')).toBe('HELLO\n');
    expect(rig.read('shout')).toBe('HELLO!\n');
    expect(rig.read('sub/letters.count')).toBe('4\n');
    expect(rig.read('all')).toBeUndefined();
    expect(result.stderr).toBe(
      [
        'redo  upper  (no previous build)',
        'redo  shout  (no previous build)',
        'redo  sub/letters.count  (no previous build)',
        'redo  all  (no previous build) [no output]',
        '',
      ].join('\n'),
    );
  });

  it('a second build with nothing changed runs no rule and prints nothing', async () => {
    const result = await rig.run(['all']);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(rig.takeRunLog()).toEqual([]);
  });

  it('touching a source without changing it rebuilds nothing', async () => {
    const later = new Date(Date.now() + 5000);
    utimesSync(rig.path('greeting.txt'), later, later);
    const result = await rig.run(['all']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual([]);
  });

  it('a rebuilt target with identical output does not rebuild its dependents (early cutoff)', async () => {
    writeFileSync(rig.path('greeting.txt'), 'Hello\n');
    const result = await rig.run(['all']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['upper']);
    expect(result.stderr).toBe('redo  upper  (changed: greeting.txt)\n');
  });

  it('changing a source rebuilds exactly its dependents and says why', async () => {
    writeFileSync(rig.path('greeting.txt'), 'bye\n');
    const result = await rig.run(['all']);
    expect(rig.takeRunLog()).toEqual(['upper', 'shout', 'all']);
    expect(result.stderr).toBe(
      ['redo  upper  (changed: greeting.txt)', 'redo  shout  (changed: upper)', 'redo  all  (changed: shout) [no output]', ''].join('\n'),
    );
    expect(rig.read('shout')).toBe('BYE!\n');
  });

  it('the rule file is a dependency of its target', async () => {
    appendFileSync(rig.path('default.count.do'), '# edited\n');
    const result = await rig.run(['all']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['sub/letters.count']);
  });

  it('a more specific rule that appears later makes the target rebuild', async () => {
    writeFileSync(rig.path('sub/default.count.do'), 'redo-ifchange "$2.txt"\necho "sub:$1" >> "$REDO_ROOT/run.log"\necho 99\n');
    const why = await rig.run(['--why', 'sub/letters.count']);
    expect(why.stdout).toBe('sub/letters.count: would rebuild (rule appeared: sub/default.count.do)\n');
    const result = await rig.run(['all']);
    expect(rig.takeRunLog()).toEqual(['sub:letters.count', 'all']);
    expect(result.stderr).toContain('redo  sub/letters.count  (rule appeared: sub/default.count.do)');
    expect(rig.read('sub/letters.count')).toBe('99\n');
  });

  it('-f rebuilds the named target even when it is up to date', async () => {
    const result = await rig.run(['-f', 'upper']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['upper']);
    expect(result.stderr).toBe('redo  upper  (forced)\n');
    const again = await rig.run(['redo', 'upper']);
    expect(again.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['upper']);
  });

  it('a target edited by hand is not overwritten: warn and skip until deleted or forced', async () => {
    writeFileSync(rig.path('greeting.txt'), 'again\n');
    writeFileSync(rig.path('upper'), 'MY EDIT\n');
    const result = await rig.run(['all']);
    expect(result.code).toBe(0);
    expect(rig.read('upper')).toBe('MY EDIT\n');
    expect(result.stderr).toContain('warning: redo: "upper": modified since redo-ts built it; not rebuilding');
    expect(result.stderr).toContain('hint: delete "upper" or run `redo-ts -f upper` to rebuild it');
    expect(rig.takeRunLog()).toEqual(['shout', 'all']);
    rmSync(rig.path('upper'));
    const rebuilt = await rig.run(['all']);
    expect(rebuilt.code).toBe(0);
    expect(rig.read('upper')).toBe('AGAIN\n');
    expect(rig.takeRunLog()).toEqual(['upper', 'shout', 'all']);
  });

  it('--why explains a rebuild with the old and new hash', async () => {
    writeFileSync(rig.path('greeting.txt'), 'why\n');
    const result = await rig.run(['--why', 'shout']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^shout: would rebuild if upper changes when rebuilt\n {2}upper: would rebuild \(changed: greeting\.txt\)\n {4}old: sha256:[0-9a-f]{64}\n {4}new: sha256:[0-9a-f]{64}\n$/,
    );
    expect(rig.takeRunLog()).toEqual([]);
  });

  it('ood, targets, sources, whichdo and log answer from the recorded state', async () => {
    expect((await rig.run(['ood'])).stdout).toBe('all\nshout\nupper\n');
    await rig.run(['all']);
    rig.takeRunLog();
    expect((await rig.run(['ood'])).stdout).toBe('');
    expect((await rig.run(['targets'])).stdout).toBe('shout\nsub/letters.count\nupper\n');
    expect((await rig.run(['sources'])).stdout).toBe(
      'all.do\ngreeting.txt\nshout.do\nsub/default.count.do\nsub/letters.txt\nupper.do\n',
    );
    expect((await rig.run(['sources', 'shout'])).stdout).toBe('greeting.txt\nshout.do\nupper.do\n');
    const whichdo = await rig.run(['whichdo', 'sub/x.count']);
    expect(whichdo).toEqual({ code: 0, stderr: '', stdout: 'sub/x.count.do\nsub/default.count.do\n' });
    const none = await rig.run(['whichdo', 'nothing.here']);
    expect(none.code).toBe(1);
    expect(none.stdout.split('\n')).toContain('default.here.do');
    expect((await rig.run(['log', 'upper'])).code).toBe(0);
  });
});
