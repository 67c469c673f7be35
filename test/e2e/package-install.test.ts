// README "Use it in your project": the packed package installed into a fresh project
// (offline, from the unpacked `npm pack` tarball), `redo-ts init`, `redo-ts image.tar`,
// podman runs it; the redo commands work through npm's bin symlinks.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivatePodman, type PrivatePodman } from '../helpers/clients.js';
import { refreshVanishedDebPins } from '../helpers/deb-pins.js';
import { cliEnvironment, repoRoot } from '../helpers/rig.js';

describe('redo-ts installed into another project', () => {
  let scratch: string;
  let project: string;
  let podman: PrivatePodman;
  const run = (command: string, args: string[], cwd = project) => {
    const env = cliEnvironment({ PATH: `${join(project, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`, REDO_TS_CACHE: join(scratch, 'cache') });
    return spawnSync(command, args, { cwd, env, encoding: 'utf8' });
  };

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'redo-ts-package-'));
    podman = createPrivatePodman();
    // What `npm pack` puts in the tarball (dist/ is built by the test run's tsc).
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', scratch], { cwd: repoRoot, encoding: 'utf8' });
    expect(pack.status, pack.stderr).toBe(0);
    const tarball = pack.stdout.trim().split('\n').pop() as string;
    expect(spawnSync('tar', ['-xzf', join(scratch, tarball), '-C', scratch]).status).toBe(0);
    // Installed offline: the package's own dependencies come from this checkout.
    symlinkSync(join(repoRoot, 'node_modules'), join(scratch, 'package', 'node_modules'));
    project = join(scratch, 'my-image');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), '{ "name": "my-image", "private": true }\n');
  });
  afterAll(() => {
    podman?.remove();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('npm install puts redo-ts and every redo command in node_modules/.bin', () => {
    const install = run('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '../package']);
    expect(install.status, install.stderr).toBe(0);
    for (const name of ['redo-ts', 'redo', 'redo-ifchange', 'redo-ifcreate', 'redo-always', 'redo-stamp', 'redo-whichdo', 'redo-ood', 'redo-targets', 'redo-sources', 'redo-log']) {
      expect(run('sh', ['-c', `command -v ${name}`]).stdout.trim()).toBe(join(project, 'node_modules', '.bin', name));
    }
  });

  it('redo-ts init writes a project that builds image.tar with the shared rules, and podman runs it', () => {
    const init = run('redo-ts', ['init']);
    expect(init.status, init.stderr).toBe(0);
    expect(readFileSync(join(project, 'image.yaml'), 'utf8')).toContain('tags: [localhost/my-image:latest]');
    // The build environment is written and locked: build steps never use the host's tools.
    expect(readFileSync(join(project, 'targets', 'build-environment.lock.yaml'), 'utf8')).toContain('- name: busybox-static');
    expect(run('redo-ts', ['init']).status).toBe(2);
    // init writes a pinned busybox-static; on the day that version leaves the archive the
    // test's project moves to the one apt offers now (init.ts then needs a new pin too).
    refreshVanishedDebPins(project);
    expect(run('redo-ts', ['--why', 'image.tar']).stdout).not.toContain('no rule');
    const build = run('redo-ts', ['image.tar']);
    expect(build.stderr).not.toMatch(/^redo: /m);
    expect(build.status).toBe(0);
    expect(build.stderr).toContain('fragment: build steps ran in the sandbox over environment');
    // The rule comes from the installed package (a path outside the project here).
    expect(run('redo-whichdo', ['image.tar']).stdout.trim().split('\n').pop()).toBe('../package/rules/default.tar.do.ts');
    const load = podman.podman(['load', '-i', join(project, 'image.tar')]);
    expect(load.status, load.stderr).toBe(0);
    const started = podman.podman(['run', ...podman.runArgs, 'localhost/my-image:latest']);
    expect(started.status, started.stderr).toBe(0);
    expect(started.stdout).toBe('Hello from an image built by redo-ts!\n');
  });

  it('a read-only installation builds with the shared rules the package shipped compiled: nothing is written into the package, esbuild compiles none of them', () => {
    const packageDir = join(scratch, 'package');
    rmSync(join(packageDir, 'rules', '.redo'), { recursive: true, force: true });
    rmSync(join(project, '.redo', 'ts'), { recursive: true, force: true });
    // A private mount namespace where the package is mounted read-only, as in a CI image
    // or a root-owned global install (root ignores file modes, so chmod would prove nothing).
    const script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"';
    const build = run('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', script, 'sh', packageDir, 'redo-ts', '-f', 'image.tar']);
    expect(build.stderr).not.toMatch(/^redo: /m);
    expect(build.status).toBe(0);
    expect(existsSync(join(packageDir, 'rules', '.redo'))).toBe(false);
    // dist/bundle/rules/NAME.js were used: nothing was compiled into the project either.
    expect(existsSync(join(packageDir, 'dist', 'bundle', 'rules', 'default.tar.do.ts.js'))).toBe(true);
    expect(existsSync(join(project, '.redo', 'ts', 'shared'))).toBe(false);
  });

  it('the redo commands work through the bin symlinks, in and out of rules', () => {
    writeFileSync(join(project, 'lines.do'), 'redo-ifchange app/hello.sh\nwc -l < app/hello.sh\n');
    const redo = run('redo', ['lines']);
    expect(redo.status, redo.stderr).toBe(0);
    expect(readFileSync(join(project, 'lines'), 'utf8').trim()).toBe('3');
    expect(run('redo-ifchange', ['lines']).stderr).toBe('');
    expect(run('redo-targets', ['-0']).stdout.split('\0')).toContain('lines');
    expect(run('redo-sources', ['lines']).stdout).toContain('app/hello.sh\n');
  });
});
