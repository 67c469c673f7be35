// Real clients accept what we write: skopeo, umoci, oci-image-tool, podman (load and run) and a loopback registry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  collectEntries,
  parseMetadata,
  partitionEntries,
  writeTar,
  writeDockerArchive,
  writeOciLayout,
  type ImageResult,
  type ImageConfig,
} from '../../lib/index.js';
import { createPrivatePodman, hasTool, runTool, startRegistry, type PrivatePodman } from '../helpers/clients.js';

const busybox = '/bin/busybox';
const tools = ['skopeo', 'umoci', 'oci-image-tool', 'podman', 'runc', 'docker-registry'];
const missing = tools.filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`image client tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);

let dir: string;
let rootfs: string;
let docker: ImageResult;
let oci: ImageResult;
const metadataText = ['/etc/greeting 0640 0 0', '/tmp 1777 0 0', '/home/app/** 0750 1000 1000', '/home/app/notes 0600 1000 1000', ''].join('\n');
const config: ImageConfig = {
  architecture: 'amd64',
  os: 'linux',
  cmd: ['/bin/cat', '/etc/greeting'],
  env: ['PATH=/bin'],
  workingDir: '/home/app',
  labels: { 'org.opencontainers.image.title': 'redo-ts client test' },
  history: ['busybox', 'files'],
};

beforeAll(async () => {
  if (missing.length > 0) return;
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-clients-'));
  rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(rootfs, 'etc'));
  mkdirSync(join(rootfs, 'tmp'));
  mkdirSync(join(rootfs, 'home/app'), { recursive: true });
  copyFileSync(busybox, join(rootfs, 'bin/busybox'));
  for (const applet of ['sh', 'cat', 'ls', 'echo']) symlinkSync('busybox', join(rootfs, 'bin', applet));
  writeFileSync(join(rootfs, 'etc/greeting'), 'hello from redo-ts\n');
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  writeFileSync(join(rootfs, 'home/app/notes'), 'private\n');
  linkSync(join(rootfs, 'home/app/notes'), join(rootfs, 'home/app/notes-link'));
  symlinkSync('/etc/passwd', join(rootfs, 'home/app/passwd'));

  const entries = collectEntries(rootfs, { metadata: parseMetadata(metadataText, 'metadata') });
  const [bin, rest] = partitionEntries(entries, [['bin/**'], []]);
  await writeTar(bin!, join(dir, 'bin.layer'), { mtimeSeconds: 0 });
  await writeTar(rest!, join(dir, 'rest.layer'), { mtimeSeconds: 0 });
  const layers = [join(dir, 'bin.layer'), join(dir, 'rest.layer')];
  docker = await writeDockerArchive({ layers, config, repoTags: ['localhost/redo-ts-test:latest'] }, join(dir, 'image.tar'));
  await writeDockerArchive({ layers, config, repoTags: ['localhost/redo-ts-test:gzip'], gzip: true }, join(dir, 'image-gzip.tar'));
  oci = await writeOciLayout({ layers, config, refName: 'latest', gzip: true }, join(dir, 'image.oci'));
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Type, mode, owner and link target of every path below `root`, for comparing unpacked trees. */
function describeTree(root: string): string[] {
  const lines: string[] = [];
  const walk = (relative: string) => {
    for (const name of (readdirSorted(join(root, relative)))) {
      const path = relative === '' ? name : `${relative}/${name}`;
      const stats = lstatSync(join(root, path));
      const kind = stats.isDirectory() ? 'd' : stats.isSymbolicLink() ? `l->${readlinkSync(join(root, path))}` : 'f';
      const size = stats.isFile() ? ` ${stats.size}` : '';
      lines.push(`${path} ${kind} ${(stats.mode & 0o7777).toString(8)}${size}`);
      if (stats.isDirectory()) walk(path);
    }
  };
  walk('');
  return lines;
}

function readdirSorted(path: string): string[] {
  return readdirSync(path).sort();
}

const describeIf = missing.length === 0 ? describe : describe.skip;

describeIf('skopeo', () => {
  it('inspects the docker archive: layers are our diffIDs, created is the epoch', () => {
    const info = JSON.parse(runTool('skopeo', ['inspect', `docker-archive:${join(dir, 'image.tar')}`]).stdout);
    expect(info.Layers).toEqual(docker.diffIds);
    expect(info.Created).toBe('1970-01-01T00:00:00Z');
    expect(info.Architecture).toBe('amd64');
    expect(info.Env).toEqual(['PATH=/bin']);
    const gz = JSON.parse(runTool('skopeo', ['inspect', `docker-archive:${join(dir, 'image-gzip.tar')}`]).stdout);
    expect(gz.Layers.length).toBe(2);
  });

  it('inspects the OCI layout: the manifest digest is ours', () => {
    const info = JSON.parse(runTool('skopeo', ['inspect', `oci:${join(dir, 'image.oci')}:latest`]).stdout);
    expect(info.Digest).toBe(oci.manifestDigest);
    expect(info.Layers).toEqual(oci.layerDigests);
  });
});

describeIf('umoci and oci-image-tool', () => {
  const expected = () =>
    describeTree(rootfs).map((line) =>
      line
        .replace(/^etc\/greeting f \d+/, 'etc/greeting f 640')
        .replace(/^tmp d \d+/, 'tmp d 1777')
        .replace(/^home\/app d \d+/, 'home/app d 750')
        .replace(/^home\/app\/notes f \d+/, 'home/app/notes f 600')
        .replace(/^home\/app\/notes-link f \d+/, 'home/app/notes-link f 600')
        .replace(/^(bin\/busybox|etc\/passwd) f \d+/, (m, p: string) => `${p} f ${p === 'bin/busybox' ? '755' : '644'}`)
        .replace(/^(bin|etc|home) d \d+/, '$1 d 755'),
    );

  it('skopeo copies the docker archive to an OCI layout that umoci unpacks to the same files, modes and links', () => {
    const layout = join(dir, 'copied.oci');
    runTool('skopeo', ['copy', `docker-archive:${join(dir, 'image.tar')}`, `oci:${layout}:tag`]);
    runTool('oci-image-tool', ['validate', '--type', 'image', layout]);
    const bundle = join(dir, 'bundle-copied');
    runTool('umoci', ['unpack', '--rootless', '--image', `${layout}:tag`, bundle]);
    expect(describeTree(join(bundle, 'rootfs'))).toEqual(expected());
  });

  it('umoci unpacks our own OCI layout (checking diff_ids and sizes) to the same tree', () => {
    const bundle = join(dir, 'bundle-ours');
    runTool('umoci', ['unpack', '--rootless', '--image', `${join(dir, 'image.oci')}:latest`, bundle]);
    expect(describeTree(join(bundle, 'rootfs'))).toEqual(expected());
    const runtime = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    expect(runtime.process.args).toEqual(config.cmd);
    expect(runtime.process.cwd).toBe('/home/app');
  });

  it('oci-image-tool validates our OCI layout', () => {
    expect(runTool('oci-image-tool', ['validate', '--type', 'image', join(dir, 'image.oci')]).stdout).toContain('Validation succeeded');
  });
});

describeIf('podman', () => {
  let podman: PrivatePodman;
  beforeAll(() => {
    podman = createPrivatePodman();
  });
  afterAll(() => podman?.remove());

  it('loads the docker archive and runs it, printing the greeting', () => {
    expect(podman.podman(['load', '-i', join(dir, 'image.tar')]).stdout).toContain('localhost/redo-ts-test:latest');
    const run = podman.podman(['run', ...podman.runArgs, 'localhost/redo-ts-test:latest']);
    expect(run.stdout).toBe('hello from redo-ts\n');
  });

  it('loads the gzip docker archive and runs it with ownership and modes from the metadata', () => {
    podman.podman(['load', '-i', join(dir, 'image-gzip.tar')]);
    const run = podman.podman(['run', ...podman.runArgs, 'localhost/redo-ts-test:gzip', '/bin/ls', '-ln', '/home/app/notes', '/etc/greeting']);
    expect(run.stdout).toMatch(/-rw-r-----\s+1 0\s+0\s+19 .* \/etc\/greeting/);
    expect(run.stdout).toMatch(/-rw-------\s+2 1000\s+1000\s+8 .* \/home\/app\/notes/);
  });
});

describeIf('docker-registry on 127.0.0.1', () => {
  it('accepts a push of the docker archive and of the OCI layout, and gives the same image back', async () => {
    const registry = await startRegistry();
    try {
      const remote = `docker://${registry.address}/redo-ts/test`;
      runTool('skopeo', ['copy', '--dest-tls-verify=false', `docker-archive:${join(dir, 'image.tar')}`, `${remote}:archive`]);
      runTool('skopeo', ['copy', '--dest-tls-verify=false', `oci:${join(dir, 'image.oci')}:latest`, `${remote}:oci`]);
      const archiveManifest = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `${remote}:archive`]).stdout);
      expect(archiveManifest.config.digest).toBe(docker.configDigest);
      const ociManifest = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `${remote}:oci`]).stdout);
      expect(ociManifest.layers.map((l: { digest: string }) => l.digest)).toEqual(oci.layerDigests);
      const pulled = join(dir, 'pulled.oci');
      runTool('skopeo', ['copy', '--src-tls-verify=false', `${remote}:oci`, `oci:${pulled}:back`]);
      const info = JSON.parse(runTool('skopeo', ['inspect', `oci:${pulled}:back`]).stdout);
      expect(info.Digest).toBe(oci.manifestDigest);
    } finally {
      await registry.stop();
    }
  });
});
