// Build caches (`caches:` in a spec): a folder per variable kept between builds of the
// spec, like BuildKit's cache mounts; the output is the same with and without it, and
// REDO_TS_BUILD_CACHES=off (what verify sets) builds with an empty one. The steps run
// sandboxed: the cache folder is bound writable at /build/caches/VARIABLE.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildFragment } from '../../lib/sources/fragment.js';
import { parseSpec } from '../../lib/sources/spec.js';
import type { EnvironmentPart } from '../../lib/sandbox/environment.js';
import { testBuildEnvironment } from '../helpers/build-environment.js';

// A "compiler" that reuses what an earlier build left in its cache folder.
const spec = `name: tool
version: "1"
caches: [TOOL_CACHE]
build:
  - |
    echo "cache at $TOOL_CACHE" >&2
    if [ -f "$TOOL_CACHE/object" ]; then echo "cache hit" >&2; else echo "cache miss" >&2; echo compiled > "$TOOL_CACHE/object"; fi
    install -D -m 0644 "$TOOL_CACHE/object" "$DESTDIR/usr/lib/tool/object"
files:
  - path: /usr/lib/tool
`;

describe('build caches', () => {
  let environment: EnvironmentPart[];
  beforeAll(async () => {
    environment = await testBuildEnvironment();
  });
  let project: string;
  beforeEach(() => {
    project = mkdtempSync(join(tmpdir(), 'redo-ts-build-cache-'));
    mkdirSync(join(project, 'targets'));
    writeFileSync(join(project, 'package.json'), '{}\n');
    writeFileSync(join(project, 'targets', 'tool.spec.yaml'), spec);
  });
  afterEach(() => rmSync(project, { recursive: true, force: true }));

  const build = async (out: string, env: NodeJS.ProcessEnv = {}): Promise<{ diffId: string; log: string; where: string }> => {
    const log = new PassThrough();
    let text = '';
    log.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const result = await buildFragment(join(project, 'targets/tool.spec.yaml'), join(project, out), { root: project, cacheDir: join(project, 'cache'), env: { ...process.env, ...env }, log, environment });
    return { diffId: result.diffId, log: text, where: result.buildEnvironment.kind };
  };

  it('keeps the folder between builds of the spec, and the output is the same with and without it', async () => {
    const first = await build('a.tar');
    expect(first.log).toContain('cache miss');
    // Sandboxed, the step sees the cache at a fixed path, never the host's.
    expect(first.where).toBe('sandbox');
    expect(first.log).toContain('cache at /build/caches/TOOL_CACHE\n');
    const second = await build('b.tar');
    expect(second.log).toContain('cache hit');
    expect(second.diffId).toBe(first.diffId);
    const without = await build('c.tar', { REDO_TS_BUILD_CACHES: 'off' });
    expect(without.log).toContain('cache miss');
    expect(without.diffId).toBe(first.diffId);
    // Off leaves the kept cache alone: the next build hits again.
    expect((await build('d.tar')).log).toContain('cache hit');
  });

  it('refuses a variable redo-ts sets itself', () => {
    expect(() => parseSpec(spec.replace('[TOOL_CACHE]', '[HOME]'), join(project, 'targets/tool.spec.yaml'), project)).toThrow(/caches\[0\]: "HOME" must be the name of an environment variable/);
  });
});
