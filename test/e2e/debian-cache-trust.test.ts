// Cached .deb files of a package list are proved in the pass that unpacks them (issue 18):
// a build from a warm cache reads each cached package once (its ar headers and control
// member aside), not a hash pass and then an unpack; a cached package whose bytes were
// changed (a flipped bit, or a rebuilt package with the same control fields) is dropped
// when the unpack finds its hash wrong, and the build fetches it again from the archive;
// offline, the build fails naming the entry, the wanted and the found hash.
// The archive is a local one (test/helpers/apt-mirror.ts); reads are counted with strace.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedoError } from '../../lib/errors.js';
import { buildFragment } from '../../lib/sources/fragment.js';
import { buildDeb, startAptMirror, type AptMirror } from '../helpers/apt-mirror.js';
import { contentPathOf, poisonCacheEntry } from '../helpers/cache-poisoner.js';
import { hasTool } from '../helpers/clients.js';
import { tracedRedo } from '../helpers/read-trace.js';
import { repoRoot, runCli } from '../helpers/rig.js';

const missing = ['strace', 'dpkg-deb', 'gpg', 'apt-get'].filter((tool) => !hasTool(tool));
if (missing.length > 0) console.warn(`debian cache trust tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

/** 3 MiB of text that does not compress much (hex of a hash chain), the same on every run. */
function bulk(): string {
  const parts: string[] = [];
  let seed = createHash('sha256').update('redo-ts').digest();
  for (let i = 0; i < 3 * 1024 * 1024 / 64; i += 1) {
    seed = createHash('sha256').update(seed).digest();
    parts.push(seed.toString('hex'));
  }
  return parts.join('');
}

const sri = (bytes: Buffer): string => `sha256-${createHash('sha256').update(bytes).digest('base64')}`;

describeIf('cached .deb files are hashed in the pass that unpacks them', () => {
  let scratch: string;
  let mirror: AptMirror;
  let dir: string;
  let cache: string;
  let deb: string;
  let rebuilt: Buffer;
  let integrity: string;
  const fragment = (): string => join(dir, 'targets', 'big.fragment.tar');
  const sha256Of = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'redo-ts-deb-trust-'));
    const content = bulk();
    deb = buildDeb(join(scratch, 'debs'), { name: 'big-data', version: '1.0-1', architecture: 'all', files: { 'usr/share/big-data/blob': content } });
    // The same name, version and architecture, rebuilt with another file: other bytes.
    rebuilt = readFileSync(buildDeb(join(scratch, 'rebuilt'), { name: 'big-data', version: '1.0-1', architecture: 'all', files: { 'usr/share/big-data/blob': `${content}!` } }));
    integrity = sri(readFileSync(deb));
    mirror = await startAptMirror(join(scratch, 'mirror'));
    await mirror.publish([deb]);
    dir = join(scratch, 'project');
    mkdirSync(join(dir, 'targets'), { recursive: true });
    cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
    writeFileSync(join(dir, 'targets', 'big.spec.yaml'), 'name: big\nversion: "1"\npackages: [big-data]\n');
    const lock = await runCli(dir, ['lock', '--keyring', mirror.keyring], { env: mirror.env });
    expect(lock.code, lock.stderr).toBe(0);
    cache = join(scratch, 'cache');
    const built = await runCli(dir, ['targets/big.fragment.tar'], { env: { ...mirror.env, REDO_TS_CACHE: cache } });
    expect(built.code, built.stderr).toBe(0);
    expect(readFileSync(join(dir, 'targets', 'big.lock.yaml'), 'utf8')).toContain(integrity);
  }, 300_000);
  afterAll(async () => {
    await mirror?.stop();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  it('a build from the warm cache reads the cached .deb once, not a hash pass and then an unpack', () => {
    const entry = contentPathOf(cache, integrity);
    const size = statSync(entry).size;
    expect(size).toBeGreaterThan(1024 * 1024);
    const before = sha256Of(fragment());
    const traced = tracedRedo(dir, ['-f', 'targets/big.fragment.tar'], { ...mirror.env, REDO_TS_CACHE: cache });
    expect(traced.status, traced.stderr).toBe(0);
    const read = traced.bytesByPath.get(entry) ?? 0;
    // One pass over the whole file (hashed as its data member is unpacked), plus the ar
    // headers and the small control member read on their own.
    expect(read, `read ${read} bytes of a ${size}-byte .deb`).toBeGreaterThanOrEqual(size);
    expect(read, `read ${read} bytes of a ${size}-byte .deb`).toBeLessThan(size + 64 * 1024);
    expect(sha256Of(fragment())).toBe(before);
  });

  for (const [what, poison] of [
    ['one bit flipped (the data no longer unpacks)', undefined],
    ['a rebuilt package with the same control fields (it unpacks, to other files)', () => rebuilt],
  ] as const) {
    it(`a cached .deb with ${what} is dropped when the unpack finds its hash wrong, and fetched again: the fragment is the pinned one`, async () => {
      const before = sha256Of(fragment());
      const entry = poisonCacheEntry(cache, integrity, poison);
      const again = await runCli(dir, ['-f', 'targets/big.fragment.tar'], { env: { ...mirror.env, REDO_TS_CACHE: cache } });
      expect(again.code, again.stderr).toBe(0);
      expect(sha256Of(fragment())).toBe(before);
      expect(sri(readFileSync(entry))).toBe(integrity);
    });
  }

  it('offline, a changed cached .deb fails naming the entry, the wanted and the found hash; the entry is dropped and nothing is written', async () => {
    const entry = poisonCacheEntry(cache, integrity, () => rebuilt);
    const out = join(scratch, 'offline.tar');
    let error: unknown;
    try {
      await buildFragment(join(dir, 'targets', 'big.spec.yaml'), out, { root: dir, cacheDir: cache, isOffline: true, env: { ...process.env, ...mirror.env } });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RedoError);
    expect((error as RedoError).code).toBe('ERR_CACHE_DAMAGED');
    expect((error as RedoError).render().split('\n').slice(0, 5)).toEqual([
      'redo: "targets/big.lock.yaml": package big-data 1.0-1: the cached copy does not match its pin',
      `  entry:  ${entry}`,
      `  wanted: ${integrity}`,
      `  found:  ${sri(rebuilt)}`,
      '  the damaged copy was dropped from the cache; nothing was built',
    ]);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(entry)).toBe(false);
  });
});
