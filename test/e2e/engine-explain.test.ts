// End-to-end: `redo-ts explain` / `--why` on a name nothing can build says so and fails,
// while an up-to-date target is reported as such.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useFixture, type Rig } from '../helpers/rig.js';

describe('explain on targets that cannot be built', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = useFixture('107-rule-shells');
  });
  afterAll(() => rig.remove());

  it('says there is no rule and exits 1, for explain and for --why', async () => {
    for (const args of [['explain', 'nosuch'], ['--why', 'nosuch']]) {
      const result = await rig.run(args);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('nosuch: no rule to build it and no such file (`redo-ts whichdo nosuch` lists the rules looked for)\n');
    }
  });

  it('says a built target is up to date and exits 0', async () => {
    expect((await rig.run(['exec'])).code).toBe(0);
    const result = await rig.run(['explain', 'exec']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('exec: up to date\n');
  });
});
