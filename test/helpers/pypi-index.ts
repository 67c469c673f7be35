// A PEP 503 simple index on 127.0.0.1 for tests, serving wheels the test builds itself
// from small packages with Debian's python3-setuptools and python3-wheel.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';

/** Python with setuptools and wheel: Debian's own (python3-setuptools, python3-wheel). */
export const wheelPython = '/usr/bin/python3';

/** One package to build: name, version, licence, and its module files. */
export interface TestWheel {
  name: string;
  version: string;
  license: string;
  /** Files of the package folder (`tinyweb/__init__.py`: text). */
  files: Record<string, string>;
  /** Console scripts: `name = module:function`. */
  scripts?: string[];
}

/** A running index. */
export interface TestIndex {
  /** `http://127.0.0.1:PORT/simple/` */
  url: string;
  requests: string[];
  /** File name of the built wheel of NAME. */
  wheelOf(name: string): string;
  /** sha256 hex of the file served as NAME's wheel. */
  sha256Of(name: string): string;
  /** Serves `bytes` under NAME's wheel file name instead of the built wheel. */
  replace(name: string, bytes: Buffer): void;
  /** Serves `bytes` as one more file, `fileName` (another platform's wheel of a package, say); returns its sha256 hex. */
  serve(fileName: string, bytes: Buffer): string;
  close(): Promise<void>;
}

/** Environment for pip in tests: no machine configuration (files or PIP_* variables), the loopback index. */
export function pipEnvironment(indexUrl: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('PIP_')) env[name] = value;
  return { ...env, PIP_CONFIG_FILE: '/dev/null', PIP_INDEX_URL: indexUrl, PIP_DISABLE_PIP_VERSION_CHECK: '1' };
}

/** Builds one wheel per package under `dir` and serves them as a simple index (links without hash fragments, as PEP 503 allows). */
export async function startTestIndex(dir: string, wheels: TestWheel[]): Promise<TestIndex> {
  const out = join(dir, 'wheels');
  mkdirSync(out, { recursive: true });
  for (const wheel of wheels) {
    const folder = join(dir, 'src', wheel.name);
    for (const [path, text] of Object.entries(wheel.files)) {
      mkdirSync(join(folder, path, '..'), { recursive: true });
      writeFileSync(join(folder, path), text);
    }
    const packages = [...new Set(Object.keys(wheel.files).map((path) => path.split('/')[0]!))];
    writeFileSync(join(folder, 'setup.py'), [
      'from setuptools import setup',
      `setup(name=${JSON.stringify(wheel.name)}, version=${JSON.stringify(wheel.version)}, license=${JSON.stringify(wheel.license)},`,
      `      packages=${JSON.stringify(packages)}, entry_points={"console_scripts": ${JSON.stringify(wheel.scripts ?? [])}})`,
      '',
    ].join('\n'));
    execFileSync(wheelPython, ['setup.py', '-q', 'bdist_wheel', '--dist-dir', out], { cwd: folder, stdio: 'ignore', env: { ...process.env, SOURCE_DATE_EPOCH: '315532800' } });
  }
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(out)) files.set(name, readFileSync(join(out, name)));
  const normal = (name: string): string => name.toLowerCase().replace(/[-_.]+/g, '-');
  const wheelOf = (name: string): string => [...files.keys()].find((file) => normal(file.split('-')[0]!) === normal(name))!;
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    const path = decodeURIComponent(request.url ?? '');
    requests.push(path);
    const page = /^\/simple\/([^/]+)\/?$/.exec(path);
    if (page !== null) {
      const links = [...files.keys()].filter((file) => normal(file.split('-')[0]!) === normal(page[1]!));
      if (links.length === 0) {
        response.writeHead(404).end('not found');
        return;
      }
      response.writeHead(200, { 'content-type': 'text/html' }).end(`<!DOCTYPE html><html><body>\n${links.map((file) => `<a href="/files/${file}">${file}</a><br>`).join('\n')}\n</body></html>\n`);
      return;
    }
    const file = /^\/files\/(.+)$/.exec(path);
    if (file !== null && files.has(file[1]!)) {
      response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(files.get(file[1]!));
      return;
    }
    response.writeHead(404).end('not found');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/simple/`,
    requests,
    wheelOf,
    sha256Of: (name) => createHash('sha256').update(files.get(wheelOf(name))!).digest('hex'),
    replace: (name, bytes) => void files.set(wheelOf(name), bytes),
    serve: (fileName, bytes) => {
      files.set(fileName, bytes);
      return createHash('sha256').update(bytes).digest('hex');
    },
    close: () => new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    }),
  };
}
