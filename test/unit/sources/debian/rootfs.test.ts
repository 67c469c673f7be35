// The generated parts of a Debian rootfs (ld.so.cache from the image's ldconfig, pycs from
// the image's python) are the same bytes on every build: two assemblies of the
// examples/python-app lock (a copy, moved off any version a point release removed: see
// deb-locks.ts), each with an empty effects cache, are compared. The .debs come through
// the shared download cache ($REDO_TS_CACHE or ~/.cache/redo-ts).
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDebianLock } from '../../../../lib/sources/debian/lock.js';
import { fetchLockedPackages } from '../../../../lib/sources/debian/fetch.js';
import { assembleDebianRootfs } from '../../../../lib/sources/debian/rootfs.js';
import { loadSpec } from '../../../../lib/sources/spec.js';
import { cacheDirFrom } from '../../../../lib/sources/store.js';
import { integrityOfBytes } from '../../../../lib/sources/integrity.js';
import type { TarEntry } from '../../../../lib/image/tar.js';
import { refreshVanishedLocks } from '../../../helpers/deb-locks.js';
import { readFileSync } from 'node:fs';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-rootfs-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const example = join(scratch, 'python-app');
cpSync(resolve(__dirname, '../../../../examples/python-app'), example, { recursive: true });
refreshVanishedLocks(example, 'examples/python-app');

function contentOf(entry: TarEntry): Buffer {
  const content = entry.content!;
  if (content.kind === 'buffer') return content.bytes;
  if (content.kind !== 'path') throw new Error('unexpected content');
  return readFileSync(content.path).subarray(content.offsetBytes ?? 0, (content.offsetBytes ?? 0) + entry.sizeBytes);
}

describe('assembleDebianRootfs', () => {
  it('generates ld.so.cache and pycs byte for byte the same in two builds', { timeout: 300_000 }, async () => {
    const spec = await loadSpec(join(example, 'targets', 'python.spec.yaml'), { root: example });
    const lock = await readDebianLock(join(example, 'targets', 'python.lock.yaml'));
    const debs = await fetchLockedPackages(lock.packages, { cacheDir: cacheDirFrom(process.env), lockLabel: 'python.lock.yaml' });
    const generated = async (run: string): Promise<Map<string, string>> => {
      const result = await assembleDebianRootfs({
        lock, list: spec.packages!, debs, scratch: join(scratch, run), mtimeSeconds: 0, env: process.env, lockLabel: 'python.lock.yaml',
        cacheDir: join(scratch, `${run}-cache`),
      });
      const out = new Map<string, string>();
      for (const entry of result.entries) {
        const path = entry.path.toString();
        if (entry.type === 'file' && (path === 'etc/ld.so.cache' || path.endsWith('.pyc'))) out.set(path, integrityOfBytes(contentOf(entry)));
      }
      return out;
    };
    const first = await generated('one');
    const second = await generated('two');
    expect(first.size).toBeGreaterThan(500);
    expect(first.has('etc/ld.so.cache')).toBe(true);
    expect([...second]).toEqual([...first]);
  });
});
