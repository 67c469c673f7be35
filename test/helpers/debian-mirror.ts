// A signed Debian archive on loopback, made from scratch: tiny packages built with
// dpkg-deb (any data compression), Packages indexes in the compressions a suite is
// meant to offer (.xz, .gz, plain), Release files clear-signed with a throwaway gpg key,
// served by a node:http server on 127.0.0.1 under one or more archive roots
// (/debian, /debian-security). The caller passes `keyringPath` to `redo-ts lock --keyring`.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** One package of the archive. */
export interface TinyPackage {
  name: string;
  version: string;
  architecture?: string;
  depends?: string;
  /** Files it installs: path (no leading slash) → text. */
  files?: Record<string, string>;
  /** dpkg-deb -Z value (gzip, xz, zstd, none); default xz. */
  compression?: string;
  /** Extra control fields (`Multi-Arch: same`). */
  control?: Record<string, string>;
  /** Control-archive members besides control (postinst…): name → text. */
  scripts?: Record<string, string>;
}

/** One suite of an archive root. */
export interface TinySuite {
  /** Archive root folder name, the URL path below the server: `debian`, `debian-security`. */
  root: string;
  suite: string;
  packages: TinyPackage[];
  /** Which index files the Release file lists and the server serves; default all three. */
  compressions?: Array<'.xz' | '.gz' | ''>;
  /** Architecture of the index (default amd64). */
  architecture?: string;
  /** Several architectures, one index each (packages go to their own architecture's, `all` to every one). */
  architectures?: string[];
}

/** A running archive. */
export interface TinyArchive {
  /** `http://127.0.0.1:PORT` (add `/debian`). */
  base: string;
  keyringPath: string;
  /** Request paths seen, in order. */
  requests: string[];
  /** The .deb file built for a package, by `name_version`. */
  debs: Map<string, string>;
  /** Replaces a served file's bytes (to test tampering); path below the server. */
  tamper(path: string, bytes: Buffer): void;
  close(): Promise<void>;
}

/** Builds one .deb with dpkg-deb into `folder`; returns its path. */
export function buildTinyDeb(folder: string, pkg: TinyPackage): string {
  const arch = pkg.architecture ?? 'amd64';
  const tree = join(folder, `tree-${pkg.name}-${pkg.version}`);
  mkdirSync(join(tree, 'DEBIAN'), { recursive: true });
  const control = [`Package: ${pkg.name}`, `Version: ${pkg.version}`, `Architecture: ${arch}`, 'Maintainer: Test <test@example.org>',
    ...(pkg.depends !== undefined ? [`Depends: ${pkg.depends}`] : []), ...Object.entries(pkg.control ?? {}).map(([k, v]) => `${k}: ${v}`), `Description: ${pkg.name} for tests`];
  writeFileSync(join(tree, 'DEBIAN', 'control'), `${control.join('\n')}\n`);
  for (const [name, text] of Object.entries(pkg.scripts ?? {})) writeFileSync(join(tree, 'DEBIAN', name), text, { mode: 0o755 });
  for (const [path, text] of Object.entries(pkg.files ?? { [`usr/share/${pkg.name}/VERSION`]: `${pkg.version}\n` })) {
    mkdirSync(join(tree, path, '..'), { recursive: true });
    writeFileSync(join(tree, path), text);
  }
  const out = join(folder, `${pkg.name}_${pkg.version.replace(/:/g, '%3a')}_${arch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', `-Z${pkg.compression ?? 'xz'}`, '--build', tree, out], { stdio: 'ignore', env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } });
  return out;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Makes the archive under `folder` and serves it; stop it with close(). */
export async function serveTinyArchive(folder: string, suites: TinySuite[]): Promise<TinyArchive> {
  const home = join(folder, 'gnupg');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const gpg = (args: string[]): Buffer => execFileSync('gpg', ['--homedir', home, '--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  if (!existsSync(join(folder, 'keyring.gpg'))) {
    gpg(['--quick-gen-key', 'redo-ts test archive <test@example.org>', 'ed25519', 'sign', 'never']);
    writeFileSync(join(folder, 'keyring.gpg'), gpg(['--export']));
  }
  const files = new Map<string, Buffer>();
  const debs = new Map<string, string>();
  const pool = join(folder, 'pool');
  mkdirSync(pool, { recursive: true });
  for (const suite of suites) {
    const architectures = suite.architectures ?? [suite.architecture ?? 'amd64'];
    const paragraphs = new Map<string, string[]>(architectures.map((arch) => [arch, []]));
    for (const pkg of suite.packages) {
      const deb = buildTinyDeb(pool, { ...pkg, architecture: pkg.architecture ?? architectures[0]! });
      const bytes = readFileSync(deb);
      const filename = `pool/main/${pkg.name[0]}/${pkg.name}/${deb.split('/').pop()}`;
      files.set(`/${suite.root}/${filename}`, bytes);
      debs.set(`${pkg.name}_${pkg.version}`, deb);
      const packageArch = pkg.architecture ?? architectures[0]!;
      const paragraph = [`Package: ${pkg.name}`, `Version: ${pkg.version}`, `Architecture: ${packageArch}`, 'Maintainer: Test <test@example.org>',
        ...(pkg.depends !== undefined ? [`Depends: ${pkg.depends}`] : []), ...Object.entries(pkg.control ?? {}).map(([k, v]) => `${k}: ${v}`),
        `Filename: ${filename}`, `Size: ${bytes.length}`, `SHA256: ${sha256(bytes)}`, 'Priority: optional', `Description: ${pkg.name} for tests`].join('\n');
      for (const arch of architectures) if (packageArch === arch || packageArch === 'all') paragraphs.get(arch)!.push(paragraph);
    }
    const forms = new Map<string, Buffer>();
    for (const arch of architectures) {
      const plain = Buffer.from(`${paragraphs.get(arch)!.join('\n\n')}\n`);
      const metaKey = `main/binary-${arch}/Packages`;
      forms.set(metaKey, plain);
      for (const suffix of suite.compressions ?? ['.xz', '.gz', '']) {
        if (suffix !== '') forms.set(`${metaKey}${suffix}`, suffix === '.gz' ? gzipSync(plain) : execFileSync('xz', ['-c', '-0'], { input: plain }));
      }
    }
    const release = [`Origin: Debian`, `Label: Debian`, `Suite: ${suite.suite}`, `Codename: ${suite.suite}`, 'Date: Sat, 11 Jul 2026 10:16:37 UTC',
      `Architectures: ${architectures.join(' ')}`, 'Components: main', 'SHA256:',
      // The uncompressed entry is listed even when only compressed files are served, as Debian does.
      ...[...forms.keys()].sort().map((key) => ` ${sha256(forms.get(key)!)} ${forms.get(key)!.length} ${key}`)].join('\n');
    const releasePath = join(folder, `${suite.root}-${suite.suite}.Release`);
    writeFileSync(releasePath, `${release}\n`);
    files.set(`/${suite.root}/dists/${suite.suite}/InRelease`, gpg(['--clearsign', '--output', '-', releasePath]));
    const served = suite.compressions ?? ['.xz', '.gz', ''];
    for (const [key, bytes] of forms) if (served.some((suffix) => key.endsWith(`Packages${suffix}`))) files.set(`/${suite.root}/dists/${suite.suite}/${key}`, bytes);
  }
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    const url = request.url ?? '';
    requests.push(url);
    const bytes = files.get(url);
    if (bytes === undefined) {
      response.statusCode = 404;
      return response.end();
    }
    response.end(bytes);
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const address = server.address() as { port: number };
  return {
    base: `http://127.0.0.1:${address.port}`,
    keyringPath: join(folder, 'keyring.gpg'),
    requests,
    debs,
    tamper: (path, bytes) => files.set(path, bytes),
    close: () => new Promise((resolveClose) => server.close(() => resolveClose())),
  };
}
