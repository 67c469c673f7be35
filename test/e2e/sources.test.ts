/** End to end: specs with http(s) sources from a loopback server, file: sources, deb: packages from a warm cache. */

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RedoError } from '../../lib/errors.js';
import { entriesOfTar } from '../../lib/image/tar.js';
import { buildFragment, mergeFragments } from '../../lib/sources/fragment.js';
import { integrityOfBytes, integrityOfFile, type Integrity } from '../../lib/sources/integrity.js';
import { findInStore, insertIntoStore } from '../../lib/sources/store.js';
import { projectInputsOf } from '../../lib/sources/provenance.js';
import { loadSpec } from '../../lib/sources/spec.js';
import { fixturePackage, makeFixtureDeb, makeUnsafeDeb } from '../fixtures/402-deb-package/make-deb.js';
import { contentPathOf, poisonCacheEntry } from '../helpers/cache-poisoner.js';
import { copyBuildEnvironment, testBuildEnvironment } from '../helpers/build-environment.js';
import type { EnvironmentPart } from '../../lib/sandbox/environment.js';

const repo = resolve(__dirname, '../..');
const cli = join(repo, 'bin/redo-ts.js');

let base: string;
let server: Server;
/** Build steps run sandboxed over the repository's own build environment. */
let environment: EnvironmentPart[];
let port: number;
const served = new Map<string, Buffer>();
const requests: string[] = [];

beforeAll(async () => {
  environment = await testBuildEnvironment();
  base = mkdtempSync(join(tmpdir(), 'redo-ts-sources-'));
  server = createServer((request, response) => {
    requests.push(request.url ?? '');
    const body = served.get(request.url ?? '');
    if (body === undefined) {
      response.writeHead(404).end('not here');
      return;
    }
    response.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((done) => server.close(() => done()));
  rmSync(base, { recursive: true, force: true });
});

let project: string;
let cache: string;
let counter = 0;
beforeEach(() => {
  counter += 1;
  project = join(base, `project-${counter}`);
  cache = join(base, `cache-${counter}`);
  mkdirSync(join(project, 'targets'), { recursive: true });
  mkdirSync(join(project, 'src'), { recursive: true });
  writeFileSync(join(project, 'package.json'), '{}\n');
  requests.length = 0;
  served.clear();
});

/** Spawns the built CLI without blocking this process (the loopback server lives here). */
function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: project,
      env: { ...process.env, REDO_TS_CACHE: cache, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

function writeSpec(name: string, text: string): string {
  const path = join(project, 'targets', `${name}.spec.yaml`);
  writeFileSync(path, text);
  return path;
}

async function failure(promise: Promise<unknown>): Promise<RedoError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof RedoError)) throw new Error(`wanted a RedoError, got ${String(error)}`);
  return error;
}

function listing(tarPath: string): string[] {
  return entriesOfTar(tarPath).map((entry) => {
    const link = entry.linkTarget === undefined ? '' : ` -> ${entry.linkTarget.toString()}`;
    return `${entry.path.toString()} ${entry.type} ${entry.mode.toString(8).padStart(4, '0')} ${entry.uid}:${entry.gid}${link}`;
  });
}

const tarball = Buffer.from('pretend this is a tarball\n');
const toolSpec = (url: string, integrity?: string): string => `# a tool fetched over http
name: tool
version: "2.0"
sources:
  - url: ${url}   # upstream release
${integrity === undefined ? '' : `    integrity: ${integrity}\n`}    name: tool.txt
  - url: file:src/local.txt
    integrity: project
build:
  - install -D -m 0644 tool.txt "$DESTDIR/opt/tool/tool.txt"
  - install -D -m 0700 local.txt "$DESTDIR/opt/tool/bin/run"
files:
  - path: /opt/tool
    owner: 1000
    group: 1000
  - path: /opt/tool/bin/run
    mode: "4750"
`;

describe('http and file: sources', () => {
  it('pin writes the missing integrity after the url, keeping comments; the build then succeeds', async () => {
    served.set('/tool-2.0.tar', tarball);
    writeFileSync(join(project, 'src/local.txt'), 'local\n');
    const url = `http://127.0.0.1:${port}/tool-2.0.tar`;
    const spec = writeSpec('tool', toolSpec(url));
    const pinned = await runCli(['pin']);
    expect(pinned.stderr).toBe('redo-ts pin: 1 added, 0 updated, 1 spec checked\n');
    expect(pinned.status).toBe(0);
    const want = integrityOfBytes(tarball);
    expect(pinned.stdout).toBe(`targets/tool.spec.yaml:5: ${url}: pinned ${want}\n`);
    expect(readFileSync(spec, 'utf8')).toBe(toolSpec(url, want));

    const out = join(project, 'tool.tar');
    const result = await buildFragment(spec, out, { environment, cacheDir: cache, env: { PATH: process.env.PATH } });
    expect(listing(out)).toEqual([
      'opt directory 0755 0:0',
      'opt/tool directory 0755 1000:1000',
      'opt/tool/bin directory 0755 1000:1000',
      'opt/tool/bin/run file 4750 1000:1000',
      'opt/tool/tool.txt file 0644 1000:1000',
    ]);
    expect(result.layers).toEqual(['tool']);
    expect(result.sources.map((s) => [s.kind, s.name, s.version, s.integrity])).toEqual([
      ['http', 'tool.txt', '2.0', want],
      ['file', 'local.txt', '2.0', await integrityOfFile(join(project, 'src/local.txt'))],
    ]);

    // Warm cache: the server is not asked again, even offline.
    const before = requests.length;
    const again = await buildFragment(spec, join(project, 'tool2.tar'), { environment, cacheDir: cache, isOffline: true, env: { PATH: process.env.PATH } });
    expect(requests.length).toBe(before);
    expect(again.diffId).toBe(result.diffId);
    expect(readFileSync(join(project, 'tool2.tar'))).toEqual(readFileSync(out));
  });

  it('the fragment bytes depend on neither umask nor the build folder', async () => {
    served.set('/t.tar', tarball);
    writeFileSync(join(project, 'src/local.txt'), 'local\n');
    const spec = writeSpec('tool', toolSpec(`http://127.0.0.1:${port}/t.tar`, integrityOfBytes(tarball)));
    const first = await buildFragment(spec, join(project, 'a.tar'), { environment, cacheDir: cache, env: { PATH: process.env.PATH } });
    const oldUmask = process.umask(0o077);
    try {
      const second = await buildFragment(spec, join(project, 'b.tar'), { environment, cacheDir: cache, env: { PATH: process.env.PATH } });
      expect(second.diffId).toBe(first.diffId);
    } finally {
      process.umask(oldUmask);
    }
  });

  it('an integrity mismatch names the source, wanted and found, and caches and builds nothing', async () => {
    served.set('/t.tar', Buffer.from('tampered\n'));
    writeFileSync(join(project, 'src/local.txt'), 'local\n');
    const want = integrityOfBytes(tarball);
    const url = `http://127.0.0.1:${port}/t.tar`;
    const spec = writeSpec('tool', toolSpec(url, want));
    const out = join(project, 'tool.tar');
    const error = await failure(buildFragment(spec, out, { environment, cacheDir: cache, env: { PATH: process.env.PATH } }));
    expect(error.code).toBe('ERR_INTEGRITY_MISMATCH');
    expect(error.render()).toBe([
      `redo: "targets/tool.spec.yaml": source "${url}": integrity mismatch`,
      `  wanted: ${want}`,
      `  found:  ${integrityOfBytes(Buffer.from('tampered\n'))}`,
      '  nothing was cached and nothing was built',
      '  hint: change the pin (redo-ts pin --update) only if the upstream file was meant to change',
    ].join('\n'));
    expect(existsSync(out)).toBe(false);
    expect((await findInStore(cache, want)).kind).toBe('absent');
    expect((await findInStore(cache, integrityOfBytes(Buffer.from('tampered\n')))).kind).toBe('absent');
  });

  it('an edited pinned file: source is a mismatch even when the cache holds the pinned bytes', async () => {
    writeFileSync(join(project, 'src/vendored.txt'), 'v1\n');
    const pin = integrityOfBytes(Buffer.from('v1\n'));
    const spec = writeSpec('tool', `name: tool\nversion: "1"\nsources:\n  - url: file:src/vendored.txt\n    integrity: ${pin}\n`);
    await buildFragment(spec, join(project, 'tool.tar'), { environment, cacheDir: cache });
    expect((await findInStore(cache, pin)).kind).toBe('hit');
    writeFileSync(join(project, 'src/vendored.txt'), 'v2\n');
    const error = await failure(buildFragment(spec, join(project, 'tool.tar'), { environment, cacheDir: cache }));
    expect(error.code).toBe('ERR_INTEGRITY_MISMATCH');
    expect(error.details.slice(0, 2)).toEqual([`wanted: ${pin}`, `found:  ${integrityOfBytes(Buffer.from('v2\n'))}`]);
  });

  it('a cached http: source whose bytes were changed is dropped and fetched again; the fragment holds the pinned bytes', async () => {
    const good = Buffer.from('#!/bin/sh\necho the pinned tool\n');
    served.set('/t.tar', good);
    writeFileSync(join(project, 'src/local.txt'), 'local\n');
    const want = integrityOfBytes(good);
    const spec = writeSpec('tool', toolSpec(`http://127.0.0.1:${port}/t.tar`, want));
    const first = await buildFragment(spec, join(project, 'a.tar'), { environment, cacheDir: cache, env: { PATH: process.env.PATH } });
    const poisoned = Buffer.from('#!/bin/sh\necho an evil tool!\n');
    poisonCacheEntry(cache, want, () => poisoned);
    const before = requests.length;
    const second = await buildFragment(spec, join(project, 'b.tar'), { environment, cacheDir: cache, env: { PATH: process.env.PATH } });
    expect(requests.length).toBe(before + 1);
    expect(second.diffId).toBe(first.diffId);
    expect(readFileSync(join(project, 'b.tar')).includes(poisoned)).toBe(false);
    expect(readFileSync(contentPathOf(cache, want))).toEqual(good);
  });

  it('offline, a changed cached http: source fails naming the entry, the wanted and the found hash, and is dropped', async () => {
    const good = Buffer.from('the pinned bytes\n');
    served.set('/t.tar', good);
    writeFileSync(join(project, 'src/local.txt'), 'local\n');
    const want = integrityOfBytes(good);
    const url = `http://127.0.0.1:${port}/t.tar`;
    const spec = writeSpec('tool', toolSpec(url, want));
    await buildFragment(spec, join(project, 'a.tar'), { environment, cacheDir: cache, env: { PATH: process.env.PATH } });
    const entry = poisonCacheEntry(cache, want, () => Buffer.from('other bytes\n'));
    const error = await failure(buildFragment(spec, join(project, 'b.tar'), { environment, cacheDir: cache, isOffline: true, env: { PATH: process.env.PATH } }));
    expect(error.code).toBe('ERR_CACHE_DAMAGED');
    expect(error.render()).toBe([
      `redo: "targets/tool.spec.yaml": source "${url}": the cached copy does not match its pin`,
      `  entry:  ${entry}`,
      `  wanted: ${want}`,
      `  found:  ${integrityOfBytes(Buffer.from('other bytes\n'))}`,
      '  the damaged copy was dropped from the cache; nothing was built',
      '  hint: run once online to fetch the pinned bytes again, or check what writes into the cache folder',
    ].join('\n'));
    expect(existsSync(join(project, 'b.tar'))).toBe(false);
    expect(existsSync(entry)).toBe(false);
    expect((await findInStore(cache, want)).kind).toBe('absent');
  });

  it('`redo-ts cache verify` hashes every entry, lists and drops the damaged ones, and exits 1 until the cache is clean', async () => {
    const good = [Buffer.from('one\n'), Buffer.from('two\n'), Buffer.from('three\n')];
    const pins: Integrity[] = [];
    for (const [i, bytes] of good.entries()) {
      const file = join(project, `f${i}`);
      writeFileSync(file, bytes);
      pins.push(integrityOfBytes(bytes));
      await insertIntoStore(cache, pins[i]!, file, `test ${i}`);
    }
    const entry = poisonCacheEntry(cache, pins[1]!, () => Buffer.from('not two\n'));
    const result = await runCli(['cache', 'verify']);
    expect(result.stdout).toBe(`damaged redo-ts:source:${pins[1]}\n  entry:  ${entry}\n  wanted: ${pins[1]}\n  found:  ${integrityOfBytes(Buffer.from('not two\n'))}\n`);
    expect(result.stderr).toBe(`redo-ts cache: 3 entries checked in ${cache}, 1 damaged and dropped (a build fetches them again)\n`);
    expect(result.status).toBe(1);
    const again = await runCli(['cache', 'verify']);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(`redo-ts cache: 2 entries checked in ${cache}, 0 damaged\n`);
    expect(again.status).toBe(0);
    expect((await findInStore(cache, pins[0]!)).kind).toBe('hit');
  });

  it('a vendored file:src/X.tar source is not reported, run after run, as a file the image rule could build (issue 18)', async () => {
    const vendored = execFileSync('tar', ['-C', project, '-cf', '-', 'package.json']);
    writeFileSync(join(project, 'src/vendor.tar'), vendored);
    writeSpec('tool', `name: tool\nversion: "1"\nsources:\n  - url: file:src/vendor.tar\n    integrity: project\n    unpack: true\nbuild:\n  - install -D -m 0644 package.json "$DESTDIR/opt/tool/package.json"\n`);
    copyBuildEnvironment(join(project, 'targets'), cache);
    const first = await runCli(['targets/tool.fragment.tar']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).not.toContain('treating it as a source');
    writeFileSync(join(project, 'extra.txt'), 'a new vendored file\n');
    writeFileSync(join(project, 'src/vendor.tar'), execFileSync('tar', ['-C', project, '-cf', '-', 'package.json', 'extra.txt']));
    const second = await runCli(['targets/tool.fragment.tar']);
    expect(second.status).toBe(0);
    expect(second.stderr).not.toContain('treating it as a source');
  });

  it('a missing integrity says to run redo-ts pin, before downloading anything', async () => {
    served.set('/t.tar', tarball);
    const spec = writeSpec('tool', toolSpec(`http://127.0.0.1:${port}/t.tar`));
    const error = await failure(buildFragment(spec, join(project, 'tool.tar'), { environment, cacheDir: cache }));
    expect(error.code).toBe('ERR_INTEGRITY_MISSING');
    expect(error.render()).toBe([
      'redo: "targets/tool.spec.yaml": a source has no integrity pin',
      `  targets/tool.spec.yaml:5: http://127.0.0.1:${port}/t.tar`,
      '  hint: run `redo-ts pin targets/tool.spec.yaml` to compute the pins, then review and commit them',
    ].join('\n'));
    expect(requests).toEqual([]);
  });

  it('an unreachable source names itself and says the cache has no copy (404 and refused connection)', async () => {
    writeFileSync(join(project, 'src/local.txt'), 'local\n');
    const want = integrityOfBytes(tarball);
    const spec404 = writeSpec('tool', toolSpec(`http://127.0.0.1:${port}/gone.tar`, want));
    const notFound = await failure(buildFragment(spec404, join(project, 'tool.tar'), { environment, cacheDir: cache }));
    expect(notFound.code).toBe('ERR_SOURCE_UNREACHABLE');
    expect(notFound.headline).toBe(`redo: "targets/tool.spec.yaml": source "http://127.0.0.1:${port}/gone.tar": cannot be fetched`);
    expect(notFound.details).toEqual(['why: HTTP status 404 Not Found', 'cache: no copy of this pin']);

    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((done) => closed.close(() => done()));
    const specClosed = writeSpec('tool', toolSpec(`http://127.0.0.1:${closedPort}/t.tar`, want));
    const refused = await failure(buildFragment(specClosed, join(project, 'tool.tar'), { environment, cacheDir: cache }));
    expect(refused.code).toBe('ERR_SOURCE_UNREACHABLE');
    expect(refused.details[0]).toMatch(/^why: .*ECONNREFUSED/);
    expect(refused.details[1]).toBe('cache: no copy of this pin');

    const offline = await failure(buildFragment(spec404, join(project, 'tool.tar'), { environment, cacheDir: cache, isOffline: true }));
    expect(offline.details).toEqual(['why: offline mode, and the cache has no copy', 'cache: no copy of this pin']);
  });

  it('pin --update prints old → new and rewrites only the integrity value', async () => {
    served.set('/t.tar', Buffer.from('version 2\n'));
    writeFileSync(join(project, 'src/local.txt'), 'local\n');
    const url = `http://127.0.0.1:${port}/t.tar`;
    const old = integrityOfBytes(tarball);
    const spec = writeSpec('tool', toolSpec(url, old));
    const plain = await runCli(['pin', 'targets/tool.spec.yaml']);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toBe('');
    expect(readFileSync(spec, 'utf8')).toBe(toolSpec(url, old));
    const updated = await runCli(['pin', '--update']);
    expect(updated.status).toBe(0);
    const fresh = integrityOfBytes(Buffer.from('version 2\n'));
    expect(updated.stdout).toBe(`targets/tool.spec.yaml:5: ${url}: ${old} → ${fresh}\n`);
    expect(readFileSync(spec, 'utf8')).toBe(toolSpec(url, fresh));
  });

  it('a malformed spec fails pin with file:line: field: problem and exit status 1', async () => {
    writeSpec('tool', 'name: tool\nversion: "1"\nsource:\n  - url: file:x\n');
    const result = await runCli(['pin']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('redo: "targets/tool.spec.yaml:3": source: unknown field');
  });

  it('a failing build step is reported with its status and output, and keeps the old fragment', async () => {
    writeFileSync(join(project, 'src/local.txt'), 'local\n');
    const spec = writeSpec('tool', 'name: tool\nversion: "1"\nsources:\n  - url: file:src/local.txt\n    integrity: project\nbuild:\n  - echo compiling; echo broken >&2; exit 3\n');
    const out = join(project, 'tool.tar');
    writeFileSync(out, 'old fragment');
    const error = await failure(buildFragment(spec, out, { environment, cacheDir: cache }));
    expect(error.code).toBe('ERR_SPEC_BUILD_FAILED');
    expect(error.render()).toBe([
      'redo: "targets/tool.spec.yaml": build[0] exited with status 3',
      '  output (last 2 lines):',
      '    compiling',
      '    broken',
      '  hint: nothing was written; fix the step and build again',
    ].join('\n'));
    expect(readFileSync(out, 'utf8')).toBe('old fragment');
  });

  it('a files rule that matches nothing is an error naming its line', async () => {
    const spec = writeSpec('tool', 'name: tool\nversion: "1"\nbuild:\n  - mkdir -p "$DESTDIR/usr/bin"\nfiles:\n  - path: /usr/bin/tool\n');
    const error = await failure(buildFragment(spec, join(project, 'tool.tar'), { environment, cacheDir: cache }));
    expect(error.code).toBe('ERR_SPEC_FILES_UNMATCHED');
    expect(error.headline).toBe('redo: "targets/tool.spec.yaml:6": files: "/usr/bin/tool" matched nothing the build installed');
  });

  it('patches are applied in the build folder before the build steps', async () => {
    const fixture = resolve(__dirname, '../fixtures/401-spec-example');
    const copy = join(base, `example-${counter}`);
    spawnSync('cp', ['-r', fixture, copy]);
    const result = await buildFragment(join(copy, 'targets/hello.spec.yaml'), join(copy, 'app.tar'), { environment, cacheDir: cache, root: copy, layer: 'data' });
    expect(result.layers).toEqual(['app', 'data']);
    const entries = entriesOfTar(join(copy, 'app.tar'));
    expect(entries.map((e) => e.path.toString())).toEqual(['usr', 'usr/share', 'usr/share/hello', 'usr/share/hello/greeting.txt']);
    const appOnly = await buildFragment(join(copy, 'targets/hello.spec.yaml'), join(copy, 'app-only.tar'), { environment, cacheDir: cache, root: copy, layer: 'app' });
    expect(appOnly.layers).toEqual(['app', 'data']);
    expect(listing(join(copy, 'app-only.tar'))).toEqual([
      'usr directory 0755 0:0',
      'usr/bin directory 0755 0:0',
      'usr/bin/hello file 0755 0:0',
      'usr/bin/hi symlink 0777 0:0 -> hello',
    ]);
    const greeting = entries.find((e) => e.path.toString() === 'usr/share/hello/greeting.txt')!;
    const content = greeting.content as { path: string; offsetBytes: number };
    const bytes = readFileSync(content.path).subarray(content.offsetBytes, content.offsetBytes + greeting.sizeBytes);
    expect(bytes.toString()).toBe('hello, world\n');
  });
});

describe('build-requires', () => {
  it('fragments of build-requires are unpacked into $SYSROOT for the build steps and not delivered', async () => {
    const lib = writeSpec('lib', 'name: lib\nversion: "1"\nbuild:\n  - mkdir -p "$DESTDIR/usr/include" && echo "#define ANSWER 42" > "$DESTDIR/usr/include/lib.h"\nfiles:\n  - path: /usr/include\n');
    await buildFragment(lib, join(project, 'lib.tar'), { environment, cacheDir: cache });
    const app = writeSpec('app', 'name: app\nversion: "1"\nbuild:\n  - install -D -m 0644 "$SYSROOT/usr/include/lib.h" "$DESTDIR/usr/share/app/answer.h"\nfiles:\n  - path: /usr/share/app/answer.h\nbuild-requires: [lib]\n');
    await buildFragment(app, join(project, 'app.tar'), { environment, cacheDir: cache, sysroot: [join(project, 'lib.tar')] });
    expect(entriesOfTar(join(project, 'app.tar')).map((e) => e.path.toString())).toEqual(['usr', 'usr/share', 'usr/share/app', 'usr/share/app/answer.h']);
  });

  it('projectInputsOf lists the spec and its file: sources and patches for redo-ifchange', async () => {
    const fixture = resolve(__dirname, '../fixtures/401-spec-example');
    const spec = await loadSpec(join(fixture, 'targets/hello.spec.yaml'), { root: fixture });
    expect(projectInputsOf(spec)).toEqual(['patches/greeting.patch', 'src/greeting.txt', 'src/hello.sh', 'targets/hello.spec.yaml']);
  });
});

describe('deb: sources, offline from a fixture package in the cache', () => {
  async function seedCache(debPath: string): Promise<Integrity> {
    const integrity = await integrityOfFile(debPath);
    await insertIntoStore(cache, integrity, debPath, 'fixture');
    return integrity;
  }
  const debSpec = (integrity: string, extra = ''): string => `name: fixture
version: "1"
sources:
  - url: deb:${fixturePackage.name}=${fixturePackage.version}
    integrity: ${integrity}
    exclude: [/usr/share/doc/**]
${extra}`;

  it('delivers the package files with the package metadata, from a warm cache with no apt call', async () => {
    const deb = makeFixtureDeb(base, 'xz');
    const integrity = await seedCache(deb);
    // An empty PATH proves no apt-get (or anything else) is run for the fetch.
    const spec = writeSpec('fixture', debSpec(integrity));
    const out = join(project, 'fixture.tar');
    const result = await buildFragment(spec, out, { environment, cacheDir: cache, isOffline: true, env: { PATH: '/nonexistent' } });
    expect(listing(out)).toEqual([
      'etc directory 0755 0:0',
      'etc/fixture.conf file 0600 0:0',
      'usr directory 0755 0:0',
      'usr/bin directory 0755 0:0',
      'usr/bin/suid file 4755 0:0',
      'usr/bin/tool file 0755 0:0',
      'usr/bin/tool-link symlink 0777 0:0 -> tool',
      'usr/lib directory 0755 0:0',
      'usr/lib/fixture directory 0755 0:0',
      expect.stringMatching(/^usr\/lib\/fixture\/data (file 0644 0:0|hardlink 0644 0:0 -> usr\/lib\/fixture\/data-hard)$/),
      expect.stringMatching(/^usr\/lib\/fixture\/data-hard (file 0644 0:0|hardlink 0644 0:0 -> usr\/lib\/fixture\/data)$/),
      'usr/share directory 0755 0:0',
    ]);
    expect(result.sources).toEqual([{
      kind: 'deb', name: fixturePackage.name, version: fixturePackage.version, integrity,
      isProjectFile: false, url: `deb:${fixturePackage.name}=${fixturePackage.version}`, spec: 'targets/fixture.spec.yaml', role: 'source',
    }]);
  });

  it('a cached .deb replaced by a rebuilt package with the same control fields is refused offline, naming wanted and found', async () => {
    const deb = makeFixtureDeb(base, 'xz');
    const integrity = await seedCache(deb);
    // The same package, name, version and architecture, rebuilt (another compressor): other bytes.
    const rebuilt = readFileSync(makeFixtureDeb(join(base, 'rebuilt'), 'zstd'));
    const entry = poisonCacheEntry(cache, integrity, () => rebuilt);
    const spec = writeSpec('fixture', debSpec(integrity));
    const out = join(project, 'fixture.tar');
    const error = await failure(buildFragment(spec, out, { cacheDir: cache, isOffline: true, env: { PATH: '/nonexistent' } }));
    expect(error.code).toBe('ERR_CACHE_DAMAGED');
    expect(error.details.slice(0, 3)).toEqual([`entry:  ${entry}`, `wanted: ${integrity}`, `found:  ${integrityOfBytes(rebuilt)}`]);
    expect(existsSync(out)).toBe(false);
  });

  it('include keeps the listed files and their parent folders; a filtered-out hardlink target becomes a copy', async () => {
    const deb = makeFixtureDeb(base, 'zstd');
    const integrity = await seedCache(deb);
    const spec = writeSpec('fixture', `name: fixture
version: "1"
sources:
  - url: deb:${fixturePackage.name}=${fixturePackage.version}
    integrity: ${integrity}
    include: [/usr/bin/tool, /usr/lib/fixture/data-hard]
    layer: base
`);
    const out = join(project, 'fixture.tar');
    const result = await buildFragment(spec, out, { environment, cacheDir: cache, isOffline: true });
    expect(result.layers).toEqual(['base']);
    const lines = listing(out);
    expect(lines).toContain('usr/bin/tool file 0755 0:0');
    expect(lines).toContain('usr/lib/fixture/data-hard file 0644 0:0');
    expect(lines.filter((line) => line.includes('suid') || line.startsWith('etc'))).toEqual([]);
  });

  it('a path delivered by a package and by the build of the same spec is a conflict naming both', async () => {
    const deb = makeFixtureDeb(base, 'gzip');
    const integrity = await seedCache(deb);
    const spec = writeSpec('fixture', debSpec(integrity, `build:
  - install -D -m 0755 /dev/null "$DESTDIR/usr/bin/tool"
files:
  - path: /usr/bin/tool
`));
    const out = join(project, 'fixture.tar');
    const error = await failure(buildFragment(spec, out, { environment, cacheDir: cache, isOffline: true }));
    expect(error.code).toBe('ERR_FRAGMENT_CONFLICT');
    expect(error.render()).toBe([
      'redo: "/usr/bin/tool": delivered twice into targets/fixture.spec.yaml',
      '  first:  spec "fixture" (targets/fixture.spec.yaml) (file 0755 0:0, layer fixture)',
      `  second: spec "fixture" (targets/fixture.spec.yaml), deb:${fixturePackage.name}=${fixturePackage.version} (file 0755 0:0, layer fixture)`,
      '  hint: deliver each path from one spec only: narrow a files rule, or exclude it from a deb: source',
    ].join('\n'));
    expect(existsSync(out)).toBe(false);
  });

  it('one path delivered by two specs into one image is a conflict naming both specs', async () => {
    const deb = makeFixtureDeb(base, 'xz');
    const integrity = await seedCache(deb);
    const fixtureSpec = writeSpec('fixture', debSpec(integrity));
    const otherSpec = writeSpec('other', 'name: other\nversion: "1"\nbuild:\n  - install -D -m 0644 /dev/null "$DESTDIR/etc/fixture.conf"\nfiles:\n  - path: /etc/fixture.conf\n');
    await buildFragment(fixtureSpec, join(project, 'fixture.tar'), { environment, cacheDir: cache, isOffline: true });
    await buildFragment(otherSpec, join(project, 'other.tar'), { environment, cacheDir: cache, isOffline: true });
    const out = join(project, 'image-root.tar');
    const error = await failure(mergeFragments([
      { label: 'targets/fixture.spec.yaml', path: join(project, 'fixture.tar') },
      { label: 'targets/other.spec.yaml', path: join(project, 'other.tar') },
    ], out));
    expect(error.code).toBe('ERR_FRAGMENT_CONFLICT');
    expect(error.headline).toBe('redo: "/etc/fixture.conf": delivered twice into the merged fragments');
    expect(error.details).toEqual([
      'first:  targets/fixture.spec.yaml (file 0600 0:0)',
      'second: targets/other.spec.yaml (file 0644 0:0)',
    ]);
    expect(existsSync(out)).toBe(false);
  });

  it('a package with a ".." member is refused, naming package and member, and nothing is written', async () => {
    const deb = makeUnsafeDeb(base, '../../etc/evil', 'e2e');
    const integrity = await seedCache(deb);
    const spec = writeSpec('fixture', `name: fixture\nversion: "1"\nsources:\n  - url: deb:unsafe=1\n    integrity: ${integrity}\n`);
    const out = join(project, 'fixture.tar');
    const error = await failure(buildFragment(spec, out, { environment, cacheDir: cache, isOffline: true }));
    expect(error.code).toBe('ERR_DEB_UNSAFE_PATH');
    expect(error.headline).toBe('redo: "unsafe=1": package data archive holds an unsafe path');
    expect(error.details[0]).toBe('member: "../../etc/evil"');
    expect(existsSync(out)).toBe(false);
  });

  it('pins TARGET follows the dependencies redo recorded for a built target to its specs', async () => {
    const deb = makeFixtureDeb(base, 'xz');
    const integrity = await seedCache(deb);
    writeSpec('fixture', debSpec(integrity));
    writeFileSync(join(project, 'image.root.do'), 'redo-ifchange fixture.frag\necho root > "$3"\n');
    writeFileSync(join(project, 'fixture.frag.do'), 'redo-ifchange targets/fixture.spec.yaml\necho frag > "$3"\n');
    const built = await runCli(['image.root']);
    expect(built.status).toBe(0);
    const result = await runCli(['pins', 'image.root']);
    expect(result.status).toBe(0);
    expect(result.stdout.trimEnd().split('\n').map((line) => line.split(/ {2,}/))).toEqual([
      ['kind', 'name', 'version', 'integrity', 'spec'],
      ['deb', fixturePackage.name, fixturePackage.version, integrity, 'targets/fixture.spec.yaml'],
    ]);
    const unbuilt = await runCli(['pins', 'nothing.here']);
    expect(unbuilt.status).toBe(2);
    expect(unbuilt.stderr).toContain('redo: "nothing.here": not a spec and not built yet');
  });

  it('pins lists every pinned source of a spec and the specs it requires', async () => {
    const deb = makeFixtureDeb(base, 'xz');
    const integrity = await seedCache(deb);
    writeSpec('fixture', debSpec(integrity));
    writeFileSync(join(project, 'src/local.txt'), 'local\n');
    const local = await integrityOfFile(join(project, 'src/local.txt'));
    writeSpec('app', `name: app\nversion: "3.1"\nsources:\n  - url: file:src/local.txt\n    integrity: ${local}\nbuild-requires: [fixture]\n`);
    const result = await runCli(['pins', 'app']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const rows = result.stdout.trimEnd().split('\n').map((line) => line.split(/ {2,}/));
    expect(rows).toEqual([
      ['kind', 'name', 'version', 'integrity', 'spec'],
      ['file', 'local.txt', '3.1', local, 'targets/app.spec.yaml'],
      ['deb', fixturePackage.name, fixturePackage.version, integrity, 'targets/fixture.spec.yaml'],
    ]);
    const json = await runCli(['pins', '--json', 'targets/app.spec.yaml']);
    expect(JSON.parse(json.stdout).map((pin: { name: string }) => pin.name)).toEqual(['local.txt', fixturePackage.name]);
    const missing = writeSpec('broken', 'name: broken\nversion: "1"\nrequires: [nothere]\n');
    void missing;
    const broken = await runCli(['pins', 'broken']);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toContain('redo: "targets/broken.spec.yaml": requires: nothere names a spec that does not exist');
  });
});
