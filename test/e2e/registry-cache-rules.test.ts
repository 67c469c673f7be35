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
