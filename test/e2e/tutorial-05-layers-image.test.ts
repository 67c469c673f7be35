// Tutorial chapter 5 (layers and an image): two fragments become two layers of a
// `docker load`-able image; podman loads and runs it; an edit of the program rebuilds
// only the top layer and leaves the busybox layer's bytes and digest as they were.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPrivatePodman, runTool } from '../helpers/clients.js';
import { copyChapter, rebuiltTargets, sha256Of, shownFiles } from '../helpers/tutorial.js';

const chapter = '05-layers-image';
const copy = copyChapter(chapter);
const cache = mkdtempSync(join(tmpdir(), 'redo-ts-tutorial-05-cache-'));
const env = { REDO_TS_CACHE: cache };
const podman = createPrivatePodman();
const image = 'localhost/tutorial/hello:latest';
afterAll(() => {
  copy.remove();
  podman.remove();
  rmSync(cache, { recursive: true, force: true });
});

/** The layer digests skopeo reads from the docker archive. */
function layersOf(archive: string): string[] {
  const inspect = runTool('skopeo', ['inspect', `docker-archive:${archive}`]);
  return (JSON.parse(inspect.stdout) as { Layers: string[] }).Layers;
}

describe('tutorial chapter 5: layers and an image', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual(['all.do', 'build-environment.spec.yaml', 'busybox.spec.yaml', 'hello.c', 'hello.spec.yaml', 'hello.yaml', 'toolchain.spec.yaml']);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('builds both fragments, the docker archive and the OCI layout', async () => {
    const result = await copy.redo(['all'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['all', 'build-environment.fragment.tar', 'busybox.fragment.tar', 'hello.fragment.tar', 'hello.image.json', 'hello.oci.tar', 'hello.tar', 'toolchain.fragment.tar']);
    // hello.c was compiled by the toolchain spec's locked gcc, in the sandbox.
    expect(result.stderr).toContain('fragment: build steps ran in the sandbox over environment');
    expect(result.stderr).toContain('(build-environment.spec.yaml, toolchain.spec.yaml)');
    const members = runTool('tar', ['-tf', join(copy.dir, 'hello.tar')]).stdout.trim().split('\n');
    const busybox = sha256Of(join(copy.dir, 'busybox.fragment.tar'));
    const hello = sha256Of(join(copy.dir, 'hello.fragment.tar'));
    expect(members).toContain(`${busybox.slice('sha256:'.length)}.tar`);
    expect(members).toContain(`${hello.slice('sha256:'.length)}.tar`);
    expect(members).toContain('manifest.json');
    expect(members).toHaveLength(4);
    expect(statSync(join(copy.dir, 'hello.oci.tar')).size).toBeGreaterThan(0);
  });

  it('has one layer per fragment, bottom first, whose digest is the fragment file\'s sha256', () => {
    expect(layersOf(join(copy.dir, 'hello.tar'))).toEqual([
      sha256Of(join(copy.dir, 'busybox.fragment.tar')),
      sha256Of(join(copy.dir, 'hello.fragment.tar')),
    ]);
    const oci = runTool('skopeo', ['inspect', `oci-archive:${join(copy.dir, 'hello.oci.tar')}:latest`]);
    expect((JSON.parse(oci.stdout) as { Layers: string[] }).Layers).toEqual(layersOf(join(copy.dir, 'hello.tar')));
  });

  it('loads into podman and runs the program; busybox is there for a shell', () => {
    const load = podman.podman(['load', '-i', join(copy.dir, 'hello.tar')]);
    expect(load.stdout).toContain(`Loaded image: ${image}`);
    expect(podman.podman(['run', ...podman.runArgs, image]).stdout).toBe('Hello, World!\n');
    const listing = podman.podman(['run', ...podman.runArgs, '--entrypoint', '/bin/sh', image, '-c', 'ls /bin /usr/bin']);
    expect(listing.stdout).toBe('/bin:\nbusybox\ncat\nls\nsh\n\n/usr/bin:\nhello\n');
  });

  it('runs nothing on a second build', async () => {
    const result = await copy.redo(['all'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual([]);
  });

  it('rebuilds only the top layer and the image after an edit of hello.c', async () => {
    const busyboxBefore = sha256Of(join(copy.dir, 'busybox.fragment.tar'));
    const busyboxMtimeMs = statSync(join(copy.dir, 'busybox.fragment.tar')).mtimeMs;
    const helloBefore = sha256Of(join(copy.dir, 'hello.fragment.tar'));
    copy.write('hello.c', copy.read('hello.c').replace('Hello, World!', 'Hello, layers!'));
    const result = await copy.redo(['all'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['all', 'hello.fragment.tar', 'hello.image.json', 'hello.oci.tar', 'hello.tar']);
    expect(result.stderr).toMatch(/^redo {2}hello\.fragment\.tar {2}\(changed: hello\.c\)/m);
    expect(statSync(join(copy.dir, 'busybox.fragment.tar')).mtimeMs).toBe(busyboxMtimeMs);
    const layers = layersOf(join(copy.dir, 'hello.tar'));
    expect(layers[0]).toBe(busyboxBefore);
    expect(layers[1]).not.toBe(helloBefore);

    podman.podman(['load', '-i', join(copy.dir, 'hello.tar')]);
    expect(podman.podman(['run', ...podman.runArgs, image]).stdout).toBe('Hello, layers!\n');
  });
});
