// End-to-end: bad input gives a clear message and its own exit code, and loses nothing built.
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useFixture, type Rig } from '../helpers/rig.js';

describe('102-errors: failures, contract violations, cycles, bad state', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = useFixture('102-errors');
  });
  afterAll(() => rig.remove());

  it('a failing rule gives its exit status, the last 10 stderr lines and the chain; exit 1', async () => {
    const result = await rig.run(['top']);
    expect(result.code).toBe(1);
    const message = result.stderr.slice(result.stderr.indexOf('redo: "fail"'));
    expect(message).toBe(
      [
        'redo: "fail": rule "fail.do" exited with status 3',
        '  chain: top → mid → fail',
        '  stderr (last 10 lines):',
        ...Array.from({ length: 10 }, (_, i) => `    fail line ${i + 3}`),
        '  hint: the previous "fail" (if any) is untouched; full stderr: redo-ts log fail',
        '',
      ].join('\n'),
    );
    expect(rig.takeRunLog()).toEqual(['fail']);
    expect(rig.read('top')).toBeUndefined();
    expect(result.stderr).not.toMatch(/at .*\.js/);
  });

  it('redo-ts log shows the whole stderr of the failed build', async () => {
    const result = await rig.run(['log', 'fail']);
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe('fail line 1');
  });

  it('a failed rebuild keeps the previous target untouched', async () => {
    expect((await rig.run(['flaky'])).code).toBe(0);
    expect(rig.read('flaky')).toBe('fine\n');
    writeFileSync(rig.path('flaky.in'), 'bad\n');
    const result = await rig.run(['flaky']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "flaky": rule "flaky.do" exited with status 4');
    expect(rig.read('flaky')).toBe('fine\n');
    writeFileSync(rig.path('flaky.in'), 'good again\n');
    expect((await rig.run(['flaky'])).code).toBe(0);
    expect(rig.read('flaky')).toBe('good again\n');
    rig.takeRunLog();
  });

  it('writing both stdout and $3 is exit 4 and says to use one', async () => {
    const result = await rig.run(['both']);
    expect(result.code).toBe(4);
    expect(result.stderr).toBe(
      [
        'redo: "both": rule "both.do" wrote both $3 and stdout',
        '  chain: both',
        '  stdout: 10 bytes',
        '  hint: write the result to exactly one of them; send messages to stderr (>&2)',
        '',
      ].join('\n'),
    );
    expect(rig.read('both')).toBeUndefined();
  });

  it('writing $1 directly is exit 3 with a hint to write $3', async () => {
    const result = await rig.run(['direct']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('redo: "direct": rule "direct.do" modified $1 directly');
    expect(result.stderr).toContain('hint: write the result to "$3" (or to stdout), never to "$1"');
  });

  it('a cycle is an error that prints the whole chain', async () => {
    const result = await rig.run(['cyc-a']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "cyc-a": dependency cycle\n  chain: cyc-a → cyc-b → cyc-c → cyc-a\n');
  });

  it('NAME.do and NAME.do.ts side by side is exit 5 naming both', async () => {
    const result = await rig.run(['amb']);
    expect(result.code).toBe(5);
    expect(result.stderr).toBe('redo: "amb": two rules match at one step\n  found: amb.do\n  found: amb.do.ts\n  hint: delete or rename one of them\n');
  });

  it('no rule and no file lists every place looked in', async () => {
    const result = await rig.run(['needs-missing']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      [
        'redo: "no-such-source.txt": no rule to build it and no such file',
        '  chain: needs-missing → no-such-source.txt',
        '  looked for:',
        '    no-such-source.txt.do[.ts]',
        '    default.txt.do[.ts]',
        '    default.do[.ts]',
        '  hint: create one of those rules, or the source file itself',
      ].join('\n'),
    );
  });

  it('-k keeps building other targets after a failure; without it the build stops', async () => {
    const kept = await rig.run(['-k', 'fail', 'good']);
    expect(kept.code).toBe(1);
    expect(rig.takeRunLog()).toEqual(['fail', 'good']);
    expect(rig.read('good')).toBe('good\n');
  });

  it('a target outside the project and a bad option are usage errors (exit 2)', async () => {
    const outside = await rig.run(['../elsewhere']);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/^redo: "\.\.\/elsewhere": target is outside the project\n/);
    const option = await rig.run(['--frobnicate']);
    expect(option).toEqual({ code: 2, stdout: '', stderr: 'redo: "--frobnicate": unknown option\n  hint: see redo-ts --help\n' });
  });

  it('a deleted source makes its dependents rebuild and fail with "no rule"', async () => {
    mkdirSync(rig.path('d'), { recursive: true });
    writeFileSync(rig.path('d/src.txt'), 'x\n');
    writeFileSync(rig.path('d/copy.do'), 'redo-ifchange src.txt\ncat src.txt\n');
    expect((await rig.run(['d/copy'])).code).toBe(0);
    rig.takeRunLog();
    writeFileSync(rig.path('d/src.txt'), '');
    const { rmSync } = await import('node:fs');
    rmSync(rig.path('d/src.txt'));
    const result = await rig.run(['d/copy']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "d/src.txt": no rule to build it and no such file');
    expect(rig.read('d/copy')).toBe('x\n');
  });

  it('a corrupt record names the file to delete (exit 6); a too-new state says to upgrade or delete', async () => {
    writeFileSync(rig.path('.redo/db/records.json'), '{ not json');
    const corrupt = await rig.run(['good']);
    expect(corrupt.code).toBe(6);
    expect(corrupt.stderr).toBe(
      [
        'redo: ".redo/db/records.json": state file is unreadable',
        '  found: not valid JSON',
        '  wanted: redo-ts state version 2',
        '  hint: delete .redo/ and every file redo-ts built (for instance with `git clean -X` if they are ignored), then run again',
        '',
      ].join('\n'),
    );
    expect(rig.read('good')).toBe('good\n');
    writeFileSync(rig.path('.redo/VERSION'), 'redo-ts state 99\n');
    const tooNew = await rig.run(['good']);
    expect(tooNew.code).toBe(6);
    expect(tooNew.stderr).toBe(
      [
        'redo: ".redo": state was written by a newer redo-ts',
        '  found: version 99',
        '  wanted: version 2 or older',
        '  hint: upgrade redo-ts, or delete .redo/ and the files it built, then run again',
        '',
      ].join('\n'),
    );
  });
});
