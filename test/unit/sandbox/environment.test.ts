// resolveInRoot: where a member lands in an environment root, every symlink resolved inside it;
// assembleBuildEnvironment: found by the parts' digests, given or hashed.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeTar } from '../../../lib/image/tar.js';
import { assembleBuildEnvironment, resolveInRoot } from '../../../lib/sandbox/environment.js';

const root = mkdtempSync(join(tmpdir(), 'redo-ts-root-'));
mkdirSync(join(root, 'usr/bin'), { recursive: true });
symlinkSync('usr/bin', join(root, 'bin'));
symlinkSync('/etc', join(root, 'usr/escape'));
symlinkSync('../../../../..', join(root, 'usr/up'));
symlinkSync('loop', join(root, 'loop'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('resolveInRoot', () => {
  const cases: Array<[string, string, boolean, string]> = [
    ['a merged-/usr folder link is followed', 'bin/sh', true, 'usr/bin/sh'],
    ['the last link is kept when not followed', 'bin', false, 'bin'],
    ['an absolute link starts again at the root, not the host', 'usr/escape/passwd', true, 'etc/passwd'],
    ['.. stops at the root', 'usr/up/etc/shadow', true, 'etc/shadow'],
    ['a member path with .. stops at the root', '../../etc/x', true, 'etc/x'],
    ['a link loop ends after 40 links, inside the root', 'loop/x', true, 'loop/x'],
  ];
  for (const [name, member, isLastFollowed, wanted] of cases) {
    it(name, () => expect(resolveInRoot(root, member, isLastFollowed)).toBe(join(root, wanted)));
  }
});

describe('assembleBuildEnvironment', () => {
  it('finds the environment by the digest a part gives without reading its tar; another digest is another environment', async () => {
    const work = mkdtempSync(join(tmpdir(), 'redo-ts-environment-'));
    try {
      const tarPath = join(work, 'tools.fragment.tar');
      await writeTar([{ path: Buffer.from('etc/tool.conf'), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: 3, content: { kind: 'buffer', bytes: Buffer.from('on\n') } }], tarPath);
      const options = { cacheDir: join(work, 'cache'), subject: 'test' };
      const hashed = await assembleBuildEnvironment([{ tarPath, label: 'tools.spec.yaml' }], options);
      expect(readFileSync(join(hashed.rootPath, 'etc/tool.conf'), 'utf8')).toBe('on\n');
      const sha256 = createHash('sha256').update(readFileSync(tarPath)).digest('hex');
      rmSync(tarPath);
      // The tar is gone: only the given digest can find the environment assembled above.
      const given = await assembleBuildEnvironment([{ tarPath, label: 'tools.spec.yaml', sha256 }], options);
      expect(given.key).toBe(hashed.key);
      expect(given.rootPath).toBe(hashed.rootPath);
      await expect(assembleBuildEnvironment([{ tarPath, label: 'tools.spec.yaml', sha256: 'f'.repeat(64) }], options))
        .rejects.toMatchObject({ code: 'ERR_BUILD_ENVIRONMENT' });
      expect(existsSync(join(work, 'cache', 'build-environments', hashed.key, 'root'))).toBe(true);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
