/**
 * A hostile registry for the trust tests: a loopback HTTP server that speaks just
 * enough of the distribution protocol to serve one pinned image, then misbehaves:
 * an endless manifest, a manifest trickled a byte at a time, an endless layer blob, or
 * a Bearer challenge naming a plain-HTTP token realm on another host name.
 */

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How the server misbehaves. */
export type HostileBehaviour =
  /** Every manifest GET answers 200 and never stops sending. */
  | { kind: 'endless-manifest' }
  /** Every manifest GET answers 200 and sends one byte every `intervalMs`, forever. */
  | { kind: 'trickle-manifest'; intervalMs: number }
  /** Manifest and config are right; the layer blob (727 bytes by its descriptor) never ends: 64 KiB chunks as fast as it drains, or (intervalMs > 0) one byte per interval. */
  | { kind: 'endless-blob'; intervalMs: number }
  /** Every request gets 401 with `Bearer realm="http://localhost:PORT/token"`: the realm listens on 127.0.0.1, named by another host name. */
  | { kind: 'plain-realm' };

/** A running hostile registry. */
export interface HostileRegistry {
  /** `127.0.0.1:PORT`. */
  address: string;
  repository: string;
  /** Digest of the image manifest it serves (pin a base to `${address}/${repository}@${manifestDigest}`). */
  manifestDigest: string;
  /** Digest of the endless layer. */
  layerDigest: string;
  /** Every request to the registry and to the realm: method, path and Authorization header. */
  requests: { server: 'registry' | 'realm'; method: string; path: string; authorization: string | undefined }[];
  /** Bytes written into endless or trickled bodies so far. */
  sentBytes(): number;
  /** Closes both servers and destroys every open connection. */
  stop(): Promise<void>;
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const digestOf = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Starts a hostile registry with `behaviour` on 127.0.0.1 (a second listener for the realm). */
export async function startHostileRegistry(behaviour: HostileBehaviour): Promise<HostileRegistry> {
  const repository = 'hostile/base';
  const layerBytes = Buffer.alloc(727, 7);
  const layerDigest = digestOf(layerBytes);
  const config = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] }, config: {} });
  const manifest = json({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layerBytes.length }],
  });
  const manifestDigest = digestOf(manifest);
  const requests: HostileRegistry['requests'] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let sent = 0;

  /** Writes `chunk` forever (every `intervalMs`, or whenever the socket drains) until the client goes away. */
  const endless = (response: ServerResponse, chunk: Buffer, intervalMs: number): void => {
    let isClosed = false;
    response.on('close', () => void (isClosed = true));
    const next = (): void => {
      if (isClosed) return;
      sent += chunk.length;
      const canGoOn = response.write(chunk);
      if (intervalMs > 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          next();
        }, intervalMs);
        timers.add(timer);
      } else if (canGoOn) setImmediate(next);
      else response.once('drain', next);
    };
    next();
  };

  const realmPort = await listen(createServer((request, response) => {
    requests.push({ server: 'realm', method: request.method ?? '', path: request.url ?? '', authorization: request.headers.authorization });
    response.writeHead(200, { 'content-type': 'application/json' }).end(json({ token: 'not-a-real-token' }));
  }), sockets);

  const registry = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = request.url ?? '';
    requests.push({ server: 'registry', method: request.method ?? '', path, authorization: request.headers.authorization });
    if (behaviour.kind === 'plain-realm') {
      response.writeHead(401, { 'www-authenticate': `Bearer realm="http://localhost:${realmPort.port}/token",service="hostile"` }).end();
      return;
    }
    if (path.startsWith(`/v2/${repository}/manifests/`)) {
      if (behaviour.kind === 'endless-manifest') {
        response.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        endless(response, Buffer.alloc(64 * 1024, 0x20), 0);
      } else if (behaviour.kind === 'trickle-manifest') {
        response.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        endless(response, Buffer.from(' '), behaviour.intervalMs);
      } else {
        response.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': manifest.length }).end(manifest);
      }
      return;
    }
    if (path === `/v2/${repository}/blobs/${digestOf(config)}`) {
      response.writeHead(200, { 'content-length': config.length }).end(config);
      return;
    }
    if (path === `/v2/${repository}/blobs/${layerDigest}`) {
      // No Content-Length: the body simply never ends.
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Fast: 64 KiB chunks as the socket drains; slow: one byte per interval.
      const intervalMs = behaviour.kind === 'endless-blob' ? behaviour.intervalMs : 0;
      endless(response, intervalMs > 0 ? Buffer.from([7]) : Buffer.alloc(64 * 1024, 7), intervalMs);
      return;
    }
    response.writeHead(404).end();
  });
  const registryPort = await listen(registry, sockets);

  return {
    address: `127.0.0.1:${registryPort.port}`,
    repository,
    manifestDigest,
    layerDigest,
    requests,
    sentBytes: () => sent,
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await Promise.all([registryPort.close(), realmPort.close()]);
    },
  };
}

async function listen(server: Server, sockets: Set<Socket>): Promise<{ port: number; close(): Promise<void> }> {
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
