/** A small bearer-token server for docker-registry's `auth: token` (RS256 JWTs signed with a throwaway key). */

import { createSign, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from './clients.js';

/** A running token server: its realm URL, the cert the registry trusts, and every scope it was asked for. */
export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  requests: { user: string | undefined; scopes: string[] }[];
  stop(): Promise<void>;
}

const base64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/**
 * Starts a token server on 127.0.0.1: a request with Basic `user:password` gets a JWT
 * granting the scopes it asked for; anyone else gets a token granting nothing (as real
 * token servers do for anonymous pulls), so the registry then answers 401.
 */
export async function startTokenServer(user: string, password: string): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'redo-ts-token-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  runTool('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=redo-ts-test-token']);
  const key = readFileSync(keyPath, 'utf8');
  const certDer = Buffer.from(readFileSync(certPath, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const service = 'redo-ts-test-registry';
  const issuer = 'redo-ts-test-issuer';
  const requests: TokenServer['requests'] = [];
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const scopes = url.searchParams.getAll('scope');
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString('utf8') : undefined;
    const isKnown = given === `${user}:${password}`;
    requests.push({ user: given?.split(':')[0], scopes });
    const now = Math.floor(Date.now() / 1000);
    const access = isKnown
      ? scopes.map((scope) => {
          const [type, name, actions] = scope.split(':');
          return { type, name, actions: (actions ?? '').split(',') };
        })
      : [];
    const claims = { iss: issuer, sub: given?.split(':')[0] ?? '', aud: service, exp: now + 600, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const head = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const signingInput = `${base64url(JSON.stringify(head))}.${base64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(key);
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ token: `${signingInput}.${base64url(signature)}` }));
  });
  // Port 0: the kernel's choice, held from the start (a port found free, then bound, could be another test file's by then).
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    stop: async () => {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
