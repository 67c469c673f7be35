// End-to-end: a sh rule's exit status reaches the engine whatever the rule does with its
// shell (its own EXIT trap, exec, a run longer than the engine's liveness checks).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasStrace, traced } from '../helpers/exec-trace.js';
import { runCli, useFixture, type Rig } from '../helpers/rig.js';

describe('107-rule-shells: rules that trap EXIT or exec', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = useFixture('107-rule-shells');
  });
  afterAll(() => rig.remove());

  it('a rule with its own EXIT trap that runs for seconds succeeds', async () => {
    const result = await rig.run(['trap']);
    expect(result.stderr).not.toContain('status 137');
    expect(result.code).toBe(0);
    expect(rig.read('trap')).toBe('trapped\n');
    expect(rig.takeRunLog()).toEqual(['trap']);
  });

  it('a failing rule with its own EXIT trap reports its own status', async () => {
    const result = await rig.run(['trap-fail']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "trap-fail": rule "trap-fail.do" exited with status 4');
    expect(result.stderr).toContain('cleaning up');
  });

  it('a rule that execs another program writes its output through it', async () => {
    const result = await rig.run(['exec']);
    expect(result.code, result.stderr).toBe(0);
    expect(rig.read('exec')).toBe('from exec\n');
  });

  it('a TypeScript rule whose ctx.$ command fails reports that status and its stderr', async () => {
    const result = await rig.run(['zxfail']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      [
        'redo: "zxfail": rule "zxfail.do.ts" ran a command (ctx.$) that exited with status 3',
        '  chain: zxfail',
        '  stderr (last line):',
        '    the detail that explains it',
        '  hint: the previous "zxfail" (if any) is untouched; full stderr: redo-ts log zxfail',
        '',
      ].join('\n'),
    );
  });

  it('-v echoes a sh rule as it is read, -x traces its commands', async () => {
    const verbose = await rig.run(['-f', '-v', 'exec']);
    expect(verbose.code, verbose.stderr).toBe(0);
    expect(verbose.stderr).toContain("exec printf 'from exec\\n'\n");
    const xtraced = await rig.run(['-f', '-x', 'exec']);
    expect(xtraced.code, xtraced.stderr).toBe(0);
    expect(xtraced.stderr).toContain("+ exec printf from exec\\n\n");
    expect(xtraced.stderr).not.toContain("exec printf 'from exec");
  });
});


describe('plain sh rules sourced by a subshell of the spawner', () => {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const project = (files: Record<string, string>): string => {
    const dir = mkdtempSync(join(tmpdir(), 'redo-ts-shells-'));
    made.push(dir);
    writeFileSync(join(dir, '.git'), '');
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    return dir;
  };

  it.skipIf(!hasStrace)('a build of plain rules execs sh once (the spawner), not once per rule', () => {
    const dir = project({
      'all.do': 'redo-ifchange a b c\ncat a b c > "$3"\n',
      'default.do': 'echo "$2" > "$3"\n',
    });
    const result = traced(dir, 'execve', ['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(dir, 'all'), 'utf8')).toBe('a\nb\nc\n');
    const shells = result.lines.filter((line) => /execve\("[^"]*\/(sh|dash)".* = 0$/.test(line));
    expect(shells.map((line) => basename(/execve\("([^"]+)"/.exec(line)![1]!))).toEqual(['sh']);
  });

  it.skipIf(!hasStrace)('a redo-ifchange call in a plain rule reads neither redo-call.sh nor /proc/self/stat, and a rule costs three forks', () => {
    const dir = project({
      'all.do': 'redo-ifchange a b c\ncat a b c > "$3"\n',
      'default.do': 'redo-ifchange "$2.src"\ncat "$2.src" > "$3"\n',
      'a.src': 'a\n',
      'b.src': 'b\n',
      'c.src': 'c\n',
    });
    const result = traced(dir, 'openat,clone,vfork', ['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(dir, 'all'), 'utf8')).toBe('a\nb\nc\n');
    const { lines } = result;
    // Once, when the spawner starts (the function is defined then, and forked with each rule).
    expect(lines.filter((line) => line.includes('/redo-call.sh"')).length).toBe(1);
    expect(lines.filter((line) => line.includes('"/proc/self/stat"'))).toEqual([]);
    // Per rule (4): the spawner's job, the redo-ifchange client, cat; before, also the rule's own subshell.
    const engine = lines[0]!.split(' ')[0];
    expect(lines.filter((line) => !line.startsWith(`${engine} `) && /^\d+ +(clone|vfork)\(/.test(line)).length).toBe(12);
  });

  it.skipIf(!hasStrace)("the engine reads a call's environment file only when the call starts a rule, and removes every one", () => {
    const dir = project({
      'all.do': 'export FROM_ALL=yes\nredo-ifchange a b\ncat a b > "$3"\n',
      'default.do': 'redo-ifchange "$2.src"\n{ cat "$2.src"; echo "$FROM_ALL"; } > "$3"\n',
      'a.src': 'a\n',
      'b.src': 'b\n',
    });
    const result = traced(dir, 'openat,unlink', ['all']);
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(dir, 'all'), 'utf8')).toBe('a\nyes\nb\nyes\n');
    const { lines } = result;
    const engine = lines[0]!.split(' ')[0];
    const ofEngine = lines.filter((line) => line.startsWith(`${engine} `));
    // all's call starts two rules; a's and b's calls name sources only (before: three reads).
    expect(ofEngine.filter((line) => /openat\(.*\/v\.\d+", O_RDONLY/.test(line)).length).toBe(1);
    expect(ofEngine.filter((line) => /unlink\(".*\/v\.\d+"\) = 0/.test(line)).length).toBe(3);
  });

  it("sees none of the spawner's variables; exit, set -e, umask, cwd and exported variables behave as in sh -e", async () => {
    const dir = project({
      'vars.do': 'for v in redo_line redo_id redo_run_dir redo_rule_c redo_spawner redo_started; do eval "echo $v=\\${$v-unset}"; done > "$3"\n',
      'status.do': 'echo before >&2\n(exit 5)\necho never >&2\n',
      'exits.do': 'exit 6\n',
      'where.do': 'export FROM_CALLER=yes\ncd sub && redo-ifchange probe\n',
      'sub/probe.do': 'umask 0077\n{ pwd; umask; echo "$FROM_CALLER"; } > "$3"\n',
    });
    const vars = await runCli(dir, ['vars']);
    expect(vars.code, vars.stderr).toBe(0);
    expect(readFileSync(join(dir, 'vars'), 'utf8')).toBe('redo_line=unset\nredo_id=unset\nredo_run_dir=unset\nredo_rule_c=unset\nredo_spawner=unset\nredo_started=unset\n');
    const status = await runCli(dir, ['status']);
    expect(status.stderr).toContain('rule "status.do" exited with status 5');
    expect(status.stderr).not.toContain('never');
    const exits = await runCli(dir, ['exits']);
    expect(exits.stderr).toContain('rule "exits.do" exited with status 6');
    const where = await runCli(dir, ['where']);
    expect(where.code, where.stderr).toBe(0);
    expect(readFileSync(join(dir, 'sub', 'probe'), 'utf8')).toBe(`${join(dir, 'sub')}\n0077\nyes\n`);
  });

  it('an error names the rule file and line after "sh"', async () => {
    const dir = project({ 'bad.do': 'true\nnosuchcommand-here\n' });
    const result = await runCli(dir, ['bad']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('sh: 2: ./bad.do: nosuchcommand-here: not found');
  });

  it('a redo-ifchange call from a symlinked folder keeps its $PWD, and one from a folder the rule deleted works', async () => {
    const dir = project({
      'real/top.txt.do': 'echo top > "$3"\n',
      'real/deep/sib.txt.do': 'echo sib > "$3"\n',
      // From link (-> real/deep), ../top.txt is real/top.txt, as `cat ../top.txt` there reads.
      'linked.do': 'ln -sfn real/deep link\nhere=$PWD\ncd link\nredo-ifchange ../top.txt sib.txt\necho "$PWD" > "$here/pwd.txt"\ncd "$here"\ncat real/top.txt real/deep/sib.txt > "$3"\n',
      'gone.do': 'here=$PWD\nmkdir -p tmpd && cd tmpd && rmdir "$here/tmpd"\nredo-ifchange ../real/top.txt\ncd "$here"\ncat real/top.txt > "$3"\n',
    });
    const linked = await runCli(dir, ['linked']);
    expect(linked.code, linked.stderr).toBe(0);
    expect(readFileSync(join(dir, 'linked'), 'utf8')).toBe('top\nsib\n');
    expect(readFileSync(join(dir, 'pwd.txt'), 'utf8')).toBe(`${join(dir, 'link')}\n`);
    rmSync(join(dir, 'real', 'top.txt'));
    const gone = await runCli(dir, ['gone']);
    expect(gone.code, gone.stderr).toBe(0);
    expect(readFileSync(join(dir, 'gone'), 'utf8')).toBe('top\n');
  });

  it('a rule that execs or traps EXIT in a file it sources still reports its own status', async () => {
    const dir = project({
      'helper-one.sh': 'exec sh -c \'echo partial > "$1"; exit 5\' sh "$3"\n',
      'viaexec.do': '. ./helper-one.sh\n',
      'helper-two.sh': 'trap \'echo cleaning >&2\' EXIT\n',
      'viatrap.do': '. ./helper-two.sh\necho ok > "$3"\n',
      'viatrapfail.do': '. ./helper-two.sh\n(exit 4)\n',
    });
    const exec = await runCli(dir, ['viaexec']);
    expect(exec.code).toBe(1);
    expect(exec.stderr).toContain('redo: "viaexec": rule "viaexec.do" exited with status 5');
    const trap = await runCli(dir, ['viatrap']);
    expect(trap.code, trap.stderr).toBe(0);
    expect(trap.stderr).toContain('cleaning');
    expect(readFileSync(join(dir, 'viatrap'), 'utf8')).toBe('ok\n');
    const trapFail = await runCli(dir, ['viatrapfail']);
    expect(trapFail.code).toBe(1);
    expect(trapFail.stderr).toContain('redo: "viatrapfail": rule "viatrapfail.do" exited with status 4');
  });

  it('a plain rule whose shell is killed by a signal fails with that signal, seconds later at most', async () => {
    const dir = project({
      // The helper names the rule's shell through its parent; the rule's text names no $$.
      'killer.sh': 'kill -KILL "$PPID"\n',
      'killed.do': 'sh ./killer.sh\necho after > "$3"\n',
    });
    const started = Date.now();
    const result = await runCli(dir, ['killed']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "killed": rule "killed.do" exited with status 137 (killed by signal 9?)');
    expect(Date.now() - started).toBeLessThan(4500);
  });

  it('twelve concurrent redo-ifchange calls of one rule each get their own answer', async () => {
    const calls = Array.from({ length: 12 }, (_, i) => `redo-ifchange p${i} &`).join('\n');
    const dir = project({
      'many.do': `${calls}\nwait\ncat ${Array.from({ length: 12 }, (_, i) => `p${i}`).join(' ')} > "$3"\n`,
      'default.do': 'case $2 in p3|p7) exit 3 ;; esac\necho "$2" > "$3"\n',
    });
    const failing = await runCli(dir, ['-k', 'many']);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toContain('redo: "p3": rule "default.do" exited with status 3');
    expect(failing.stderr).toContain('redo: "p7": rule "default.do" exited with status 3');
    writeFileSync(join(dir, 'default.do'), 'echo "$2" > "$3"\n');
    const result = await runCli(dir, ['many']);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(join(dir, 'many'), 'utf8')).toBe(Array.from({ length: 12 }, (_, i) => `p${i}\n`).join(''));
  });

  it('a rule that names $0, $$ or $PPID runs in its own shell: $0 is the rule, $$ its own pid', async () => {
    const dir = project({
      'all.do': 'redo-ifchange one two\n',
      'one.do': 'echo "$0 $$" > "$3"\n',
      'two.do': 'echo "$0 $$" > "$3"\n',
    });
    const result = await runCli(dir, ['-j2', 'all']);
    expect(result.code, result.stderr).toBe(0);
    const [zeroOne, pidOne] = readFileSync(join(dir, 'one'), 'utf8').trim().split(' ');
    const [zeroTwo, pidTwo] = readFileSync(join(dir, 'two'), 'utf8').trim().split(' ');
    expect([zeroOne, zeroTwo]).toEqual(['./one.do', './two.do']);
    expect(pidOne).not.toBe(pidTwo);
  });
});
