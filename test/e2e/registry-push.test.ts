// `redo-ts push` against a loopback docker-registry: only missing blobs go up, the
// pushed digest is the layout's, credentials come from auth files, errors name the reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { blobActions, layoutDigest, registryFixture } from '../helpers/registry-fixtures.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProjectCopy } from '../helpers/project-copy.js';
import { freePort, hasTool, runTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';

const tools = ['docker-registry', 'skopeo', 'htpasswd'];
const missing = tools.filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`registry push tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

describeIf('redo-ts push', () => {
  let registry: LoopbackRegistry;
  let project: ProjectCopy;
  beforeAll(async () => {
    registry = await startRegistry();
    project = registryFixture();
  });
  afterAll(async () => {
    await registry?.stop();
    project?.remove();
  });

  it('uploads every blob the first time, none the second, and the pushed digest is the layout\'s', async () => {
    const reference = `${registry.address}/redo-ts/app:v1`;
    const first = await project.redo(['push', 'image.tar', reference]);
    expect(first.stderr).toContain('redo  image.image.json');
    // The push reads the image store: it writes no archive.
    expect(first.stderr).not.toContain('redo  image.oci.tar');
    expect(first.status).toBe(0);
    expect(blobActions(first.stdout)).toEqual(['uploaded config', 'uploaded layer 1', 'uploaded layer 2']);
    const digest = layoutDigest(project, 'image.oci.tar');
    expect(first.stdout).toContain(`pushed ${reference}@${digest}: 3 blobs uploaded`);

    const raw = runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reference}`]).stdout;
    const manifestBytes = runTool('tar', ['-xOf', join(project.dir, 'image.oci.tar'), `blobs/sha256/${digest.slice(7)}`]).stdout;
    expect(raw).toBe(manifestBytes);

    const second = await project.redo(['push', 'image.tar', reference]);
    expect(second.status).toBe(0);
    expect(second.stderr).toBe('');
    expect(blobActions(second.stdout)).toEqual(['skipped config', 'skipped layer 1', 'skipped layer 2']);
    expect(second.stdout).toContain(`pushed ${reference}@${digest}: 0 blobs uploaded (0 B), 3 skipped`);
  });

  it('to another repository of the same registry, mounts every blob an earlier push put there instead of uploading it', async () => {
    const reference = `${registry.address}/redo-ts/mirror:v1`;
    const pushed = await project.redo(['push', 'image.tar', reference]);
    expect(pushed.status, pushed.stderr).toBe(0);
    expect(blobActions(pushed.stdout)).toEqual(['mounted config', 'mounted layer 1', 'mounted layer 2']);
    expect(pushed.stdout).toContain(`pushed ${reference}@${layoutDigest(project, 'image.oci.tar')}: 0 blobs uploaded (0 B), 3 mounted`);
    const info = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${reference}`]).stdout);
    expect(info.Layers).toHaveLength(2);
  });

  it('after a one-line edit of the app, uploads only the app layer and the config', async () => {
    writeFileSync(join(project.dir, 'app/etc/greeting'), 'hello again\n');
    const pushed = await project.redo(['push', 'image.tar', `${registry.address}/redo-ts/app:v2`]);
    expect(pushed.status).toBe(0);
    expect(blobActions(pushed.stdout)).toEqual(['uploaded config', 'skipped layer 1', 'uploaded layer 2']);
    expect(pushed.stdout).toContain(`@${layoutDigest(project, 'image.oci.tar')}: 2 blobs uploaded`);
    const info = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.address}/redo-ts/app:v2`]).stdout);
    expect(info.Digest).toBe(layoutDigest(project, 'image.oci.tar'));
  });

  it('a manifest the registry refuses (read-only maintenance mode): the error names the reference, the request and the registry\'s reason', async () => {
    // Same storage, so every blob is there and only the manifest PUT is a write.
    const readOnly = await startRegistry({ storageDir: registry.storageDir, isReadOnly: true });
    try {
      const reference = `${readOnly.address}/redo-ts/app:v3`;
      const result = await project.redo(['push', 'image.tar', reference]);
      expect(result.status).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(
        [
          `redo: "${reference}": the registry answered 405 to PUT /v2/redo-ts/app/manifests/v3`,
          '  registry: Method not allowed',
          '',
        ].join('\n'),
      );
    } finally {
      await readOnly.stop();
    }
  });

  it('refuses a reference without a registry host, saying how to write one', async () => {
    const result = await project.redo(['push', 'image.tar', 'app:latest']);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      [
        'redo: "app:latest": not a registry reference',
        '  no registry host: the reference has no "/"',
        '  hint: write HOST[:PORT]/REPOSITORY[:TAG], e.g. registry.example/team/app:1.0 or 127.0.0.1:5000/app',
        '',
      ].join('\n'),
    );
  });

  it('refuses a reference with a scheme before building anything', async () => {
    const fresh = registryFixture();
    try {
      const result = await fresh.redo(['push', 'image.tar', `http://${registry.address}/redo-ts/app`]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`redo: "http://${registry.address}/redo-ts/app": not a registry reference\n  a reference has no scheme: drop "http://"`);
      expect(existsSync(join(fresh.dir, 'image.oci.tar'))).toBe(false);
    } finally {
      fresh.remove();
    }
  });

  it('refuses a target that is not an image, naming the description it wanted', async () => {
    const result = await project.redo(['push', 'nope.tar', `${registry.address}/redo-ts/app`]);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      ['redo: "nope.tar": not an image target', '  wanted: an image description "nope.yaml"', '  hint: name an image target such as image.tar, built from NAME.yaml beside it', ''].join('\n'),
    );
  });

  it('says when the registry cannot be reached', async () => {
    const port = await freePort();
    const result = await project.redo(['push', 'image.tar', `127.0.0.1:${port}/redo-ts/app`]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`redo: "127.0.0.1:${port}/redo-ts/app": cannot reach the registry at http://127.0.0.1:${port}\n  ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port}\n  hint: check that the registry runs`);
  });
});

describeIf('redo-ts push with credentials', () => {
  let registry: LoopbackRegistry;
  let project: ProjectCopy;
  let home: string;
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: { user: 'ci', password: 's3cret' } });
    project = registryFixture();
    home = mkdtempSync(join(tmpdir(), 'redo-ts-home-'));
  });
  afterAll(async () => {
    await registry?.stop();
    project?.remove();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ HOME: home, XDG_RUNTIME_DIR: join(home, 'run'), REGISTRY_AUTH_FILE: '', DOCKER_CONFIG: '', ...extra });
  const authFile = (user: string, password: string): string => {
    const file = join(home, `auth-${user}-${password}.json`);
    writeFileSync(file, JSON.stringify({ auths: { [registry.address]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
    return file;
  };

  it('without credentials: 401, naming every file it looked in', async () => {
    const result = await project.redo(['push', 'image.tar', `${registry.address}/private/app`], { env: env() });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`redo: "${registry.address}/private/app": the registry refused access (401 Unauthorized)\n`);
    expect(result.stderr).toContain(`  credentials: none for ${registry.address} in: ${join(home, 'run/containers/auth.json')}, ${join(home, '.config/containers/auth.json')}, ${join(home, '.docker/config.json')}\n`);
    expect(result.stderr).toContain('  hint: log in (podman login');
  });

  it('with a wrong password from REGISTRY_AUTH_FILE: 401 naming that file and user', async () => {
    const file = authFile('ci', 'wrong');
    const result = await project.redo(['push', 'image.tar', `${registry.address}/private/app`], { env: env({ REGISTRY_AUTH_FILE: file }) });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`  credentials: user "ci" from ${file}\n`);
  });

  it('with the right password in ~/.docker/config.json: pushes, and skopeo reads it back with the same credentials', async () => {
    mkdirSync(join(home, '.docker'), { recursive: true });
    copyFileSync(authFile('ci', 's3cret'), join(home, '.docker', 'config.json'));
    const result = await project.redo(['push', 'image.tar', `${registry.address}/private/app:1`], { env: env() });
    expect(result.stderr).not.toContain('refused');
    expect(result.status).toBe(0);
    expect(blobActions(result.stdout)).toEqual(['uploaded config', 'uploaded layer 1', 'uploaded layer 2']);
    const info = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', '--creds', 'ci:s3cret', `docker://${registry.address}/private/app:1`]).stdout);
    expect(info.Digest).toBe(layoutDigest(project, 'image.oci.tar'));
    expect(readFileSync(join(home, '.docker', 'config.json'), 'utf8')).toContain('auths');
  });
});
