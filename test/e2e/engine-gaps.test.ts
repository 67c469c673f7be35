// End-to-end: the last redo gaps of issue 17 (stale builds, dead engines, nested stderr,
// folder targets, rules above the root, umask of stdout targets, missing rules).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, type RigResult } from '../helpers/rig.js';

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
