// TypeScript rules are compiled once (issue 20, start-up): a build whose rule and the files
// it imports are unchanged imports the module compiled last time and never starts esbuild;
// an edit of the rule, or of a file it imports, compiles it again. esbuild starts are
// counted with strace on the built CLI (an execve of its binary).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasTool } from '../helpers/clients.js';
import { cliEnvironment, repoRoot } from '../helpers/rig.js';

const describeIf = hasTool('strace') ? describe : describe.skip;
if (!hasTool('strace')) console.warn('TS rule compile test skipped: strace not installed (.ci/run installs it)');

describeIf('a compiled TypeScript rule is reused while its files are unchanged', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'redo-ts-compile-'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
    writeFileSync(join(dir, 'word.ts'), "export const word = 'hello';\n");
    writeFileSync(
      join(dir, 'out.txt.do.ts'),
      [
        "import { readFile, writeFile } from 'node:fs/promises';",
        "import type { RuleContext } from 'redo-ts';",
        "import { word } from './word.js';",
        '',
        'export default async function (ctx: RuleContext): Promise<void> {',
        "  await ctx.ifchange('in.txt');",
        "  await writeFile(ctx.output, `${word} ${(await readFile(`${ctx.dir}/in.txt`, 'utf8')).trim()}\\n`);",
        '}',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'in.txt'), 'one\n');
  });
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Builds out.txt under strace; returns the exit status and how many times esbuild's binary was started. */
  const build = (): { status: number | null; stderr: string; esbuildStarts: number } => {
    const trace = join(dir, '.trace');
    const result = spawnSync('strace', ['-f', '-qq', '-e', 'trace=execve', '-o', trace, process.execPath, join(repoRoot, 'bin', 'redo-ts.js'), 'out.txt'], { cwd: dir, env: cliEnvironment(), encoding: 'utf8' });
    const starts = readFileSync(trace, "utf8").split("\n").filter((line) => line.includes("execve(") && line.includes("esbuild") && !line.includes("ENOENT")).length;
    rmSync(trace, { force: true });
    return { status: result.status, stderr: result.stderr, esbuildStarts: starts };
  };

  it('compiles on the first build, not after an edit of an input, again after an edit of the rule or its import', () => {
    const first = build();
    expect(first.status, first.stderr).toBe(0);
    expect(first.esbuildStarts).toBe(1);
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('hello one\n');

    writeFileSync(join(dir, 'in.txt'), 'two\n');
    const second = build();
    expect(second.status, second.stderr).toBe(0);
    expect(second.esbuildStarts).toBe(0);
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('hello two\n');

    // The engine does not track a rule's imports, so the input changes too: the rule runs,
    // and must not run the module compiled before its import changed.
    writeFileSync(join(dir, 'word.ts'), "export const word = 'howdy';\n");
    writeFileSync(join(dir, 'in.txt'), 'three\n');
    const third = build();
    expect(third.status, third.stderr).toBe(0);
    expect(third.esbuildStarts).toBe(1);
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('howdy three\n');
  });
});
