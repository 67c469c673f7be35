// End-to-end: a sh rule's exit status reaches the engine whatever the rule does with its
// shell (its own EXIT trap, exec, a run longer than the engine's liveness checks).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useFixture, type Rig } from '../helpers/rig.js';

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
    const traced = await rig.run(['-f', '-x', 'exec']);
    expect(traced.code, traced.stderr).toBe(0);
    expect(traced.stderr).toContain("+ exec printf from exec\\n\n");
    expect(traced.stderr).not.toContain("exec printf 'from exec");
  });
});
