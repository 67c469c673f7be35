/**
 * The registry client: the one module that speaks the OCI distribution protocol over
 * HTTP(S), with Basic and Bearer-token authentication (distribution spec v1.1).
 */

import { createHash } from 'node:crypto';
import { createWriteStream, openSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RedoError } from '../errors.js';
import { downloadLimitFrom } from '../sources/fetch.js';
import { holdTemporary } from '../sources/scratch.js';
import { findCredentials, type CredentialsLookup } from './credentials.js';
import { isLoopbackHost } from './reference.js';

/** How a client reaches one registry. */
export interface RegistryClientOptions {
  /** Environment for credential files (HOME, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR). */
  env: NodeJS.ProcessEnv;
  /** Plain HTTP for a registry that is not on a loopback address (--insecure). */
  isInsecure?: boolean;
  /** Blobs larger than this are uploaded in PATCH chunks of this size (default 32 MiB). */
  chunkSizeBytes?: number;
  /** The reference the user gave, named in errors (defaults to the host). */
  label?: string;
  /** Idle time after which a request fails with ETIMEDOUT (default 120 s). */
  timeoutMs?: number;
  /**
   * Total time a request may take, idle or not (default 10 min); a request carrying or
   * fetching a blob of known size gets one more second per MIN_RATE_BYTES_PER_SECOND of it.
   */
  deadlineMs?: number;
}

/** The largest manifest, index or other buffered reply accepted: 4 MiB, what distribution itself refuses beyond. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** The slowest average rate a blob transfer is granted time for, beyond the deadline: 64 KiB/s. */
export const MIN_RATE_BYTES_PER_SECOND = 64 * 1024;
const DEFAULT_DEADLINE_MS = 10 * 60 * 1000;

/** A request body: bytes in memory, or a byte range reader (so a retry can reopen it). */
export type RequestBody = Buffer | { sizeBytes: number; open(): Readable };

interface RequestOptions {
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Token scopes this request needs, e.g. `repository:team/app:pull,push`. */
  scopes: string[];
  /** Statuses that are answers, not errors (others throw ERR_REGISTRY_REJECTED). */
  expect: number[];
  /** Reads the response body as a stream instead of buffering it (for blobs). */
  sink?: (response: http.IncomingMessage) => Promise<void>;
  /** Bytes the sink expects (a blob's size): extends the deadline, see deadlineMs. */
  expectedBytes?: number;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** What pushBlob did with one blob. */
export type BlobAction = 'skipped' | 'mounted' | 'uploaded';

/** Manifest media types a pull accepts, most capable first. */
export const manifestMediaTypes = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

/**
 * One registry host. Requests authenticate on demand: the first 401 names the scheme;
 * Basic sends the credentials found by findCredentials, Bearer fetches a token for the
 * request's scopes from the realm the registry names (with those credentials, or
 * anonymously), and tokens are reused per scope set. Credentials and tokens go only to
 * the registry's host (never along a redirect), and credentials to a realm only over
 * HTTPS or on the registry's own host. Every reply is bounded: see send and fetchBlob.
 */
export class RegistryClient {
  readonly host: string;
  readonly baseUrl: string;
  private readonly options: RegistryClientOptions;
  private readonly agent: http.Agent;
  private challenge: { scheme: string; params: Record<string, string> } | undefined;
  private readonly authorizations = new Map<string, string>();
  private credentialsLookup: CredentialsLookup | undefined;
  /** Bytes sent in request bodies so far (blobs and manifests), for reports. */
  bytesSent = 0;

  constructor(host: string, options: RegistryClientOptions) {
    this.host = host;
    this.options = options;
    const isPlain = isLoopbackHost(host) || options.isInsecure === true;
    this.baseUrl = `${isPlain ? 'http' : 'https'}://${host}`;
    this.agent = isPlain ? new http.Agent({ keepAlive: true, maxSockets: 8 }) : new https.Agent({ keepAlive: true, maxSockets: 8 });
  }

  /** Closes idle keep-alive connections (call when done). */
  close(): void {
    this.agent.destroy();
  }

  private get label(): string {
    return this.options.label ?? this.host;
  }

  private credentials(repository: string): CredentialsLookup {
    this.credentialsLookup ??= findCredentials(this.host, repository, this.options.env);
    return this.credentialsLookup;
  }

  /** Size of the blob if `repository` has it (HEAD), else undefined. */
  async hasBlob(repository: string, digest: string): Promise<number | undefined> {
    const reply = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`, { scopes: [pullPush(repository)], expect: [200, 404] });
    if (reply.status !== 200) return undefined;
    const length = Number(reply.headers['content-length']);
    return Number.isFinite(length) ? length : 0;
  }

  /**
   * Puts a blob into `repository` unless it is there: HEAD first (skipped), then a
   * cross-repository mount from `mountFrom` on the same registry when given (mounted),
   * else an upload (uploaded): monolithic (POST, then PUT with the bytes) up to
   * chunkSizeBytes, chunked (POST, PATCH per chunk with Content-Range, PUT) above.
   * The registry checks the digest on the final PUT; a mismatch is ERR_REGISTRY_REJECTED.
   */
  async pushBlob(repository: string, digest: string, body: RequestBody & { sizeBytes?: number }, mountFrom?: string): Promise<BlobAction> {
    if ((await this.hasBlob(repository, digest)) !== undefined) return 'skipped';
    const scopes = [pullPush(repository), ...(mountFrom !== undefined && mountFrom !== repository ? [`repository:${mountFrom}:pull`] : [])];
    const query = mountFrom !== undefined && mountFrom !== repository ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}` : '';
    const started = await this.request('POST', `/v2/${repository}/blobs/uploads/${query}`, { scopes, expect: [201, 202], headers: { 'content-length': '0' } });
    if (started.status === 201) return 'mounted';
    let location = this.locationOf(started, repository);
    const sizeBytes = Buffer.isBuffer(body) ? body.length : body.sizeBytes;
    const chunkBytes = this.options.chunkSizeBytes ?? 32 << 20;
    if (sizeBytes > chunkBytes && !Buffer.isBuffer(body)) {
      location = await this.uploadChunks(repository, location, body, sizeBytes, chunkBytes);
      await this.request('PUT', withDigest(location, digest), { scopes: [pullPush(repository)], expect: [201], headers: { 'content-length': '0' } });
      return 'uploaded';
    }
    await this.request('PUT', withDigest(location, digest), {
      scopes: [pullPush(repository)],
      expect: [201],
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(sizeBytes) },
      body,
    });
    return 'uploaded';
  }

  private async uploadChunks(repository: string, location: string, body: { open(): Readable }, sizeBytes: number, chunkBytes: number): Promise<string> {
    // Chunks are read from one stream in order; each PATCH carries Content-Range
    // first-last (inclusive), and the registry answers 202 with the next Location.
    const stream = body.open();
    const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let pending = Buffer.alloc(0);
    let offset = 0;
    try {
      while (offset < sizeBytes) {
        const want = Math.min(chunkBytes, sizeBytes - offset);
        const parts: Buffer[] = [pending];
        let have = pending.length;
        while (have < want) {
          const next = await iterator.next();
          if (next.done === true) break;
          parts.push(next.value);
          have += next.value.length;
        }
        const joined = Buffer.concat(parts);
        const chunk = joined.subarray(0, want);
        pending = joined.subarray(want);
        if (chunk.length !== want) throw new Error(`blob source ended after ${offset + chunk.length} of ${sizeBytes} bytes`);
        const reply = await this.request('PATCH', location, {
          scopes: [pullPush(repository)],
          expect: [202],
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(chunk.length),
            'content-range': `${offset}-${offset + chunk.length - 1}`,
          },
          body: chunk,
        });
        location = this.locationOf(reply, repository);
        offset += chunk.length;
      }
    } finally {
      stream.destroy();
    }
    return location;
  }

  /**
   * Uploads a manifest (or index) under `reference` (a tag or its digest) and returns the
   * digest the registry computed, which must equal the digest of `bytes`.
   */
  async putManifest(repository: string, reference: string, mediaType: string, bytes: Buffer): Promise<string> {
    const reply = await this.request('PUT', `/v2/${repository}/manifests/${reference}`, {
      scopes: [pullPush(repository)],
      expect: [201],
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
    });
    const expected = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const returned = headerText(reply.headers['docker-content-digest']);
    if (returned !== undefined && returned !== expected) {
      throw new RedoError('ERR_REGISTRY_REJECTED', `redo: "${this.label}": the registry stored another manifest than the one sent`, {
        details: [`sent:   ${expected}`, `stored: ${returned}`],
        hint: 'the registry rewrote the manifest (format conversion?); push to a registry that stores OCI manifests as sent',
      });
    }
    return expected;
  }

  /**
   * Fetches a manifest or index by tag or digest. Returns its bytes, media type and
   * digest; when `reference` is a digest, the bytes are checked against it
   * (ERR_REGISTRY_DIGEST on a mismatch). A 404 gives undefined.
   */
  async getManifest(repository: string, reference: string, accept: readonly string[] = manifestMediaTypes): Promise<{ bytes: Buffer; mediaType: string; digest: string } | undefined> {
    const reply = await this.request('GET', `/v2/${repository}/manifests/${reference}`, {
      scopes: [`repository:${repository}:pull`],
      expect: [200, 404],
      headers: { accept: accept.join(', ') },
    });
    if (reply.status === 404) return undefined;
    const digest = `sha256:${createHash('sha256').update(reply.body).digest('hex')}`;
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw digestMismatch(`${this.host}/${repository}@${reference}`, reference, digest, 'manifest');
    }
    const mediaType = headerText(reply.headers['content-type'])?.split(';')[0] ?? '';
    return { bytes: reply.body, mediaType, digest };
  }

  /** Digest of the manifest a tag points at (HEAD), or undefined when the tag does not exist. */
  async resolveTag(repository: string, tag: string, accept: readonly string[] = manifestMediaTypes): Promise<string | undefined> {
    const found = await this.getManifest(repository, tag, accept);
    return found?.digest;
  }

  /**
   * Downloads a blob to `toPath`, hashing as it writes; the file is removed and
   * ERR_REGISTRY_DIGEST thrown when the bytes do not match `digest` (or `sizeBytes`).
   * The body is never read past `sizeBytes` (the descriptor's size), or, when no size is
   * known, past the download limit (REDO_TS_DOWNLOAD_LIMIT, default 4 GiB): a longer body
   * is cut off and refused. `toPath` is removed on every failure and, should the process
   * be signalled meanwhile, on SIGINT/SIGTERM/SIGHUP. Returns undefined (nothing
   * written) on a 404.
   */
  async fetchBlob(repository: string, digest: string, toPath: string, sizeBytes?: number): Promise<number | undefined> {
    let size = 0;
    let found = '';
    const limitBytes = sizeBytes ?? downloadLimitFrom(this.options.env);
    const subject = `${this.host}/${repository}@${digest}`;
    const release = holdTemporary(toPath);
    let writing: Promise<void> | undefined;
    try {
      const reply = await this.request('GET', `/v2/${repository}/blobs/${digest}`, {
        scopes: [`repository:${repository}:pull`],
        expect: [200, 404],
        ...(sizeBytes === undefined ? {} : { expectedBytes: sizeBytes }),
        sink: async (response) => {
          const declared = Number(response.headers['content-length'] ?? Number.NaN);
          if (Number.isFinite(declared) && declared > limitBytes) {
            response.destroy();
            throw tooLong(subject, digest, limitBytes, `Content-Length: ${declared} bytes`, sizeBytes !== undefined);
          }
          const hash = createHash('sha256');
          let cutOff: RedoError | undefined;
          response.on('data', (chunk: Buffer) => {
            hash.update(chunk);
            size += chunk.length;
            if (size > limitBytes && cutOff === undefined) {
              cutOff = tooLong(subject, digest, limitBytes, `more than ${limitBytes} bytes, and still coming`, sizeBytes !== undefined);
              response.destroy(cutOff);
            }
          });
          try {
            // Opened before any byte arrives, so no late open can recreate a file removed on failure.
            writing = pipeline(response, createWriteStream(toPath, { fd: openSync(toPath, 'w') }));
            await writing;
          } catch (error) {
            throw cutOff ?? error;
          }
          found = `sha256:${hash.digest('hex')}`;
        },
      });
      if (reply.status === 404) return undefined;
      if (found !== digest || (sizeBytes !== undefined && size !== sizeBytes)) {
        throw digestMismatch(subject, digest, found, 'blob', sizeBytes, size);
      }
      return size;
    } catch (error) {
      // The request may fail before the file stream has closed (or even opened): wait for it.
      await writing?.catch(() => undefined);
      rmSync(toPath, { force: true });
      throw error;
    } finally {
      release();
    }
  }

  private locationOf(reply: Reply, repository: string): string {
    const location = headerText(reply.headers.location);
    if (location === undefined) {
      throw new RedoError('ERR_REGISTRY_REJECTED', `redo: "${this.label}": upload to ${repository} got no Location header`, {
        details: [`status: ${reply.status}`],
      });
    }
    return location;
  }

  /** Performs a request, authenticating and retrying once on 401, following redirects for GET/HEAD. */
  private async request(method: string, target: string, options: RequestOptions): Promise<Reply> {
    const url = new URL(target, this.baseUrl);
    const scopeKey = options.scopes.join(' ');
    for (let attempt = 0; ; attempt += 1) {
      const headers: Record<string, string> = { ...options.headers };
      const authorization = url.host === new URL(this.baseUrl).host ? await this.authorizationFor(scopeKey, options.scopes) : undefined;
      if (authorization !== undefined) headers.authorization = authorization;
      const reply = await this.send(method, url, headers, options);
      if (reply.status === 401 && attempt === 0) {
        this.challenge = parseChallenge(headerText(reply.headers['www-authenticate']));
        this.authorizations.delete(scopeKey);
        if (this.challenge !== undefined) {
          await this.authenticate(scopeKey, options.scopes);
          continue;
        }
      }
      if (reply.status === 401 || reply.status === 403) throw this.authError(reply, options.scopes);
      if ((method === 'GET' || method === 'HEAD') && [301, 302, 303, 307, 308].includes(reply.status) && attempt < 5) {
        const next = headerText(reply.headers.location);
        if (next !== undefined) return this.followRedirect(method, new URL(next, url), options, attempt);
      }
      if (!options.expect.includes(reply.status)) throw this.rejected(method, url, reply);
      return reply;
    }
  }

  private async followRedirect(method: string, url: URL, options: RequestOptions, depth: number): Promise<Reply> {
    // Storage back ends serve blobs from signed URLs: no registry credentials go there.
    const reply = await this.send(method, url, { ...options.headers }, options);
    if ([301, 302, 303, 307, 308].includes(reply.status) && depth < 5) {
      const next = headerText(reply.headers.location);
      if (next !== undefined) return this.followRedirect(method, new URL(next, url), options, depth + 1);
    }
    if (!options.expect.includes(reply.status)) throw this.rejected(method, url, reply);
    return reply;
  }

  private async authorizationFor(scopeKey: string, scopes: string[]): Promise<string | undefined> {
    const known = this.authorizations.get(scopeKey);
    if (known !== undefined) return known;
    // Once the registry said it wants tokens, fetch one before asking: saves a 401 per scope.
    if (this.challenge !== undefined) return this.authenticate(scopeKey, scopes);
    return undefined;
  }

  private async authenticate(scopeKey: string, scopes: string[]): Promise<string | undefined> {
    const challenge = this.challenge;
    if (challenge === undefined) return undefined;
    const repository = /^repository:([^:]+):/.exec(scopes[0] ?? '')?.[1] ?? '';
    const { credentials } = this.credentials(repository);
    let authorization: string | undefined;
    if (challenge.scheme === 'basic') {
      if (credentials === undefined) return undefined;
      authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    } else if (challenge.scheme === 'bearer') {
      const realm = challenge.params.realm;
      if (realm === undefined) return undefined;
      const tokenUrl = new URL(realm);
      if (challenge.params.service !== undefined) tokenUrl.searchParams.set('service', challenge.params.service);
      for (const scope of scopes) tokenUrl.searchParams.append('scope', scope);
      // The realm is the registry's word: credentials go there only over HTTPS, or to the
      // registry's own host, never in clear text to a host it names.
      const isTrustedRealm = tokenUrl.protocol === 'https:' || tokenUrl.hostname === new URL(this.baseUrl).hostname;
      if (credentials !== undefined && !isTrustedRealm) {
        throw new RedoError('ERR_REGISTRY_AUTH', `redo: "${this.label}": the registry sent its token requests to a plain-HTTP server on another host`, {
          details: [`token server: ${tokenUrl.origin}${tokenUrl.pathname}`, `credentials: user "${credentials.username}" from ${credentials.file}, not sent`],
          hint: 'credentials go only to the registry itself or to a token server over HTTPS; fix the registry\'s auth realm',
        });
      }
      const headers: Record<string, string> = {};
      if (credentials !== undefined) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
      const reply = await this.send('GET', tokenUrl, headers, {});
      if (reply.status === 401 || reply.status === 403) throw this.authError(reply, scopes, `token server ${tokenUrl.origin}${tokenUrl.pathname}`);
      if (reply.status !== 200) throw this.rejected('GET', tokenUrl, reply);
      let token: unknown;
      try {
        const parsed = JSON.parse(reply.body.toString('utf8')) as { token?: unknown; access_token?: unknown };
        token = parsed.token ?? parsed.access_token;
      } catch {
        token = undefined;
      }
      if (typeof token !== 'string' || token === '') {
        throw new RedoError('ERR_REGISTRY_AUTH', `redo: "${this.label}": the token server gave no token`, {
          details: [`token server: ${tokenUrl.origin}${tokenUrl.pathname}`, `answer: ${reply.body.toString('utf8').slice(0, 200)}`],
        });
      }
      authorization = `Bearer ${token}`;
    }
    if (authorization !== undefined) this.authorizations.set(scopeKey, authorization);
    return authorization;
  }

  private authError(reply: Reply, scopes: string[], where?: string): RedoError {
    const repository = /^repository:([^:]+):/.exec(scopes[0] ?? '')?.[1] ?? '';
    const lookup = this.credentials(repository);
    const tried = lookup.credentials !== undefined
      ? [`credentials: user "${lookup.credentials.username}" from ${lookup.credentials.file}`]
      : [`credentials: none for ${this.host} in: ${lookup.filesTried.join(', ')}`];
    return new RedoError('ERR_REGISTRY_AUTH', `redo: "${this.label}": the registry refused access (${reply.status} ${reply.status === 401 ? 'Unauthorized' : 'Forbidden'})`, {
      details: [...(where === undefined ? [] : [`from: ${where}`]), `scope: ${scopes.join(' ')}`, ...tried, ...registryMessage(reply)],
      hint: lookup.credentials !== undefined
        ? `check the user's password and its rights on ${repository}, or log in again (podman login ${this.host})`
        : `log in (podman login ${this.host}, which writes auth.json) or set REGISTRY_AUTH_FILE`,
    });
  }

  private rejected(method: string, url: URL, reply: Reply): RedoError {
    return new RedoError('ERR_REGISTRY_REJECTED', `redo: "${this.label}": the registry answered ${reply.status} to ${method} ${url.pathname}`, {
      details: registryMessage(reply),
    });
  }

  /**
   * One HTTP exchange. A buffered reply (anything but a sink's 200) is refused beyond
   * MAX_MANIFEST_BYTES, declared or received; the request fails after `timeoutMs` idle
   * and after its deadline in all (deadlineMs, plus time for the bytes it carries or
   * expects at MIN_RATE_BYTES_PER_SECOND), whatever trickles in meanwhile.
   */
  private send(method: string, url: URL, headers: Record<string, string>, options: Pick<RequestOptions, 'body' | 'sink' | 'expectedBytes'>): Promise<Reply> {
    const isHttps = url.protocol === 'https:';
    const agent = url.origin === this.baseUrl ? this.agent : undefined;
    const bodyBytes = options.body === undefined ? 0 : Buffer.isBuffer(options.body) ? options.body.length : options.body.sizeBytes;
    const deadlineMs = (this.options.deadlineMs ?? DEFAULT_DEADLINE_MS) + Math.ceil(((bodyBytes + (options.expectedBytes ?? 0)) / MIN_RATE_BYTES_PER_SECOND) * 1000);
    return new Promise<Reply>((resolve, reject) => {
      let deadline: NodeJS.Timeout | undefined;
      let activeResponse: http.IncomingMessage | undefined;
      const settle = <T>(finish: (value: T) => void) => (value: T): void => {
        clearTimeout(deadline);
        finish(value);
      };
      const succeed = settle(resolve);
      const fail = settle(reject);
      const request = (isHttps ? https : http).request(url, { method, headers, agent }, (response) => {
        activeResponse = response;
        const status = response.statusCode ?? 0;
        if (status === 200 && options.sink !== undefined && method === 'GET') {
          options.sink(response).then(() => succeed({ status, headers: response.headers, body: Buffer.alloc(0) }), (error: unknown) => {
            fail(error instanceof RedoError ? error : this.unreachable(url, error as NodeJS.ErrnoException));
          });
          return;
        }
        // A HEAD's Content-Length is the size of what it describes (a blob), not of a body.
        const declared = method === 'HEAD' ? Number.NaN : Number(response.headers['content-length'] ?? Number.NaN);
        if (Number.isFinite(declared) && declared > MAX_MANIFEST_BYTES) {
          response.destroy();
          request.destroy();
          fail(this.tooLarge(method, url, `Content-Length: ${declared} bytes`));
          return;
        }
        const parts: Buffer[] = [];
        let receivedBytes = 0;
        response.on('data', (chunk: Buffer) => {
          receivedBytes += chunk.length;
          if (receivedBytes > MAX_MANIFEST_BYTES) {
            response.destroy();
            request.destroy();
            fail(this.tooLarge(method, url, `more than ${MAX_MANIFEST_BYTES} bytes, and still coming`));
            return;
          }
          parts.push(chunk);
        });
        response.on('end', () => succeed({ status, headers: response.headers, body: Buffer.concat(parts) }));
        response.on('error', (error: NodeJS.ErrnoException) => fail(error instanceof RedoError ? error : this.unreachable(url, error)));
      });
      // A reply cut off for its size carries its own RedoError here too.
      request.on('error', (error: NodeJS.ErrnoException) => fail(error instanceof RedoError ? error : this.unreachable(url, error)));
      // A registry that accepts the connection but never answers must not hang the build.
      request.setTimeout(this.options.timeoutMs ?? 120_000, () => {
        const error: NodeJS.ErrnoException = new Error(`no answer for ${(this.options.timeoutMs ?? 120_000) / 1000} s`);
        error.code = 'ETIMEDOUT';
        request.destroy(error);
      });
      // Nor may one that answers a byte at a time: the idle timer never fires for it.
      deadline = setTimeout(() => {
        const error: NodeJS.ErrnoException = new Error(`not done after ${deadlineMs / 1000} s in all`);
        error.code = 'ETIMEDOUT';
        request.destroy(error);
        activeResponse?.destroy(error);
        fail(this.unreachable(url, error));
      }, deadlineMs);
      const body = options.body;
      if (body === undefined) request.end();
      else if (Buffer.isBuffer(body)) {
        this.bytesSent += body.length;
        request.end(body);
      } else {
        const stream = body.open();
        stream.on('data', (chunk: Buffer) => (this.bytesSent += chunk.length));
        stream.on('error', (error) => request.destroy(error));
        stream.pipe(request);
      }
    });
  }

  private tooLarge(method: string, url: URL, found: string): RedoError {
    return new RedoError('ERR_REGISTRY_REJECTED', `redo: "${this.label}": the reply to ${method} ${url.pathname} is larger than a manifest may be`, {
      details: [`wanted: at most ${MAX_MANIFEST_BYTES} bytes (distribution refuses larger manifests)`, `found:  ${found}`, 'the reply was cut off; nothing was recorded or used'],
      hint: 'the registry (or something between it and you) is misbehaving; report it to its operator',
    });
  }

  private unreachable(url: URL, error: NodeJS.ErrnoException): RedoError {
    const code = error.code ?? '';
    const isTlsProblem = /SSL|TLS|EPROTO|CERT/i.test(`${code} ${error.message}`);
    return new RedoError('ERR_REGISTRY_UNREACHABLE', `redo: "${this.label}": cannot reach the registry at ${url.origin}`, {
      details: [`${code === '' ? 'error' : code}: ${error.message}`],
      hint: isTlsProblem
        ? `the registry does not speak HTTPS as expected; for a registry without TLS pass --insecure`
        : `check that the registry runs and that ${url.host} is right`,
      cause: error,
    });
  }
}

function pullPush(repository: string): string {
  return `repository:${repository}:pull,push`;
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** `Bearer realm="...",service="...",scope="..."` → scheme and parameters. */
function parseChallenge(header: string | undefined): { scheme: string; params: Record<string, string> } | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  for (const pair of (match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) params[pair[1]!.toLowerCase()] = pair[2]!;
  return { scheme: match[1]!.toLowerCase(), params };
}

/** The `errors[].code: message` lines of a distribution error body, if any. */
function registryMessage(reply: Reply): string[] {
  try {
    const parsed = JSON.parse(reply.body.toString('utf8')) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    return (parsed.errors ?? []).slice(0, 3).map((e) => `registry: ${e.code ?? '?'}: ${e.message ?? ''}${e.detail === undefined ? '' : ` ${JSON.stringify(e.detail).slice(0, 200)}`}`);
  } catch {
    const text = reply.body.toString('utf8').trim();
    return text === '' ? [] : [`registry: ${text.slice(0, 200)}`];
  }
}

function digestMismatch(subject: string, wanted: string, found: string, what: string, wantedSize?: number, foundSize?: number): RedoError {
  return new RedoError('ERR_REGISTRY_DIGEST', `redo: "${subject}": the ${what} the registry sent does not match its digest`, {
    details: [
      `wanted: ${wanted}${wantedSize === undefined ? '' : ` (${wantedSize} bytes)`}`,
      `found:  ${found}${foundSize === undefined ? '' : ` (${foundSize} bytes)`}`,
      'nothing was recorded or used',
    ],
    hint: 'the registry or something between it and you altered the content; report it to the registry operator',
  });
}

function tooLong(subject: string, digest: string, limitBytes: number, found: string, isDescriptorSize: boolean): RedoError {
  return new RedoError('ERR_REGISTRY_DIGEST', `redo: "${subject}": the blob the registry sent is longer than ${isDescriptorSize ? 'its descriptor says' : 'the download limit'}`, {
    details: [
      `wanted: ${digest} (${isDescriptorSize ? `${limitBytes} bytes` : `at most ${limitBytes} bytes: REDO_TS_DOWNLOAD_LIMIT, default 4G`})`,
      `found:  ${found}`,
      'the download was cut off and removed; nothing was recorded or used',
    ],
    hint: 'the registry or something between it and you altered the content; report it to the registry operator',
  });
}
