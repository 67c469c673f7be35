// The same image built twice, in different folders, with different umask, TZ and clock, is byte-identical and matches the golden digests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const script = join(repo, 'test/fixtures/301-image-rootfs/build-image.mjs');
const goldenPath = join(repo, 'test/golden/image-digests.json');

/** Builds fixture 301 in a child process with its own umask, TZ and folder; returns digests. */
function buildFixture(out: string, umask: string, tz: string): Record<string, unknown> {
  const result = spawnSync('sh', ['-c', `umask ${umask} && exec node "$0" "$1"`, script, out], {
    env: { ...process.env, TZ: tz, LANG: 'C', LC_ALL: tz === 'UTC' ? 'C' : 'C.UTF-8', SOURCE_DATE_EPOCH: '', REDO_TS_LIB: join(repo, 'dist/lib/index.js') },
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

let dir: string;
let first: Record<string, unknown>;
let second: Record<string, unknown>;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-determinism-'));
  first = buildFixture(join(dir, 'one'), '022', 'UTC');
  // A later moment, another zone, another umask, a deeper folder.
  await new Promise((r) => setTimeout(r, 1100));
  second = buildFixture(join(dir, 'elsewhere', 'two'), '077', 'Pacific/Kiritimati');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fixture 301 image', () => {
  it.each(['base.layer', 'docs.layer', 'image.tar', 'image-gzip.tar', 'image.oci/index.json', 'image.oci/oci-layout'])('%s is byte-identical across builds', (name) => {
    expect(readFileSync(join(dir, 'one', name)).equals(readFileSync(join(dir, 'elsewhere', 'two', name)))).toBe(true);
  });

  it('gives the same digests across builds', () => {
    expect(second).toEqual(first);
  });

  it('matches the golden digests', () => {
    // UPDATE_GOLDEN=1 rewrites the file from this build (review the diff!).
    if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(goldenPath)) writeFileSync(goldenPath, JSON.stringify(first, null, 2) + '\n');
    expect(first).toEqual(JSON.parse(readFileSync(goldenPath, 'utf8')));
  });
});
