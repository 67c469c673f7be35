// resolveInRoot: where a member lands in an environment root, every symlink resolved inside it.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveInRoot } from '../../../lib/sandbox/environment.js';

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
