// A lock must be closed under its own dependencies: a lock that lost a package's block
// (a bad merge) is refused by the build, naming the package and who needs it, instead of
// building an image without it (or failing later with a message about ldconfig).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli } from '../helpers/rig.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-lock-closure-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('a lock that lost a package', () => {
  it('is refused by the build, naming the missing package and the packages that need it', async () => {
    const dir = join(scratch, 'project');
    mkdirSync(join(dir, 'targets'), { recursive: true });
    cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
    writeFileSync(join(dir, 'targets', 'small.spec.yaml'), 'name: small\nversion: "1"\narchitecture: amd64\npackages:\n  - zlib1g\nexclude: [/usr/share/doc/**]\n');
    const locked = await runCli(dir, ['lock']);
    expect(locked.code, locked.stderr).toBe(0);
    const lockPath = join(dir, 'targets', 'small.lock.yaml');
    const text = readFileSync(lockPath, 'utf8');
    // Drop libc6's block, as a bad merge would.
    const without = text.replace(/ {2}- name: libc6\n(?: {4}.*\n)+/, '');
    expect(without).not.toBe(text);
    writeFileSync(lockPath, without);
    const env = { REDO_TS_CACHE: join(scratch, 'cache') };
    const built = await runCli(dir, ['targets/small.fragment.tar'], { env });
    expect(built.code).toBe(1);
    expect(built.stderr).toContain('redo: "targets/small.lock.yaml": the lock lacks package libc6, a dependency of its own packages');
    expect(built.stderr).toMatch(/ {2}zlib1g Depends: libc6 \(>= [0-9.]+\): not in the lock/);
    expect(built.stderr).toContain('hint: the lock lost a package\'s block (a bad merge or an edit): run `redo-ts lock targets/small.spec.yaml`');
    expect(built.stderr).not.toMatch(/ldconfig|unshare/);
  });
});
