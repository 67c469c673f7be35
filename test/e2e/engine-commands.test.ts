// End-to-end: rules/ lookup, redo-ifcreate, redo-always, redo-stamp, nested redo, -x, help, init's next step.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli, useFixture, type Rig } from '../helpers/rig.js';

describe('106-commands', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = useFixture('106-commands');
  });
  afterAll(() => rig.remove());

  it('a failed bare word that looks like a subcommand says which command was meant', async () => {
    const typo = await rig.run(['sbon']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('hint: "sbon" is not a redo-ts command either; did you mean `redo-ts sbom`?');
    const help = await rig.run(['help']);
    expect(help.code).toBe(1);
    expect(help.stderr).toContain('run `redo-ts --help`');
    const unrelated = await rig.run(['zzzzzz']);
    expect(unrelated.stderr).not.toContain('is not a redo-ts command');
  });

  it('a rule from rules/ runs in the target folder with $1 relative to it', async () => {
    const result = await rig.run(['sub/x.up']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['x.up in sub']);
    expect(rig.read('sub/x.up')).toBe('LOWER\n');
    expect((await rig.run(['whichdo', 'sub/x.up'])).stdout.split('\n').slice(-2)).toEqual(['rules/default.up.do', '']);
  });

  it('redo-ifcreate: the target rebuilds when the file appears', async () => {
    await rig.run(['ifc']);
    expect(rig.read('ifc')).toBe('no\n');
    await rig.run(['ifc']);
    rig.takeRunLog();
    writeFileSync(rig.path('flag'), '');
    const result = await rig.run(['ifc']);
    expect(result.stderr).toBe('redo  ifc  (created: flag)\n');
    expect(rig.read('ifc')).toBe('yes\n');
    rig.takeRunLog();
  });

  it('redo-always reruns the rule every time; identical output stops there', async () => {
    await rig.run(['on-alw']);
    rig.takeRunLog();
    const result = await rig.run(['on-alw']);
    expect(result.stderr).toBe('redo  alw  (always)\n');
    expect(rig.takeRunLog()).toEqual(['alw']);
  });

  it('redo-stamp: dependents rebuild only when the stamped data changes', async () => {
    await rig.run(['user']);
    rig.takeRunLog();
    await rig.run(['user']);
    expect(rig.takeRunLog()).toEqual(['stamped']);
    writeFileSync(rig.path('stamp.in'), 'v2\n');
    await rig.run(['user']);
    expect(rig.takeRunLog()).toEqual(['stamped', 'user']);
  });

  it('redo inside a rule rebuilds its argument even when up to date', async () => {
    const result = await rig.run(['forced']);
    expect(result.code).toBe(0);
    expect(rig.takeRunLog()).toEqual(['x.up in sub', 'forced']);
  });

  it('-x traces sh rules on stderr', async () => {
    const result = await rig.run(['-x', '-f', 'sub/x.up']);
    expect(result.stderr).toContain('+ redo-ifchange x.txt\n');
    rig.takeRunLog();
  });

  it('the libexec commands outside a build fall back to the CLI; rule-only ones refuse (exit 2)', async () => {
    const run = promisify(execFile);
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    await run(`${repoRoot}/libexec/redo-ifchange`, ['sub/x.up'], { cwd: rig.dir, env });
    const refused = await run(`${repoRoot}/libexec/redo-always`, [], { cwd: rig.dir, env }).catch((error: { code: number; stderr: string }) => error);
    expect(refused).toMatchObject({ code: 2 });
    expect((refused as { stderr: string }).stderr).toContain('redo: "redo-always": only works inside a running rule');
  });

  it('--help documents the commands and the exit status table', async () => {
    const result = await rig.run(['--help']);
    expect(result.code).toBe(0);
    for (const word of ['whichdo', 'ood', 'targets', 'sources', 'log', 'explain', 'verify', 'pin', 'pins', 'init', '--shuffle', '-j N', '--why', 'Exit status:', '  3   a rule wrote $1 directly']) {
      expect(result.stdout).toContain(word);
    }
    // Every command's summary starts in one column, the longest name's (ifchange-env) too.
    const commands = result.stdout.split('Commands:\n')[1]!.split('\n\n')[0]!.split('\n');
    expect(commands.map((line) => line.split(' ')[2])).toContain('ifchange-env');
    expect(new Set(commands.map((line) => /^  \S+ +/.exec(line)![0].length)).size).toBe(1);
  });
});

describe('redo-ts init', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-init-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('names the next command as the user started it: npx redo-ts through npx, else redo-ts', async () => {
    for (const [name, npmCommand, next] of [['via-npx', 'exec', 'npx redo-ts'], ['direct', '', 'redo-ts']] as const) {
      const folder = join(scratch, name);
      mkdirSync(folder);
      const result = await runCli(folder, ['init'], { env: { npm_command: npmCommand } });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`\nnext: ${next} image.tar && podman load -i image.tar && podman run --rm localhost/${name}:latest\n`);
    }
  });
});
