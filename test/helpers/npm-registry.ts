// A tiny npm registry on 127.0.0.1 for tests: packuments and tarballs of packages the
// test makes with `npm pack` from folders it writes, so no test depends on the live
// registry's current state.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';

/** One package to publish: its package.json fields and files. */
export interface TestPackage {
  manifest: Record<string, unknown> & { name: string; version: string };
  files: Record<string, string>;
}

/** A running registry. */
export interface TestRegistry {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  /** Paths requested so far. */
  requests: string[];
  /** Serves `bytes` instead of the packed tarball of NAME@VERSION (packument updated to match, as a compromised registry would). */
  replaceTarball(name: string, version: string, bytes: Buffer): void;
  /** The packed tarball bytes of NAME@VERSION. */
  tarball(name: string, version: string): Buffer;
  close(): Promise<void>;
}

/** Writes each package's folder under `dir`, packs it with `npm pack`, and serves the results. */
export async function startTestRegistry(dir: string, packages: TestPackage[], env: NodeJS.ProcessEnv): Promise<TestRegistry> {
  const tarballDir = join(dir, 'tarballs');
  mkdirSync(tarballDir, { recursive: true });
  for (const item of packages) {
    const folder = join(dir, 'packages', item.manifest.name.replace('/', '+'));
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'package.json'), `${JSON.stringify(item.manifest, null, 2)}\n`);
    for (const [path, text] of Object.entries(item.files)) {
      mkdirSync(join(folder, path, '..'), { recursive: true });
      writeFileSync(join(folder, path), text, { mode: path.startsWith('bin') ? 0o755 : 0o644 });
    }
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', tarballDir], { cwd: folder, env, stdio: 'ignore' });
  }
  const tarballs = new Map<string, Buffer>();
  const manifests = new Map<string, Record<string, unknown> & { name: string; version: string }>();
  for (const file of readdirSync(tarballDir)) {
    const bytes = readFileSync(join(tarballDir, file));
    const manifest = JSON.parse(execFileSync('tar', ['-xOzf', join(tarballDir, file), 'package/package.json'], { encoding: 'utf8' }));
    tarballs.set(`${manifest.name}@${manifest.version}`, bytes);
    manifests.set(`${manifest.name}@${manifest.version}`, manifest);
  }
  const requests: string[] = [];
  let base = '';
  const tarballPath = (name: string, version: string): string => `/${name}/-/${name.split('/').pop()}-${version}.tgz`;
  const server: Server = createServer((request, response) => {
    const path = decodeURIComponent(request.url ?? '');
    requests.push(path);
    for (const [key, bytes] of tarballs) {
      const manifest = manifests.get(key)!;
      if (path === tarballPath(manifest.name, manifest.version)) {
        response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length }).end(bytes);
        return;
      }
    }
    const name = path.slice(1);
    const versions = [...manifests.values()].filter((manifest) => manifest.name === name);
    if (versions.length === 0) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    const document = {
      name,
      'dist-tags': { latest: versions[versions.length - 1]!.version },
      versions: Object.fromEntries(versions.map((manifest) => {
        const bytes = tarballs.get(`${manifest.name}@${manifest.version}`)!;
        return [manifest.version, { ...manifest, dist: { tarball: `${base}${tarballPath(manifest.name, manifest.version).slice(1)}`, integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}` } }];
      })),
    };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(document));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  return {
    url: base,
    requests,
    replaceTarball: (name, version, bytes) => void tarballs.set(`${name}@${version}`, bytes),
    tarball: (name, version) => tarballs.get(`${name}@${version}`)!,
    close: () => new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    }),
  };
}
