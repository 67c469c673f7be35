// The distribution protocol client against a real loopback docker-registry: chunked
// uploads, cross-repository mounts, rejected manifests, corrupted blobs, bearer tokens.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MAX_MANIFEST_BYTES, RegistryClient } from '../../../lib/registry/client.js';
import { isRedoError, type RedoError } from '../../../lib/errors.js';
import { startHostileRegistry, type HostileRegistry } from '../../helpers/hostile-registry.js';
import { hasTool, startRegistry, type LoopbackRegistry } from '../../helpers/clients.js';
import { startTokenServer, type TokenServer } from '../../helpers/token-server.js';

const missing = ['docker-registry', 'openssl'].filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`registry client tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const streamOf = (bytes: Buffer) => ({ sizeBytes: bytes.length, open: () => Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]) });

async function caught(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describeIf('RegistryClient against docker-registry', () => {
  let registry: LoopbackRegistry;
  let dir: string;
  beforeAll(async () => {
    registry = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'redo-ts-client-'));
  });
  afterAll(async () => {
    await registry?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('uploads in PATCH chunks, then HEAD finds the blob and GET gives the same bytes', async () => {
    const client = new RegistryClient(registry.address, { env: {}, chunkSizeBytes: 64 << 10 });
    const bytes = randomBytes(300_000);
    const digest = sha256(bytes);
    expect(await client.hasBlob('chunks/a', digest)).toBeUndefined();
    const sentBefore = client.bytesSent;
    expect(await client.pushBlob('chunks/a', digest, streamOf(bytes))).toBe('uploaded');
    expect(client.bytesSent - sentBefore).toBe(bytes.length);
    expect(await client.hasBlob('chunks/a', digest)).toBe(bytes.length);
    expect(await client.pushBlob('chunks/a', digest, streamOf(bytes))).toBe('skipped');
    expect(await client.fetchBlob('chunks/a', digest, join(dir, 'back'), bytes.length)).toBe(bytes.length);
    expect(readFileSync(join(dir, 'back')).equals(bytes)).toBe(true);
    client.close();
  });

  it('a blob larger than the 4 MiB reply bound is still found by HEAD and fetched whole', async () => {
    const client = new RegistryClient(registry.address, { env: {} });
    const bytes = randomBytes(MAX_MANIFEST_BYTES + 12345);
    const digest = sha256(bytes);
    expect(await client.pushBlob('large/a', digest, streamOf(bytes))).toBe('uploaded');
    expect(await client.hasBlob('large/a', digest)).toBe(bytes.length);
    expect(await client.fetchBlob('large/a', digest, join(dir, 'large'), bytes.length)).toBe(bytes.length);
    expect(readFileSync(join(dir, 'large')).equals(bytes)).toBe(true);
    client.close();
  });

  it('mounts a blob from another repository instead of uploading it', async () => {
    const client = new RegistryClient(registry.address, { env: {} });
    const bytes = randomBytes(5000);
    const digest = sha256(bytes);
    expect(await client.pushBlob('mount/source', digest, bytes)).toBe('uploaded');
    const sent = client.bytesSent;
    expect(await client.pushBlob('mount/target', digest, bytes, 'mount/source')).toBe('mounted');
    expect(client.bytesSent).toBe(sent);
    expect(await client.hasBlob('mount/target', digest)).toBe(bytes.length);
    client.close();
  });

  it('a manifest naming a blob the registry lacks is rejected with the registry\'s reason', async () => {
    const client = new RegistryClient(registry.address, { env: {}, label: `${registry.address}/bad/app:1` });
    const config = Buffer.from('{}');
    await client.pushBlob('bad/app', sha256(config), config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${'0'.repeat(64)}`, size: 10 }],
    }));
    const error = await caught(client.putManifest('bad/app', '1', 'application/vnd.oci.image.manifest.v1+json', manifest));
    expect(isRedoError(error, 'ERR_REGISTRY_REJECTED')).toBe(true);
    const rendered = (error as { render(): string }).render();
    expect(rendered).toContain(`redo: "${registry.address}/bad/app:1": the registry answered 400 to PUT /v2/bad/app/manifests/1`);
    expect(rendered).toContain('registry: MANIFEST_BLOB_UNKNOWN');
    client.close();
  });

  it('a blob whose stored bytes were altered is refused and not left on disk', async () => {
    const client = new RegistryClient(registry.address, { env: {} });
    const bytes = Buffer.from('the real content of a blob\n');
    const digest = sha256(bytes);
    await client.pushBlob('corrupt/app', digest, bytes);
    const stored = join(registry.storageDir, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
    writeFileSync(stored, 'the fake content of a blob\n');
    const target = join(dir, 'corrupt');
    const error = await caught(client.fetchBlob('corrupt/app', digest, target, bytes.length));
    expect(isRedoError(error, 'ERR_REGISTRY_DIGEST')).toBe(true);
    expect((error as { details: string[] }).details).toEqual([
      `wanted: ${digest} (${bytes.length} bytes)`,
      `found:  ${sha256(Buffer.from('the fake content of a blob\n'))} (${bytes.length} bytes)`,
      'nothing was recorded or used',
    ]);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(dir)).not.toContain('corrupt');
    client.close();
  });
});

describeIf('RegistryClient with bearer tokens', () => {
  let tokens: TokenServer;
  let registry: LoopbackRegistry;
  let dir: string;
  beforeAll(async () => {
    tokens = await startTokenServer('robot', 'pa55');
    registry = await startRegistry({ token: tokens });
    dir = mkdtempSync(join(tmpdir(), 'redo-ts-token-client-'));
  });
  afterAll(async () => {
    await registry?.stop();
    await tokens?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('fetches a token for the repository scope with the auth file\'s credentials, then pushes and pulls', async () => {
    const authFile = join(dir, 'auth.json');
    writeFileSync(authFile, JSON.stringify({ auths: { [`${registry.address}/team`]: { auth: Buffer.from('robot:pa55').toString('base64') } } }));
    const client = new RegistryClient(registry.address, { env: { REGISTRY_AUTH_FILE: authFile, HOME: dir } });
    const bytes = randomBytes(2000);
    const digest = sha256(bytes);
    expect(await client.pushBlob('team/app', digest, bytes)).toBe('uploaded');
    expect(await client.fetchBlob('team/app', digest, join(dir, 'pulled'))).toBe(2000);
    expect(tokens.requests.some((r) => r.user === 'robot' && r.scopes.includes('repository:team/app:pull,push'))).toBe(true);
    client.close();
  });

  it('without credentials the token grants nothing: 401 naming the files tried', async () => {
    const client = new RegistryClient(registry.address, { env: { HOME: dir }, label: `${registry.address}/team/app` });
    const error = await caught(client.hasBlob('team/app', `sha256:${'1'.repeat(64)}`));
    expect(isRedoError(error, 'ERR_REGISTRY_AUTH')).toBe(true);
    const rendered = (error as { render(): string }).render();
    expect(rendered).toContain('the registry refused access (401 Unauthorized)');
    expect(rendered).toContain(`credentials: none for ${registry.address} in: ${join(dir, '.config/containers/auth.json')}, ${join(dir, '.docker/config.json')}`);
    client.close();
  });
});

describe('RegistryClient against a server that never answers', () => {
  it('gives up after its timeout with ERR_REGISTRY_UNREACHABLE naming the registry', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const client = new RegistryClient(`127.0.0.1:${port}`, { env: {}, timeoutMs: 300 });
      const error = await caught(client.hasBlob('silent/app', `sha256:${'2'.repeat(64)}`));
      expect(isRedoError(error, 'ERR_REGISTRY_UNREACHABLE')).toBe(true);
      expect((error as { render(): string }).render()).toContain(`cannot reach the registry at http://127.0.0.1:${port}\n  ETIMEDOUT: no answer for 0.3 s`);
      client.close();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('RegistryClient against a hostile registry: every reply is bounded', () => {
  let hostile: HostileRegistry | undefined;
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'redo-ts-hostile-client-'));
  });
  afterEach(async () => {
    await hostile?.stop();
    hostile = undefined;
  });
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('an endless manifest is cut off past 4 MiB with ERR_REGISTRY_REJECTED', async () => {
    hostile = await startHostileRegistry({ kind: 'endless-manifest' });
    const client = new RegistryClient(hostile.address, { env: {} });
    const error = await caught(client.getManifest(hostile.repository, 'latest'));
    client.close();
    expect(isRedoError(error, 'ERR_REGISTRY_REJECTED')).toBe(true);
    expect((error as RedoError).render()).toContain([
      `redo: "${hostile.address}": the reply to GET /v2/${hostile.repository}/manifests/latest is larger than a manifest may be`,
      `  wanted: at most ${MAX_MANIFEST_BYTES} bytes (distribution refuses larger manifests)`,
      `  found:  more than ${MAX_MANIFEST_BYTES} bytes, and still coming`,
    ].join('\n'));
    expect(hostile.sentBytes()).toBeLessThan(64 * MAX_MANIFEST_BYTES);
  }, 20_000);

  it('a manifest trickled a byte at a time fails at the total deadline though it is never idle', async () => {
    hostile = await startHostileRegistry({ kind: 'trickle-manifest', intervalMs: 100 });
    const client = new RegistryClient(hostile.address, { env: {}, timeoutMs: 1000, deadlineMs: 1500 });
    const started = Date.now();
    const error = await caught(client.getManifest(hostile.repository, 'latest'));
    client.close();
    expect(isRedoError(error, 'ERR_REGISTRY_UNREACHABLE')).toBe(true);
    expect((error as RedoError).render()).toContain('ETIMEDOUT: not done after 1.5 s in all');
    expect(Date.now() - started).toBeLessThan(8000);
  }, 20_000);

  it('an endless blob stops one byte past its descriptor size, and no partial file is left', async () => {
    hostile = await startHostileRegistry({ kind: 'endless-blob', intervalMs: 0 });
    const client = new RegistryClient(hostile.address, { env: {} });
    const target = join(dir, 'layer');
    const error = await caught(client.fetchBlob(hostile.repository, hostile.layerDigest, target, 727));
    client.close();
    expect(isRedoError(error, 'ERR_REGISTRY_DIGEST')).toBe(true);
    expect((error as RedoError).render()).toContain([
      `redo: "${hostile.address}/${hostile.repository}@${hostile.layerDigest}": the blob the registry sent is longer than its descriptor says`,
      `  wanted: ${hostile.layerDigest} (727 bytes)`,
      '  found:  more than 727 bytes, and still coming',
      '  the download was cut off and removed; nothing was recorded or used',
    ].join('\n'));
    expect(existsSync(target)).toBe(false);
  }, 20_000);

  it('credentials are not sent to a plain-HTTP token realm on another host', async () => {
    hostile = await startHostileRegistry({ kind: 'plain-realm' });
    const authFile = join(dir, 'auth.json');
    writeFileSync(authFile, JSON.stringify({ auths: { [hostile.address]: { auth: Buffer.from('robot:s3cret').toString('base64') } } }));
    const client = new RegistryClient(hostile.address, { env: { REGISTRY_AUTH_FILE: authFile, HOME: dir } });
    const error = await caught(client.getManifest(hostile.repository, 'latest'));
    client.close();
    expect(hostile.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
    expect(isRedoError(error, 'ERR_REGISTRY_AUTH')).toBe(true);
    expect((error as RedoError).render()).toContain(`credentials: user "robot" from ${authFile}, not sent`);
  }, 20_000);
});
