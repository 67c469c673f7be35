// The project's own default image, as a user gets it: `redo-ts image.tar` in a fresh copy,
// loaded and run by podman, read by skopeo, identical when rebuilt elsewhere, and rebuilt
// incrementally (only the app's layer) after the app's source changes.
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivatePodman, runTool, type PrivatePodman } from '../helpers/clients.js';
import { hasStrace, node, programsStarted, traced } from '../helpers/exec-trace.js';
import { copyProject, type ProjectCopy } from '../helpers/project-copy.js';
import { rebuiltTargets } from '../helpers/tutorial.js';

const outputs = ['image.tar', 'image.oci.tar', 'image.image.json', 'targets/busybox.fragment.tar', 'targets/greet.fragment.tar'];

describe('the default image (redo-ts image.tar)', () => {
  let cache: string;
  let first: ProjectCopy;
  let podman: PrivatePodman;
  const env = (): NodeJS.ProcessEnv => ({ REDO_TS_CACHE: cache });

  beforeAll(() => {
    cache = mkdtempSync(join(tmpdir(), 'redo-ts-cache-'));
    first = copyProject('redo-ts-image-a-');
    podman = createPrivatePodman();
  });
  afterAll(() => {
    first?.remove();
    podman?.remove();
    rmSync(cache, { recursive: true, force: true });
  });

  it('builds image.tar and its OCI layout from the pinned specs, then nothing on a second run', async () => {
    const build = await first.redo(['image.tar', 'image.oci.tar'], { env: env() });
    expect(build.stderr).not.toMatch(/^redo: /m);
    expect(build.status).toBe(0);
    expect(rebuiltTargets(build.stderr)).toEqual(['image.image.json', 'image.oci.tar', 'image.tar', 'targets/build-environment.fragment.tar', 'targets/busybox.fragment.tar', 'targets/greet.fragment.tar']);
    for (const output of outputs) expect(statSync(join(first.dir, output)).size).toBeGreaterThan(0);

    const again = await first.redo(['image.tar'], { env: env() });
    expect(again.status).toBe(0);
    expect(rebuiltTargets(again.stderr)).toEqual([]);
  });

  it('is accepted by skopeo as a docker archive and as an OCI archive, with the same layers', () => {
    const docker = runTool('skopeo', ['inspect', `docker-archive:${join(first.dir, 'image.tar')}`]);
    expect(docker.status, docker.stderr).toBe(0);
    const oci = runTool('skopeo', ['inspect', `oci-archive:${join(first.dir, 'image.oci.tar')}:latest`]);
    expect(oci.status, oci.stderr).toBe(0);
    const dockerInfo = JSON.parse(docker.stdout) as { Layers: string[]; Created: string; Architecture: string };
    const ociInfo = JSON.parse(oci.stdout) as { Layers: string[] };
    expect(dockerInfo.Layers).toHaveLength(2);
    expect(ociInfo.Layers).toEqual(dockerInfo.Layers);
    expect(dockerInfo.Created).toBe('1970-01-01T00:00:00Z');
    expect(dockerInfo.Architecture).toBe('amd64');
  });

  it('loads into podman and runs the greeting', () => {
    const load = podman.podman(['load', '-i', join(first.dir, 'image.tar')]);
    expect(load.status, load.stderr).toBe(0);
    expect(load.stdout).toContain('localhost/redo-ts/hello:latest');
    const run = podman.podman(['run', ...podman.runArgs, 'localhost/redo-ts/hello:latest']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe('Hello, world, from an image built by redo-ts!\nThis image holds: bin/busybox bin/sh usr/bin/greet\n');
  });

  it('gives the same bytes in another folder, with another umask, time zone and file times', async () => {
    const second = copyProject('redo-ts-image-b-other-name-');
    try {
      const later = Date.now() / 1000 + 86_400;
      for (const file of ['app/greet.sh', 'targets/busybox.spec.yaml', 'targets/greet.spec.yaml', 'image.yaml']) {
        utimesSync(join(second.dir, file), later, later);
      }
      const build = await second.redo(['image.tar', 'image.oci.tar'], { env: { ...env(), TZ: 'Pacific/Kiritimati', LC_ALL: 'C' }, umask: 0o077 });
      expect(build.status, build.stderr).toBe(0);
      for (const output of outputs) expect(second.sha256(output), output).toBe(first.sha256(output));
    } finally {
      second.remove();
    }
  });

  it('rebuilds only the app layer and the image when the app changes, nothing on a touch', async () => {
    const busyboxBefore = first.sha256('targets/busybox.fragment.tar');
    const busyboxMtime = statSync(join(first.dir, 'targets/busybox.fragment.tar')).mtimeMs;
    const imageBefore = first.sha256('image.tar');

    const touchedAt = Date.now() / 1000 + 10;
    utimesSync(join(first.dir, 'app/greet.sh'), touchedAt, touchedAt);
    const touched = await first.redo(['image.tar'], { env: env() });
    expect(touched.status, touched.stderr).toBe(0);
    expect(rebuiltTargets(touched.stderr)).toEqual([]);

    const source = readFileSync(join(first.dir, 'app/greet.sh'), 'utf8');
    writeFileSync(join(first.dir, 'app/greet.sh'), source.replace('Hello, $name,', 'Good morning, $name,'));
    const changed = await first.redo(['image.tar'], { env: env() });
    expect(changed.status, changed.stderr).toBe(0);
    expect(rebuiltTargets(changed.stderr)).toEqual(['image.image.json', 'image.tar', 'targets/greet.fragment.tar']);
    expect(changed.stderr).toMatch(/^redo\s+targets\/greet\.fragment\.tar\s+\(.*app\/greet\.sh/m);
    expect(first.sha256('targets/busybox.fragment.tar')).toBe(busyboxBefore);
    expect(statSync(join(first.dir, 'targets/busybox.fragment.tar')).mtimeMs).toBe(busyboxMtime);
    expect(first.sha256('image.tar')).not.toBe(imageBefore);

    const inspect = runTool('skopeo', ['inspect', `docker-archive:${join(first.dir, 'image.tar')}`]);
    const layers = (JSON.parse(inspect.stdout) as { Layers: string[] }).Layers;
    expect(layers[0]).toBe(`sha256:${busyboxBefore}`);

    const load = podman.podman(['load', '-i', join(first.dir, 'image.tar')]);
    expect(load.status, load.stderr).toBe(0);
    const run = podman.podman(['run', ...podman.runArgs, 'localhost/redo-ts/hello:latest', 'reader']);
    expect(run.stdout.split('\n')[0]).toBe('Good morning, reader, from an image built by redo-ts!');
  });

  it.skipIf(!hasStrace)('an edit of the app starts only the spawner, the sandbox and its shell: no dpkg, no mkfifo', () => {
    const source = readFileSync(join(first.dir, 'app/greet.sh'), 'utf8');
    writeFileSync(join(first.dir, 'app/greet.sh'), source.replace('Good morning, $name,', 'Good evening, $name,'));
    const edit = traced(first.dir, 'execve', ['image.tar'], env());
    expect(edit.status, edit.stderr).toBe(0);
    expect(rebuiltTargets(edit.stderr)).toEqual(['image.image.json', 'image.tar', 'targets/greet.fragment.tar']);
    // node itself, the rule spawner (sh), bwrap and the build step's sh: the machine's
    // architecture is not asked of dpkg (the list names none) and no FIFO is made (no sh rule).
    expect(programsStarted(edit.lines)).toEqual([node, 'sh', 'bwrap', 'sh']);
    writeFileSync(join(first.dir, 'app/greet.sh'), source);
  });

  it('reports a deleted app source once, with its chain, and keeps the previous image', async () => {
    const before = first.sha256('image.tar');
    rmSync(join(first.dir, 'app/greet.sh'));
    const result = await first.redo(['image.tar'], { env: env() });
    expect(result.status).toBe(1);
    expect(result.stderr.match(/^redo: .*$/gm)).toEqual(['redo: "app/greet.sh": no rule to build it and no such file']);
    expect(result.stderr).toContain('  chain: image.tar → image.image.json → targets/greet.fragment.tar → app/greet.sh');
    expect(first.sha256('image.tar')).toBe(before);
  });
});
