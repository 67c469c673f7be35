/** A real package through the machine's apt: busybox-static, pinned, fetched with apt-get download, cached, delivered. */

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRedoError } from '../../lib/errors.js';
import { entriesOfTar } from '../../lib/image/tar.js';
import { buildFragment } from '../../lib/sources/fragment.js';
import { pinSpecs } from '../../lib/sources/pin.js';
import { loadSpec } from '../../lib/sources/spec.js';

let base: string;
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'redo-ts-apt-'));
});
afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

/** The version apt would install now, or undefined with the reason when apt cannot say. */
function candidateVersion(pkg: string): { version?: string; reason?: string } {
  try {
    const text = execFileSync('apt-cache', ['policy', pkg], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
    const match = /Candidate: (\S+)/.exec(text);
    if (!match || match[1] === '(none)') return { reason: `apt knows no candidate for ${pkg} (run apt-get update?)` };
    return { version: match[1] };
  } catch (error) {
    return { reason: `apt-cache is not usable here: ${(error as Error).message.split('\n')[0]}` };
  }
}

describe('deb: sources through apt', () => {
  it('pins, downloads, caches and delivers busybox-static; a warm cache needs no apt', async (context) => {
    const { version, reason } = candidateVersion('busybox-static');
    if (version === undefined) {
      console.log(`skipped: ${reason}`);
      context.skip();
      return;
    }
    const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
    const project = join(base, 'project');
    const cache = join(base, 'cache');
    mkdirSync(join(project, 'targets'), { recursive: true });
    writeFileSync(join(project, 'package.json'), '{}\n');
    const specPath = join(project, 'targets/busybox.spec.yaml');
    writeFileSync(specPath, `# busybox for the default image
name: busybox
version: "${version.replace(/^\d+:/, '').replace(/-.*$/, '')}"
sources:
  - url: deb:busybox-static=${version}?arch=${arch}
    include: [/bin/**]
`);
    try {
      const changes = await pinSpecs([specPath], { cacheDir: cache, env: process.env });
      expect(changes.map((change) => change.action)).toEqual(['added']);
    } catch (error) {
      if (isRedoError(error, 'ERR_SOURCE_UNREACHABLE')) {
        console.log(`skipped: apt cannot reach its mirror:\n${error.render()}`);
        context.skip();
        return;
      }
      throw error;
    }
    const spec = await loadSpec(specPath);
    expect(spec.sources[0]!.integrity).toMatch(/^sha256-/);
    expect(readFileSync(specPath, 'utf8')).toContain(`    integrity: ${spec.sources[0]!.integrity}\n    include: [/bin/**]\n`);

    // Warm cache: offline, and no apt-get on PATH.
    const out = join(project, 'busybox.tar');
    const result = await buildFragment(specPath, out, { cacheDir: cache, isOffline: true, env: { PATH: '/nonexistent' } });
    const busybox = entriesOfTar(out).find((entry) => entry.path.toString() === 'bin/busybox');
    expect(busybox).toMatchObject({ type: 'file', mode: 0o755, uid: 0, gid: 0 });
    expect(busybox!.sizeBytes).toBeGreaterThan(100_000);
    expect(result.sources[0]).toMatchObject({ kind: 'deb', name: 'busybox-static', version, integrity: spec.sources[0]!.integrity });

    // Cold cache: apt-get download again, checked against the pin, same bytes out.
    const cold = await buildFragment(specPath, join(project, 'busybox-cold.tar'), { cacheDir: join(base, 'cold-cache'), env: process.env });
    expect(cold.diffId).toBe(result.diffId);
  });
});
