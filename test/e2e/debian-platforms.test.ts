// Per-architecture specs (tiny-amd64, tiny-arm64) in one multi-arch image: a spec that
// `requires: [tiny]` is met by the platform's own tiny-ARCH layer; `lock` says where the
// platforms' versions differ (an update built for amd64 only), and the image build
// refuses the difference until the description allows it by name. skopeo reads the index.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveTinyArchive, type TinyArchive } from '../helpers/debian-mirror.js';
import { repoRoot, runCli } from '../helpers/rig.js';
import { seedBuildEnvironment } from '../helpers/build-environment.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-debian-platforms-'));
let archive: TinyArchive;
beforeAll(async () => {
  archive = await serveTinyArchive(join(scratch, 'archive'), [
    { root: 'debian', suite: 'bookworm', architectures: ['amd64', 'arm64'], compressions: ['.xz'], packages: [
      { name: 'tiny-lib', version: '1.0', architecture: 'amd64' },
      { name: 'tiny-lib', version: '1.0', architecture: 'arm64' },
      { name: 'tiny-data', version: '2.0', architecture: 'all' },
    ] },
    // The update was built for amd64 only (so far).
    { root: 'debian', suite: 'bookworm-updates', architectures: ['amd64', 'arm64'], compressions: ['.xz'], packages: [
      { name: 'tiny-lib', version: '1.1', architecture: 'amd64' },
    ] },
  ]);
});
afterAll(async () => {
  await archive?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('a multi-arch image from per-architecture specs', () => {
  const dir = join(scratch, 'project');
  mkdirSync(join(dir, 'targets'), { recursive: true });
  cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
  for (const arch of ['amd64', 'arm64']) {
    writeFileSync(join(dir, 'targets', `tiny-${arch}.spec.yaml`), `name: tiny-${arch}\nversion: "1"\narchitecture: ${arch}\npackages: [tiny-lib, tiny-data]\n`);
  }
  writeFileSync(join(dir, 'targets', 'app.spec.yaml'), 'name: app\nversion: "1"\nbuild:\n  - mkdir -p "$DESTDIR/etc" && echo hi > "$DESTDIR/etc/app"\nfiles:\n  - path: /etc/app\nrequires: [tiny]\n');
  const description = (extra: string): void => writeFileSync(join(dir, 'targets', 'app.yaml'), `tags: [localhost/app:1]\nplatforms: [linux/amd64, linux/arm64]\n${extra}layers: ["tiny-\${arch}.fragment.tar", app.fragment.tar]\n`);
  const env = (): NodeJS.ProcessEnv => ({ REDO_TS_CACHE: join(scratch, 'cache'), APT_CONFIG: '/dev/null' });

  it('lock says which package versions differ between the platforms', async () => {
    const result = await runCli(dir, ['lock', '--mirror', `${archive.base}/debian`, '--suite', 'bookworm', '--suite', 'bookworm-updates', '--keyring', archive.keyringPath]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('redo-ts lock: targets/tiny-*: the platforms differ: tiny-lib: 1.1 (amd64), 1.0 (arm64)');
    expect(result.stderr).not.toContain('tiny-data:');
  });

  it('refuses to build the image with the difference, naming the package, and builds it once allowed by name', async () => {
    // app's build step runs in the sandbox over the test build environment (added after
    // the lock above, which reads only the tiny archive).
    await seedBuildEnvironment(join(dir, 'targets'), join(scratch, 'cache'));
    description('');
    const refused = await runCli(dir, ['targets/app.oci.tar'], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('redo: "targets/app.tar": a package has different versions on the image\'s platforms');
    expect(refused.stderr).toContain('  tiny-lib: 1.1 (amd64), 1.0 (arm64)');
    expect(refused.stderr).toContain('allowVersionDifferences: [NAME]');
    description('allowVersionDifferences: [tiny-lib]\n');
    const built = await runCli(dir, ['targets/app.tar', 'targets/app.oci.tar'], { env: env() });
    expect(built.code, built.stderr).toBe(0);
    const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${join(dir, 'targets', 'app.oci.tar')}:1`], { encoding: 'utf8' })) as { manifests: Array<{ platform: { architecture: string } }> };
    expect(index.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
  });
});
