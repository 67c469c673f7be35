// `redo-ts lock` and builds from a lock, on a small package list (zlib1g and libffi8):
// lock --update prints old -> new; a stale or missing lock, an unknown package, an
// unsatisfiable constraint, a .deb whose control fields disagree with its pin, and a
// package neither apt nor the cache has each fail with a clear error; `redo-ts cache
// add` imports .debs for a build without apt; a loopback mirror serves indexes
// (checked against Debian's keyring) and packages.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentFixture } from '../helpers/build-environment.js';
import { repoRoot, runCli } from '../helpers/rig.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-debian-lock-'));
const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolveClose) => server.close(resolveClose))));
  rmSync(scratch, { recursive: true, force: true });
});

let projects = 0;
/** A fresh project: package.json, the shared rules, and targets/small.spec.yaml with `packages`. */
function project(packages: string[], extra = ''): string {
  projects += 1;
  const dir = join(scratch, `project-${projects}`);
  mkdirSync(join(dir, 'targets'), { recursive: true });
  cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
  writeSpec(dir, packages, extra);
  return dir;
}
function writeSpec(dir: string, packages: string[], extra = ''): void {
  writeFileSync(join(dir, 'targets', 'small.spec.yaml'), `name: small\nversion: "1"\npackages:\n${packages.map((p) => `  - ${JSON.stringify(p)}\n`).join('')}exclude: [/usr/share/doc/**]\n${extra}`);
}
const lockOf = (dir: string): string => readFileSync(join(dir, 'targets', 'small.lock.yaml'), 'utf8');
/** The version and integrity the lock gives `name`. */
function locked(dir: string, name: string): { version: string; integrity: string } {
  const block = new RegExp(`^ {2}- name: ${name}\\n {4}version: "?([^"\\n]+)"?\\n(?: {4}.*\\n)*? {4}integrity: "?([^"\\n]+)"?$`, 'm').exec(lockOf(dir));
  if (block === null) throw new Error(`${name} is not in the lock`);
  return { version: block[1]!, integrity: block[2]! };
}
/** The names the lock pins, in its order (the closure the indexes gave today). */
const lockedNames = (dir: string): string[] => [...lockOf(dir).matchAll(/^ {2}- name: (\S+)$/gm)].map((m) => m[1]!);
/**
 * An apt configuration that knows no package source and no installed package (an empty
 * dpkg status, so what this machine has installed cannot change apt's words): apt-get
 * download finds nothing.
 */
function aptWithoutSources(): string {
  const path = join(scratch, 'apt-empty.conf');
  mkdirSync(join(scratch, 'apt-empty'), { recursive: true });
  writeFileSync(join(scratch, 'apt-empty-status'), '');
  writeFileSync(path, `Dir::Etc::sourcelist "${scratch}/apt-empty/none.list";\nDir::Etc::sourceparts "${scratch}/apt-empty";\nDir::State::lists "${scratch}/apt-empty/";\nDir::State::status "${scratch}/apt-empty-status";\n`);
  return path;
}

// One locked project serves the lock, build and error tests below, in order.
const dir = project(['zlib1g', 'libffi8']);

describe('redo-ts lock', () => {

  it('resolves the closure into a readable lock, each package with what pulled it in', async () => {
    const result = await runCli(dir, ['lock']);
    expect(result.code, result.stderr).toBe(0);
    const text = lockOf(dir);
    expect(text).toMatch(/^requested:\n {2}- libffi8\n {2}- zlib1g\n/m);
    expect(text).toMatch(/^ {2}- name: libc6\n {4}version: .+\n {4}architecture: amd64\n {4}source: glibc\n {4}size: [0-9]+\n {4}filename: pool\/main\/g\/glibc\/libc6_.+_amd64\.deb\n {4}integrity: "?sha256-[A-Za-z0-9+/]{43}="?\n {4}suite: bookworm.*\n {4}pulled-by: \[libffi8, libgcc-s1, zlib1g\]$/m);
    expect(result.stdout).toMatch(/^targets\/small\.lock\.yaml: zlib1g \(new\) -> 1:1\.2\./m);
  });

  it('--update moves versions forward and prints old -> new', async () => {
    const current = locked(dir, 'zlib1g').version;
    writeFileSync(join(dir, 'targets', 'small.lock.yaml'), lockOf(dir).replace(`version: "${current}"`, 'version: "1:1.2.11.dfsg-1"').replace(`version: ${current}\n`, 'version: "1:1.2.11.dfsg-1"\n'));
    const result = await runCli(dir, ['lock', '--update']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`targets/small.lock.yaml: zlib1g 1:1.2.11.dfsg-1 -> ${current}\n`);
    expect(locked(dir, 'zlib1g').version).toBe(current);
  });

  it('refuses an unknown package, suggesting names', async () => {
    const bad = project(['libffi']);
    const result = await runCli(bad, ['lock']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: package "libffi": not in any package index');
    expect(result.stderr).toMatch(/similar names: libffi8, /);
    expect(() => lockOf(bad)).toThrow();
  });

  it('refuses an unsatisfiable constraint, naming the versions there are', async () => {
    const bad = project(['zlib1g (>= 1:9)']);
    const result = await runCli(bad, ['lock']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: package list: "zlib1g (>= 1:9)" cannot be satisfied');
    // The version the indexes offer today, whatever it is: the one `lock` pinned above.
    expect(result.stderr).toMatch(new RegExp(`available: .*zlib1g ${locked(dir, 'zlib1g').version.replace(/[.+]/g, '\\$&')}`));
  });
});

describe('building from a lock', () => {
  it('builds, and dpkg-query lists exactly the locked packages', async () => {
    const result = await runCli(dir, ['targets/small.fragment.tar']);
    expect(result.code, result.stderr).toBe(0);
    const root = join(scratch, 'small-root');
    mkdirSync(root);
    execFileSync('tar', ['-xf', join(dir, 'targets', 'small.fragment.tar'), '-C', root]);
    const listed = execFileSync('dpkg-query', [`--admindir=${root}/var/lib/dpkg`, '-W', '-f', '${Package}\n'], { encoding: 'utf8' });
    expect(listed.trim().split('\n')).toEqual(lockedNames(dir));
    expect(lockedNames(dir)).toEqual(expect.arrayContaining(['libc6', 'libffi8', 'zlib1g']));
    expect(execFileSync('dpkg', [`--root=${root}`, '--verify'], { encoding: 'utf8' })).toBe('');
  });

  it('fails on a missing lock, saying to run redo-ts lock', async () => {
    const bare = project(['zlib1g']);
    const result = await runCli(bare, ['targets/small.fragment.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "targets/small.lock.yaml": no lock file');
    expect(result.stderr).toContain('hint: run `redo-ts lock targets/small.spec.yaml`');
  });

  it('fails on a stale lock naming what differs, and never changes the lock', async () => {
    const before = lockOf(dir);
    writeSpec(dir, ['zlib1g', 'libffi8', 'libzstd1 (>= 1.5)']);
    const result = await runCli(dir, ['targets/small.fragment.tar']);
    writeSpec(dir, ['zlib1g', 'libffi8']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "targets/small.lock.yaml": the lock does not match the package list of "targets/small.spec.yaml"');
    expect(result.stderr).toContain('added to the list:     libzstd1 (>= 1.5)');
    expect(result.stderr).toContain('hint: run `redo-ts lock targets/small.spec.yaml` and review the change; a build never changes a lock');
    expect(lockOf(dir)).toBe(before);
  });

  it('refuses a lock whose pin is another package\'s .deb (control fields checked on a warm cache)', async () => {
    const zlib = locked(dir, 'zlib1g');
    const ffi = locked(dir, 'libffi8');
    const good = lockOf(dir);
    writeFileSync(join(dir, 'targets', 'small.lock.yaml'), good.replace(zlib.integrity, ffi.integrity));
    const result = await runCli(dir, ['targets/small.fragment.tar']);
    writeFileSync(join(dir, 'targets', 'small.lock.yaml'), good);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "targets/small.lock.yaml": package zlib1g: the .deb is not the package it is pinned as');
    expect(result.stderr).toContain('Package: wanted zlib1g, the .deb says libffi8');
    expect(result.stderr).toContain(`Version: wanted ${zlib.version}, the .deb says ${ffi.version}`);
  });

  it('refuses a deb: source pinned with another package\'s integrity', async () => {
    const spec = join(dir, 'targets', 'pinned.spec.yaml');
    writeFileSync(spec, `name: pinned\nversion: "1"\nsources:\n  - url: deb:zlib1g=${locked(dir, 'zlib1g').version}?arch=amd64\n    integrity: ${locked(dir, 'libffi8').integrity}\n`);
    const result = await runCli(dir, ['targets/pinned.fragment.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/redo: "targets\/pinned\.spec\.yaml": source "deb:zlib1g=.*": the \.deb is not the package it is pinned as/);
    expect(result.stderr).toContain('Package: wanted zlib1g, the .deb says libffi8');
  });
});

describe('the ELF closure check', () => {
  it('fails an image whose programs need a library it lacks, naming binary, soname and layer', async () => {
    writeFileSync(join(dir, 'targets', 'broken.spec.yaml'), readFileSync(join(dir, 'targets', 'small.spec.yaml'), 'utf8')
      .replace('name: small', 'name: broken').replace('exclude: [/usr/share/doc/**]', 'exclude: [/usr/share/doc/**, /lib/x86_64-linux-gnu/libc.so.6, /usr/lib/x86_64-linux-gnu/gconv/**]'));
    writeFileSync(join(dir, 'targets', 'broken.lock.yaml'), lockOf(dir));
    writeFileSync(join(dir, 'targets', 'broken.yaml'), 'tags: [localhost/broken:1]\nlayers: [broken.fragment.tar]\n');
    const result = await runCli(dir, ['targets/broken.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/redo: "targets\/broken\.tar": [0-9]+ libraries ELF files need are not in the image/);
    expect(result.stderr).toMatch(/^ {2}\/usr\/lib\/x86_64-linux-gnu\/lib[^ ]+\.so[.0-9]* needs libc\.so\.6 \(binary in layer broken\.fragment\.tar\)$/m);
    writeFileSync(join(dir, 'targets', 'broken.yaml'), 'tags: [localhost/broken:1]\nallowMissingLibraries: true\nlayers: [broken.fragment.tar]\n');
    expect((await runCli(dir, ['targets/broken.tar'])).code).toBe(0);
  });
});

describe('layers of a package list', () => {
  it('puts a listed package and what it pulls in into its layer, the rest and dpkg\'s database into the spec\'s', async () => {
    writeFileSync(join(dir, 'targets', 'layered.spec.yaml'), 'name: layered\nversion: "1"\npackages:\n  - {name: libffi8, layer: ffi}\n  - zlib1g\nexclude: [/usr/share/doc/**]\n');
    writeFileSync(join(dir, 'targets', 'layered.lock.yaml'), lockOf(dir));
    const result = await runCli(dir, ['targets/layered@ffi.fragment.tar', 'targets/layered@layered.fragment.tar']);
    expect(result.code, result.stderr).toBe(0);
    const members = (layer: string): string[] => execFileSync('tar', ['-tf', join(dir, 'targets', `layered@${layer}.fragment.tar`)], { encoding: 'utf8' }).trim().split('\n');
    const ffi = members('ffi');
    // libffi8 pulls in libc6 (and libc6 libgcc-s1, gcc-12-base): listed first, they are ffi's.
    expect(ffi.filter((path) => !path.endsWith('/')).some((path) => path.includes('libffi.so.8'))).toBe(true);
    expect(ffi.some((path) => path.includes('libc.so.6'))).toBe(true);
    expect(ffi.some((path) => path.includes('libz.so'))).toBe(false);
    expect(ffi.some((path) => path.startsWith('var/lib/dpkg/'))).toBe(false);
    const rest = members('layered');
    expect(rest.some((path) => path.includes('libz.so.1'))).toBe(true);
    expect(rest).toContain('var/lib/dpkg/status');
    expect(rest.some((path) => path.includes('libffi.so'))).toBe(false);
  });
});

describe('requires', () => {
  it('fails an image that holds a spec\'s fragment but not the fragments it requires', async () => {
    // Its build step runs in the sandbox over the tests' build environment (busybox, coreutils).
    for (const file of ['build-environment.spec.yaml', 'build-environment.lock.yaml']) cpSync(join(currentFixture('build-environment'), file), join(dir, 'targets', file));
    writeFileSync(join(dir, 'targets', 'needs.spec.yaml'), 'name: needs\nversion: "1"\nbuild:\n  - mkdir -p "$DESTDIR/etc" && echo hi > "$DESTDIR/etc/needs"\nfiles:\n  - path: /etc/needs\nrequires: [small]\n');
    writeFileSync(join(dir, 'targets', 'needs.yaml'), 'tags: [localhost/needs:1]\nlayers: [needs.fragment.tar]\n');
    const result = await runCli(dir, ['targets/needs.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "targets/needs.tar": layer "needs.fragment.tar" requires specs that are not layers of the image');
    expect(result.stderr).toContain('targets/needs.spec.yaml requires small: add small.fragment.tar to needs.yaml');
    writeFileSync(join(dir, 'targets', 'needs.yaml'), 'tags: [localhost/needs:1]\nlayers: [small.fragment.tar, needs.fragment.tar]\n');
    const fixed = await runCli(dir, ['targets/needs.tar']);
    expect(fixed.code, fixed.stderr).toBe(0);
    // Later tests lock every package list of the project: not this one.
    for (const file of ['build-environment.spec.yaml', 'build-environment.lock.yaml']) rmSync(join(dir, 'targets', file));
  });
});

describe('without apt', () => {
  it('names the packages neither apt nor the cache has, then builds from .debs imported with cache add', async () => {
    const env = { REDO_TS_CACHE: join(scratch, 'empty-cache'), APT_CONFIG: aptWithoutSources() };
    const failed = await runCli(dir, ['-f', 'targets/small.fragment.tar'], { env });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`redo: "targets/small.lock.yaml": ${lockedNames(dir).length} packages cannot be fetched`);
    expect(failed.stderr).toContain(`packages: ${lockedNames(dir).map((name) => `${name}=${locked(dir, name).version}`).join(', ')}\n`);
    expect(failed.stderr).toContain('cache: no copy of these pins');
    expect(failed.stderr).toContain('redo-ts cache add FILE.deb...');

    const debs = join(scratch, 'debs');
    mkdirSync(debs);
    const names = lockedNames(dir);
    execFileSync('apt-get', ['download', '-q', ...names.map((name) => `${name}=${locked(dir, name).version}`)], { cwd: debs, stdio: 'ignore' });
    const files = readdirSync(debs).sort().map((file) => join(debs, file));
    const added = await runCli(dir, ['cache', 'add', ...files], { env });
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(`zlib1g ${locked(dir, 'zlib1g').version} amd64 ${locked(dir, 'zlib1g').integrity}`);
    const built = await runCli(dir, ['-f', 'targets/small.fragment.tar'], { env });
    expect(built.code, built.stderr).toBe(0);
  });
});

describe('a mirror base URL', () => {
  /** Serves a copy of the machine's bookworm index (or a tampered InRelease) and packages from `pool`. */
  async function serveMirror(isTampered: boolean, pool: string): Promise<string> {
    const lists = '/var/lib/apt/lists';
    const stem = readdirSync(lists).find((name) => /_dists_bookworm_InRelease$/.test(name))!;
    let release = readFileSync(join(lists, stem), 'utf8');
    if (isTampered) release = release.replace(/^(Date: .*)$/m, '$1 (edited)');
    const packagesFile = readdirSync(lists).find((name) => name.startsWith(stem.replace(/InRelease$/, 'main_binary-amd64_Packages')))!;
    const packages = execFileSync('/usr/lib/apt/apt-helper', ['cat-file', join(lists, packagesFile)], { maxBuffer: 512 * 1024 * 1024 });
    const server = createServer((request, response) => {
      const url = request.url ?? '';
      if (url === '/debian/dists/bookworm/InRelease') return response.end(release);
      if (url === '/debian/dists/bookworm/main/binary-amd64/Packages') return response.end(packages);
      const name = /^\/debian\/pool\/.*\/([^/_]+)_[^/]*\.deb$/.exec(url)?.[1];
      const file = name === undefined ? undefined : readdirSync(pool).find((entry) => entry.startsWith(`${name}_`));
      if (file !== undefined) return response.end(readFileSync(join(pool, file)));
      response.statusCode = 404;
      response.end();
    });
    servers.push(server);
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
    const address = server.address() as { port: number };
    return `http://127.0.0.1:${address.port}/debian`;
  }

  it('refuses an index whose Release file is not signed by Debian\'s keyring', async () => {
    const mirror = await serveMirror(true, scratch);
    const result = await runCli(dir, ['lock', '--mirror', mirror, '--suite', 'bookworm']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Release file signature not verified/);
    expect(result.stderr).toMatch(/gpgv: .*BAD signature/);
  });

  it('locks from the mirror\'s verified index and fetches the packages from it', async () => {
    const pool = join(scratch, 'pool');
    mkdirSync(pool);
    const mirror = await serveMirror(false, pool);
    const result = await runCli(dir, ['lock', '--mirror', mirror, '--suite', 'bookworm']);
    expect(result.code, result.stderr).toBe(0);
    expect(lockOf(dir)).toContain(`mirror: "${mirror}"`);
    expect(lockOf(dir)).not.toMatch(/suite: bookworm-/);
    const names = lockedNames(dir);
    execFileSync('apt-get', ['download', '-q', ...names.map((name) => `${name}=${locked(dir, name).version}`)], { cwd: pool, stdio: 'ignore' });
    const env = { REDO_TS_CACHE: join(scratch, 'mirror-cache'), APT_CONFIG: aptWithoutSources() };
    const built = await runCli(dir, ['-f', 'targets/small.fragment.tar'], { env });
    expect(built.code, built.stderr).toBe(0);
  });
});
