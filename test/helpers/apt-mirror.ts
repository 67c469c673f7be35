// A local Debian archive for tests whose outcome must not depend on the day: .debs the
// test builds with dpkg-deb (or any .deb it has), a Packages index and a Release file
// signed (InRelease) by an OpenPGP key made for the test, as apt's own tests do, served
// over HTTP on 127.0.0.1, and an apt configuration (APT_CONFIG) that knows only this
// archive and an empty dpkg status. `apt-get update`, `apt-get download`, `redo-ts lock
// --keyring` and builds from a lock then see exactly what the test published, and
// `publish` again moves versions forward (or removes them) as a point release does.
//
//   const mirror = await startAptMirror(join(scratch, 'mirror'));
//   await mirror.publish([buildDeb(join(scratch, 'debs'), { name: 'libdemo1', version: '1.0-1' })]);
//   await runCli(dir, ['lock', '--keyring', mirror.keyring], { env: mirror.env });
//   ...
//   await mirror.stop();   // in afterAll/finally: closes the server and ends the gpg-agent
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, join, normalize } from 'node:path';

/** A package to build with buildDeb: control fields and the files it ships. */
export interface FakeDeb {
  name: string;
  version: string;
  /** Default amd64. */
  architecture?: string;
  /** A Depends field, as Debian writes it (`libc6 (>= 2.34), zlib1g`). */
  depends?: string;
  /** Source package name when it differs from `name`. */
  source?: string;
  multiArch?: 'same' | 'foreign' | 'allowed';
  /** Shipped files: path inside the package (`usr/share/demo/x`) → content. Default one file naming the version. */
  files?: Record<string, string>;
}

/** A fixed time for every built file and archive member, so a FakeDeb gives the same bytes on any day. */
const fixedEpoch = 1_700_000_000;

/**
 * Builds `spec` with `dpkg-deb --root-owner-group --build` into `outDir` (created when
 * missing) and returns the .deb's path, named NAME_VERSION_ARCH.deb (epoch dropped).
 */
export function buildDeb(outDir: string, spec: FakeDeb): string {
  const architecture = spec.architecture ?? 'amd64';
  const stem = `${spec.name}_${spec.version.replace(/^[0-9]+:/, '')}_${architecture}`;
  const root = join(outDir, `${stem}.tree`);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  const files = spec.files ?? { [`usr/share/${spec.name}/version`]: `${spec.name} ${spec.version}\n` };
  for (const [path, content] of Object.entries(files)) {
    const target = join(root, normalize(path).replace(/^\/+/, ''));
    mkdirSync(join(target, '..'), { recursive: true });
    writeFileSync(target, content);
    chmodSync(target, 0o644);
  }
  const control = [
    `Package: ${spec.name}`,
    ...(spec.source !== undefined ? [`Source: ${spec.source}`] : []),
    `Version: ${spec.version}`,
    `Architecture: ${architecture}`,
    ...(spec.multiArch !== undefined ? [`Multi-Arch: ${spec.multiArch}`] : []),
    'Maintainer: redo-ts tests <tests@localhost>',
    ...(spec.depends !== undefined ? [`Depends: ${spec.depends}`] : []),
    'Priority: optional',
    'Section: misc',
    `Description: ${spec.name}, a package made by a redo-ts test`,
    '',
  ].join('\n');
  writeFileSync(join(root, 'DEBIAN', 'control'), control);
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', `@${fixedEpoch}`, '{}', '+']);
  const deb = join(outDir, `${stem}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, deb], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SOURCE_DATE_EPOCH: String(fixedEpoch) } });
  utimesSync(deb, fixedEpoch, fixedEpoch);
  rmSync(root, { recursive: true, force: true });
  return deb;
}

/** A running local archive (see startAptMirror). */
export interface AptMirror {
  /** Archive root URL, `http://127.0.0.1:PORT/debian` (for `deb` lines and `redo-ts lock --mirror`). */
  url: string;
  suite: string;
  architecture: string;
  /** The OpenPGP public keyring (binary) that verifies the Release file: for `redo-ts lock --keyring`, gpgv, signed-by. */
  keyring: string;
  /** The apt configuration file that knows only this archive. */
  aptConfig: string;
  /** Environment for apt and redo-ts: `{ APT_CONFIG }`. */
  env: NodeJS.ProcessEnv;
  /**
   * Makes the archive hold exactly `debs` (replacing what it held): copies them into
   * the pool, writes Packages and a newer signed InRelease, then runs `apt-get update`
   * with `env`. Returns each .deb's pool path (its `Filename`).
   */
  publish(debs: readonly string[]): Promise<string[]>;
  /**
   * Writes the dpkg status apt reads to say `packages` are installed (at most one
   * version of a name): apt then knows those versions even when no index lists them,
   * as on a machine whose installed packages are older or newer than its indexes.
   */
  setInstalled(packages: ReadonlyArray<{ name: string; version: string; architecture?: string }>): void;
  /** Deletes a pool file the index still lists (apt then fails to fetch it, as a half-synced mirror would). */
  removeFromPool(filename: string): void;
  /** Closes the server and ends the gpg-agent; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a local archive under the empty-or-missing folder `dir`: makes a signing key
 * (gpg, in a key folder of its own), listens on 127.0.0.1 on a free port, and writes an
 * apt configuration that reads only this archive (own lists, cache and empty dpkg
 * status; the machine's sources, preferences and apt.conf.d are not read). Nothing is
 * published yet: call `publish`. Needs gpg, gpgv, dpkg-deb and apt.
 */
export async function startAptMirror(dir: string, options: { suite?: string; architecture?: string } = {}): Promise<AptMirror> {
  const suite = options.suite ?? 'bookworm';
  const architecture = options.architecture ?? 'amd64';
  const archive = join(dir, 'archive');
  const gnupg = join(dir, 'gnupg');
  const aptDir = join(dir, 'apt');
  for (const folder of [archive, aptDir, join(aptDir, 'lists', 'partial'), join(aptDir, 'parts'), join(aptDir, 'cache', 'archives', 'partial')]) mkdirSync(folder, { recursive: true });
  mkdirSync(gnupg, { recursive: true, mode: 0o700 });
  const gpg = (args: string[], input?: string): Buffer => execFileSync('gpg', ['--batch', '--quiet', '--homedir', gnupg, ...args], { input, stdio: ['pipe', 'pipe', 'pipe'] });
  gpg(['--pinentry-mode', 'loopback', '--passphrase', '', '--quick-generate-key', 'redo-ts test archive <archive@localhost>', 'ed25519', 'sign', 'never']);
  const keyring = join(dir, 'archive-keyring.gpg');
  writeFileSync(keyring, gpg(['--export']));

  const server: Server = createServer((request, response) => {
    const path = decodeURIComponent((request.url ?? '/').split('?')[0]!);
    const file = path.startsWith('/debian/') ? join(archive, normalize(path.slice('/debian/'.length))) : '';
    if (file === '' || !file.startsWith(archive) || !existsSync(file) || !statSync(file).isFile()) {
      response.statusCode = 404;
      response.end();
      return;
    }
    response.setHeader('content-length', statSync(file).size);
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/debian`;

  const aptConfig = join(aptDir, 'apt.conf');
  writeFileSync(join(aptDir, 'sources.list'), `deb [signed-by=${keyring} arch=${architecture}] ${url} ${suite} main\n`);
  writeFileSync(join(aptDir, 'status'), '');
  writeFileSync(aptConfig, [
    `Dir::Etc::sourcelist "${aptDir}/sources.list";`,
    `Dir::Etc::sourceparts "${aptDir}/parts";`,
    `Dir::Etc::parts "${aptDir}/parts";`,
    `Dir::Etc::preferences "${aptDir}/preferences";`,
    `Dir::Etc::preferencesparts "${aptDir}/parts";`,
    `Dir::State "${aptDir}/";`,
    `Dir::State::lists "${aptDir}/lists/";`,
    `Dir::State::status "${aptDir}/status";`,
    `Dir::Cache "${aptDir}/cache/";`,
    `APT::Architecture "${architecture}";`,
    `APT::Architectures { "${architecture}"; };`,
    'Acquire::Languages "none";',
    'APT::Sandbox::User "root";',
    '',
  ].join('\n'));
  const env = { APT_CONFIG: aptConfig };

  let generation = 0;
  let isStopped = false;
  return {
    url, suite, architecture, keyring, aptConfig, env,
    async publish(debs) {
      generation += 1;
      rmSync(join(archive, 'pool'), { recursive: true, force: true });
      const stanzas: string[] = [];
      const filenames: string[] = [];
      for (const deb of debs) {
        const fields = execFileSync('dpkg-deb', ['--field', deb], { encoding: 'utf8' }).trimEnd();
        const name = /^Package: (.+)$/m.exec(fields)![1]!;
        const source = (/^Source: (\S+)/m.exec(fields)?.[1] ?? name);
        const folder = `pool/main/${source.startsWith('lib') ? source.slice(0, 4) : source[0]}/${source}`;
        const filename = `${folder}/${basename(deb)}`;
        mkdirSync(join(archive, folder), { recursive: true });
        copyFileSync(deb, join(archive, filename));
        const bytes = readFileSync(deb);
        stanzas.push(`${fields}\nFilename: ${filename}\nSize: ${bytes.length}\nSHA256: ${createHash('sha256').update(bytes).digest('hex')}\n`);
        filenames.push(filename);
      }
      const indexPath = `main/binary-${architecture}/Packages`;
      const dists = join(archive, 'dists', suite);
      mkdirSync(join(dists, `main/binary-${architecture}`), { recursive: true });
      const packages = Buffer.from(stanzas.join('\n'));
      writeFileSync(join(dists, indexPath), packages);
      // Each publication is dated one minute after the last, as a real archive's are.
      const date = new Date(Date.UTC(2026, 0, 1, 0, generation)).toUTCString().replace('GMT', 'UTC');
      const release = [
        'Origin: redo-ts tests', 'Label: redo-ts tests', `Suite: ${suite}`, `Codename: ${suite}`, `Date: ${date}`,
        `Architectures: ${architecture}`, 'Components: main', 'Description: a local archive made by a redo-ts test', 'SHA256:',
        ` ${createHash('sha256').update(packages).digest('hex')} ${packages.length} ${indexPath}`, '',
      ].join('\n');
      writeFileSync(join(dists, 'Release'), release);
      rmSync(join(dists, 'InRelease'), { force: true });
      gpg(['--clearsign', '--output', join(dists, 'InRelease'), join(dists, 'Release')]);
      // Asynchronously: this process serves the archive apt-get is reading.
      const update = await new Promise<{ status: number | null; stderr: string }>((resolveRun) => {
        const child = spawn('apt-get', ['update', '-q'], { env: { ...process.env, ...env, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
        child.on('error', (error) => resolveRun({ status: null, stderr: error.message }));
        child.on('close', (status) => resolveRun({ status, stderr }));
      });
      if (update.status !== 0 || /^(E|W):/m.test(update.stderr)) throw new Error(`apt-get update against the local archive failed:\n${update.stderr}`);
      return filenames;
    },
    setInstalled(packages) {
      writeFileSync(join(aptDir, 'status'), packages.map((p) => [
        `Package: ${p.name}`, 'Status: install ok installed', 'Priority: optional', 'Section: misc', 'Maintainer: redo-ts tests <tests@localhost>',
        `Architecture: ${p.architecture ?? architecture}`, `Version: ${p.version}`, `Description: ${p.name}`, '',
      ].join('\n')).join('\n'));
    },
    removeFromPool(filename) {
      rmSync(join(archive, filename));
    },
    async stop() {
      if (isStopped) return;
      isStopped = true;
      server.closeAllConnections();
      await new Promise((resolveClose) => server.close(resolveClose));
      spawnSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    },
  };
}
