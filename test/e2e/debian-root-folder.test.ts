// A spec that adds a file under a folder Debian delivers with a special mode (/root
// 0700, /tmp 1777) stacks on a Debian layer: its implied parent takes base-files' mode
// instead of 0755, so the image has no "delivered by two layers" conflict.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli } from '../helpers/rig.js';
import { seedBuildEnvironment } from '../helpers/build-environment.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-root-folder-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('a file under /root on top of base-files', () => {
  it('builds the image, /root keeping 0700 in both layers', async () => {
    const dir = join(scratch, 'project');
    mkdirSync(join(dir, 'targets'), { recursive: true });
    cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
    writeFileSync(join(dir, 'targets', 'base.spec.yaml'), 'name: base\nversion: "1"\narchitecture: amd64\npackages:\n  - base-files\n');
    writeFileSync(join(dir, 'targets', 'dot.spec.yaml'), 'name: dot\nversion: "1"\nbuild:\n  - mkdir -p "$DESTDIR/root" "$DESTDIR/tmp/x" && echo hi > "$DESTDIR/root/.hello" && echo t > "$DESTDIR/tmp/x/t"\nfiles:\n  - path: /root/.hello\n  - path: /tmp/x/t\nrequires: [base]\n');
    writeFileSync(join(dir, 'targets', 'app.yaml'), 'tags: [localhost/app:1]\nlayers: [base.fragment.tar, dot.fragment.tar]\n');
    const locked = await runCli(dir, ['lock']);
    expect(locked.code, locked.stderr).toBe(0);
    // dot's build step runs in the sandbox over the test build environment.
    await seedBuildEnvironment(join(dir, 'targets'), join(scratch, 'cache'));
    const built = await runCli(dir, ['targets/app.tar'], { env: { REDO_TS_CACHE: join(scratch, 'cache') } });
    expect(built.code, built.stderr).toBe(0);
    const listing = execFileSync('tar', ['-tvf', join(dir, 'targets', 'dot.fragment.tar')], { encoding: 'utf8' });
    expect(listing).toMatch(/^drwx------ 0\/0 .* root\/$/m);
    expect(listing).toMatch(/^drwxrwxrwt 0\/0 .* tmp\/$/m);
  });
});
