// A rule that declares itself cacheable (`# redo-ts: cacheable env=GREETING`): the
// declared variable and the dependency's content are part of the key; a hit runs no rule.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyFixture, type ProjectCopy } from '../helpers/project-copy.js';
import { hasTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';

const describeIf = hasTool('docker-registry') ? describe : describe.skip;

describeIf('a cacheable sh rule with a declared environment input', () => {
  let registry: LoopbackRegistry;
  const copies: ProjectCopy[] = [];
  const fresh = (): ProjectCopy => {
    const project = copyFixture('604-cacheable-rule');
    copies.push(project);
    return project;
  };
  const build = (project: ProjectCopy, greeting: string) =>
    project.redo(['input.out'], { env: { GREETING: greeting, REDO_TS_REMOTE_CACHE: `${registry.address}/rules/cache` } });
  const ran = (project: ProjectCopy): string => (existsSync(join(project.dir, 'run.log')) ? readFileSync(join(project.dir, 'run.log'), 'utf8') : '');

  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
    for (const project of copies) project.remove();
  });

  it('stores on the first build, and another clone with the same input and GREETING gets it without running the rule', async () => {
    const first = fresh();
    const stored = await build(first, 'hi');
    expect(stored.status).toBe(0);
    expect(ran(first)).toBe('ran input.out\n');
    expect(stored.stderr).toContain('1 stored');
    const second = fresh();
    const hit = await build(second, 'hi');
    expect(hit.status).toBe(0);
    expect(hit.stderr).toContain('redo  input.out  (no previous build) from cache\n');
    expect(ran(second)).toBe('');
    expect(readFileSync(join(second.dir, 'input.out'), 'utf8')).toBe('hi: hello\n');
    // Recorded as built with its dependency: an edit rebuilds it.
    writeFileSync(join(second.dir, 'input.txt'), 'changed\n');
    const rebuilt = await second.redo(['input.out'], { env: { GREETING: 'hi' } });
    expect(rebuilt.stderr).toContain('redo  input.out  (changed: input.txt)\n');
    expect(readFileSync(join(second.dir, 'input.out'), 'utf8')).toBe('hi: changed\n');
  });

  it('another GREETING or another input content is a miss: the rule runs', async () => {
    const third = fresh();
    const other = await build(third, 'ho');
    expect(other.stderr).toContain('redo  input.out  (no previous build)\n');
    expect(ran(third)).toBe('ran input.out\n');
    expect(readFileSync(join(third.dir, 'input.out'), 'utf8')).toBe('ho: hello\n');
    const fourth = fresh();
    writeFileSync(join(fourth.dir, 'input.txt'), 'different\n');
    const edited = await build(fourth, 'hi');
    expect(edited.stderr).toContain('0 from cache, 1 stored');
    expect(ran(fourth)).toBe('ran input.out\n');
  });

  it('-f runs the rule even when the cache has the entry', async () => {
    const fifth = fresh();
    const forced = await fifth.redo(['-f', 'input.out'], { env: { GREETING: 'hi', REDO_TS_REMOTE_CACHE: `${registry.address}/rules/cache` } });
    expect(forced.status).toBe(0);
    expect(forced.stderr).toContain('redo  input.out  (forced)\n');
    expect(ran(fifth)).toBe('ran input.out\n');
  });
});

describeIf('a remote cache entry cannot steer the build (issue 18)', () => {
  let registry: LoopbackRegistry;
  const copies: ProjectCopy[] = [];
  // One rule for attacker and victim (its bytes are in the key); ATTACK makes the
  // attacker's build record what it wants the victim to act on.
  const rule = [
    '# redo-ts: cacheable env=GREETING',
    'redo-ifchange "$2.txt"',
    'case "${ATTACK:-}" in',
    '  rule) redo-ifchange evil.side ;;',
    '  env) redo-ifchange-env SECRET_TOKEN ;;',
    '  file) redo-ifchange .secret ;;',
    'esac',
    'echo "ran $1" >> run.log',
    'printf \'%s: \' "${GREETING:-none}" > "$3"',
    'cat "$2.txt" >> "$3"',
    '',
  ].join('\n');
  const fresh = (): ProjectCopy => {
    const project = copyFixture('604-cacheable-rule');
    copies.push(project);
    writeFileSync(join(project.dir, 'default.out.do'), rule);
    writeFileSync(join(project.dir, 'evil.side.do'), 'echo "evil.side ran" >> evil.log\necho side > "$3"\n');
    return project;
  };
  const read = (project: ProjectCopy, name: string): string => (existsSync(join(project.dir, name)) ? readFileSync(join(project.dir, name), 'utf8') : '');
  const cacheEnv = (): NodeJS.ProcessEnv => ({ GREETING: 'hi', REDO_TS_REMOTE_CACHE: `${registry.address}/steer/cache` });

  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
    for (const project of copies) project.remove();
  });

  it('an entry listing a target whose rule is not cacheable is refused: that rule never runs, even read-only', async () => {
    const attacker = fresh();
    const pushed = await attacker.redo(['input.out'], { env: { ...cacheEnv(), ATTACK: 'rule' } });
    expect(pushed.status).toBe(0);
    expect(read(attacker, 'evil.log')).toBe('evil.side ran\n');
    const victim = fresh();
    const result = await victim.redo(['input.out'], { env: { ...cacheEnv(), REDO_TS_REMOTE_CACHE_READONLY: '1' } });
    expect(result.status).toBe(0);
    expect(read(victim, 'evil.log')).toBe('');
    expect(result.stderr).toContain(`cache entry for "input.out" refused\n  it lists "evil.side", whose rule "evil.side.do" is not cacheable: looking it up would run that rule\n`);
    expect(result.stderr).toContain('redo  input.out  (no previous build)\n');
    expect(read(victim, 'run.log')).toBe('ran input.out\n');
  });

  it('an entry listing an undeclared $NAME is refused: its value is never hashed into a tag, so a guess is not confirmed', async () => {
    const attacker = fresh();
    writeFileSync(join(attacker.dir, 'input.txt'), 'oracle\n');
    // The attacker guesses the victim's secret and files an entry under the key the guess gives.
    const pushed = await attacker.redo(['input.out'], { env: { ...cacheEnv(), ATTACK: 'env', SECRET_TOKEN: 'hunter2' } });
    expect(pushed.status).toBe(0);
    const victim = fresh();
    writeFileSync(join(victim.dir, 'input.txt'), 'oracle\n');
    const result = await victim.redo(['input.out'], { env: { ...cacheEnv(), SECRET_TOKEN: 'hunter2', REDO_TS_REMOTE_CACHE_READONLY: '1' } });
    expect(result.status).toBe(0);
    expect(result.stderr).not.toContain('from cache');
    expect(result.stderr).toContain('it lists the environment variable $SECRET_TOKEN, which "default.out.do" does not declare (env=GREETING,SOURCE_DATE_EPOCH)\n');
    expect(read(victim, 'run.log')).toBe('ran input.out\n');
  });

  it('an entry listing a hidden file is refused: its content is never hashed into a tag', async () => {
    const attacker = fresh();
    writeFileSync(join(attacker.dir, 'input.txt'), 'hidden\n');
    writeFileSync(join(attacker.dir, '.secret'), 'PIN=4711\n');
    const pushed = await attacker.redo(['input.out'], { env: { ...cacheEnv(), ATTACK: 'file' } });
    expect(pushed.status).toBe(0);
    const victim = fresh();
    writeFileSync(join(victim.dir, 'input.txt'), 'hidden\n');
    writeFileSync(join(victim.dir, '.secret'), 'PIN=4711\n');
    const result = await victim.redo(['input.out'], { env: { ...cacheEnv(), REDO_TS_REMOTE_CACHE_READONLY: '1' } });
    expect(result.status).toBe(0);
    expect(result.stderr).not.toContain('from cache');
    expect(result.stderr).toContain('it lists ".secret", a hidden file: its content would be hashed into the tag looked up\n');
  });
});
