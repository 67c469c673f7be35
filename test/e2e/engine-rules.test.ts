// End-to-end: TypeScript rules mixed with sh rules, and names with spaces, quotes and non-ASCII.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useFixture, type Rig } from '../helpers/rig.js';

describe('103-ts-rules: .do.ts rules with ctx.ifchange and zx $, depending on sh rules and back', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = useFixture('103-ts-rules');
  });
  afterAll(() => rig.remove());

  it('builds a chain TS → sh → TS, with ctx.log in the output', async () => {
    const result = await rig.run(['all']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['hello.txt', 'shout', 'shout.len', 'all']);
    expect(rig.read('hello.txt')).toBe('hello world\n');
    expect(rig.read('shout')).toBe('HELLO WORLD\n');
    expect(rig.read('shout.len')).toBe('12\n');
    expect(result.stderr).toBe(
      [
        'redo  hello.txt  (no previous build)',
        'redo  shout  (no previous build)',
        'measuring shout',
        'redo  shout.len  (no previous build)',
        'redo  all  (no previous build) [no output]',
        '',
      ].join('\n'),
    );
  });

  it('records dependencies declared by TS rules: nothing runs again, a change reruns the chain', async () => {
    expect((await rig.run(['all'])).stderr).toBe('');
    expect(rig.takeRunLog()).toEqual([]);
    writeFileSync(rig.path('name.txt'), 'mars\n');
    expect((await rig.run(['all'])).code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['hello.txt', 'shout', 'shout.len', 'all']);
    expect(rig.read('shout')).toBe('HELLO MARS\n');
  });

  it('ctx.outputSha256: the hash a writer gives is taken unless the output changed after it (then the file is hashed)', async () => {
    // First build: the rule declares sha256("x"), then appends "y". The record must say "xy".
    writeFileSync(rig.path('declared.mode'), 'append\n');
    expect((await rig.run(['declared.user'])).code).toBe(0);
    expect(rig.read('declared.out')).toBe('xy');
    expect(rig.takeRunLog()).toEqual(['declared.user']);
    // Rebuilt writing "xy" at once and declaring its hash: the same identity as recorded,
    // so its user does not run again (it would, had the first build recorded "x").
    writeFileSync(rig.path('declared.mode'), 'direct\n');
    const again = await rig.run(['declared.user']);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('redo  declared.out  (changed: declared.mode)\n');
    expect(rig.takeRunLog()).toEqual([]);
    // And a declared hash is believed: going back to append (same bytes) changes nothing either.
    writeFileSync(rig.path('declared.mode'), 'append\n');
    expect((await rig.run(['declared.user'])).stderr).toBe('redo  declared.out  (changed: declared.mode)\n');
    expect(rig.takeRunLog()).toEqual([]);
  });

  it('ctx.takePreviousOutput: the previous output only when unchanged since written; a failure after taking it leaves no target', async () => {
    writeFileSync(rig.path('grown.in'), 'a\n');
    expect((await rig.run(['grown.out'])).code).toBe(0);
    expect(rig.read('grown.out')).toBe('fresh\na\n');
    // Handed over (renamed to the temporary output) and appended to.
    writeFileSync(rig.path('grown.in'), 'b\n');
    expect((await rig.run(['grown.out'])).code).toBe(0);
    expect(rig.read('grown.out')).toBe('fresh\na\nb\n');
    // Edited by hand with its size and mtime put back: only the ctime tells, and it is not handed over.
    const reference = rig.path('grown.reference');
    expect(spawnSync('cp', ['-p', rig.path('grown.out'), reference]).status).toBe(0);
    writeFileSync(rig.path('grown.out'), 'FRESH\na\nb\n');
    expect(spawnSync('touch', ['-r', reference, rig.path('grown.out')]).status).toBe(0);
    writeFileSync(rig.path('grown.in'), 'c\n');
    expect((await rig.run(['-f', 'grown.out'])).code).toBe(0);
    expect(rig.read('grown.out')).toBe('fresh\nc\n');
    // A rule that fails after taking it: no target (not the old bytes), and the next run builds it again.
    writeFileSync(rig.path('grown.in'), 'fail\n');
    const failed = await rig.run(['grown.out']);
    expect(failed.code).toBe(1);
    expect(existsSync(rig.path('grown.out'))).toBe(false);
    writeFileSync(rig.path('grown.in'), 'd\n');
    expect((await rig.run(['grown.out'])).code).toBe(0);
    expect(rig.read('grown.out')).toBe('fresh\nd\n');
  });

  it('a TS rule that throws fails with its message, its log and its own stack frame', async () => {
    const result = await rig.run(['boom']);
    expect(result.code).toBe(1);
    // The frame names the rule's own file and line; the function's name is the compiler's.
    expect(result.stderr.replace(/^ {4}at [\w$]+ \(boom\.do\.ts:/m, '    at default (boom.do.ts:')).toBe(
      [
        'about to fail',
        'redo: "boom": rule "boom.do.ts" threw: cannot build boom',
        '  chain: boom',
        '  stderr (last 2 lines):',
        '    about to fail',
        '    at default (boom.do.ts:5:9)',
        '  hint: the previous "boom" (if any) is untouched; full stderr: redo-ts log boom',
        '',
      ].join('\n'),
    );
  });
});

describe('104-names: spaces, quotes and non-ASCII in target and source names', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = useFixture('104-names');
  });
  afterAll(() => rig.remove());

  it('passes every name intact through $1/$2, redo-ifchange and the state', async () => {
    const result = await rig.run(['all']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['my file.out', 'it\'s "q".out', 'héllo wörld.out']);
    expect(rig.read('my file.out')).toBe('one\n');
    expect(rig.read('it\'s "q".out')).toBe('two\n');
    expect(rig.read('héllo wörld.out')).toBe('three\n');
    expect((await rig.run(['all'])).stderr).toBe('');
    writeFileSync(rig.path('héllo wörld.in'), 'drei\n');
    const again = await rig.run(['all']);
    expect(again.stderr).toBe('redo  héllo wörld.out  (changed: héllo wörld.in)\nredo  all  (changed: héllo wörld.out) [no output]\n');
    expect(rig.takeRunLog()).toEqual(['héllo wörld.out']);
    expect((await rig.run(['targets'])).stdout).toBe('héllo wörld.out\nit\'s "q".out\nmy file.out\n');
  });
});
