// End to end: hostile and careless input (issue 10, items 11-17): nothing escapes the
// project or the build folder, nothing unchecked enters an image, nothing grows
// without bound, and each refusal names the input.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isRedoError } from '../../lib/errors.js';
import { buildFragment } from '../../lib/sources/fragment.js';
import { integrityOfBytes } from '../../lib/sources/integrity.js';
import { cliEnvironment, repoRoot, runCli, startCli, type RigResult } from '../helpers/rig.js';
import { startHostileRegistry, type HostileRegistry } from '../helpers/hostile-registry.js';
import { onBaseFixture } from '../helpers/registry-fixtures.js';
import { copyBuildEnvironment, testBuildEnvironment } from '../helpers/build-environment.js';

beforeAll(async () => {
  await testBuildEnvironment();
}, 300_000);

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary folder, removed after the file's tests. */
function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `redo-ts-hostile-${prefix}-`));
  made.push(dir);
  return dir;
}

/** A fresh project holding this repository's rules/ and the given files. */
function project(files: Record<string, string | Buffer> = {}): { dir: string; run(args: string[], env?: NodeJS.ProcessEnv): Promise<RigResult> } {
  const dir = scratch('project');
  cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{}\n');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  // Specs with build steps run them in the sandbox over the repository's build environment.
  if (Object.entries(files).some(([name, content]) => name.endsWith('.spec.yaml') && String(content).includes('\nbuild:'))) {
    copyBuildEnvironment(join(dir, 'targets'), join(dir, '.cache'));
  }
  return {
    dir,
    async run(args, env = {}) {
      const result = await runCli(dir, args, { env: { REDO_TS_CACHE: join(dir, '.cache'), ...env } });
      return { ...result, stderr: result.stderr.split(dir).join('<dir>') };
    },
  };
}

describe('15: the project boundary is checked on real paths', () => {
  it('a target under a symlinked folder that points outside is refused, and nothing is written there', async () => {
    const outside = scratch('outside');
    const p = project({ 'default.do': 'echo built > "$3"\n' });
    symlinkSync(outside, join(p.dir, 'out'));
    const result = await p.run(['out/x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('redo: "out/x": target is outside the project through a symlinked folder');
    expect(result.stderr).toContain(`resolved to: ${join(outside, 'x')}`);
    expect(readdirSync(outside)).toEqual([]);
  });

  it('a symlinked folder that stays inside the project is fine', async () => {
    const p = project({ 'default.do': 'echo built > "$3"\n', 'real/.keep': '' });
    symlinkSync('real', join(p.dir, 'alias'));
    const result = await p.run(['alias/x']);
    expect(result.code).toBe(0);
    expect(readFileSync(join(p.dir, 'real', 'x'), 'utf8')).toBe('built\n');
  });
});

/** Runs redo-ts under `/usr/bin/time -v`: its exit status, stderr and peak RSS in KiB. */
function runMeasured(dir: string, args: string[]): { status: number | null; stderr: string; maxRssKiB: number } {
  const result = spawnSync('/usr/bin/time', ['-v', process.execPath, join(repoRoot, 'bin', 'redo-ts.js'), ...args], {
    cwd: dir,
    env: cliEnvironment({ REDO_TS_CACHE: join(dir, '.cache') }),
    encoding: 'utf8',
  });
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr);
  return { status: result.status, stderr: result.stderr, maxRssKiB: rss === null ? Number.NaN : Number(rss[1]) };
}

const GiB = 1024 ** 3;

describe('12: files of 2 GiB and more are hashed and copied as streams', () => {
  it.skipIf(!existsSync('/usr/bin/time'))('a 3 GiB source, a 2.05 GiB output and a fragment holding a 2.05 GiB file build in flat memory', async () => {
    const p = project({
      'sum.do': 'redo-ifchange big.bin\nwc -c < big.bin > "$3"\n',
      'huge.do': 'truncate -s 2100M "$3"\n',
      'targets/big.spec.yaml': ['name: big', 'version: "1"', 'build:', '  - truncate -s 2100M "$DESTDIR/big"', 'files:', '  - path: /big', ''].join('\n'),
    });
    // Sparse: no disk is used for the sources, nor for the fragment tar (the tar writer
    // leaves holes where whole chunks are zero).
    writeFileSync(join(p.dir, 'big.bin'), '');
    truncateSync(join(p.dir, 'big.bin'), 3 * GiB);
    const first = runMeasured(p.dir, ['sum', 'huge', 'targets/big.fragment.tar']);
    expect(first.stderr).not.toContain('internal error');
    expect(first.status).toBe(0);
    expect(readFileSync(join(p.dir, 'sum'), 'utf8')).toBe(`${3 * GiB}\n`);
    expect(statSync(join(p.dir, 'huge')).size).toBe(2100 * 1024 * 1024);
    const fragment = statSync(join(p.dir, 'targets', 'big.fragment.tar'));
    expect(fragment.size).toBeGreaterThan(2100 * 1024 * 1024);
    // The zeros were skipped, not written: the fragment takes almost no disk.
    expect(fragment.blocks * 512).toBeLessThan(16 * 1024 * 1024);
    // Flat: the whole process stays far below the size of any one file.
    expect(first.maxRssKiB).toBeLessThan(200 * 1024);
    // Every output has its record: nothing is rebuilt.
    const second = runMeasured(p.dir, ['sum', 'huge', 'targets/big.fragment.tar']);
    expect(second.status).toBe(0);
    expect(second.stderr).not.toMatch(/^redo {2}/m);
    rmSync(join(p.dir, 'targets', 'big.fragment.tar'));
    rmSync(join(p.dir, 'huge'));
  }, 120_000);
});

/** One member of a hand-made tar: the raw header fields a hostile archive would set. */
interface RawMember {
  name: string;
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  link?: string;
  content?: string;
  major?: number;
}

/** A ustar archive written byte by byte, with no normalisation, as an attacker would. */
function rawTar(members: RawMember[]): Buffer {
  const blocks: Buffer[] = [];
  for (const member of members) {
    const content = Buffer.from(member.content ?? '');
    const header = Buffer.alloc(512);
    const put = (text: string, at: number, length: number): void => void header.write(text, at, length, 'utf8');
    const octal = (value: number, at: number, length: number): void => put(value.toString(8).padStart(length - 1, '0'), at, length - 1);
    put(member.name, 0, 100);
    octal(member.type === '5' ? 0o755 : 0o644, 100, 8);
    octal(0, 108, 8);
    octal(0, 116, 8);
    octal(content.length, 124, 12);
    octal(0, 136, 12);
    put(member.type ?? '0', 156, 1);
    put(member.link ?? '', 157, 100);
    put('ustar\0', 257, 6);
    put('00', 263, 2);
    octal(member.major ?? 0, 329, 8);
    octal(0, 337, 8);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
    blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const goodLayer = rawTar([{ name: 'etc/', type: '5' }, { name: 'etc/motd', content: 'hi\n' }]);

describe('14: every tar that enters an image passes one check, and a refused image builds neither output', () => {
  it.each([
    ['a "../" name', rawTar([{ name: '../escape', content: 'x' }]), 'evil.tar": member "../escape" escapes the archive root'],
    ['a hardlink out of the archive', rawTar([{ name: 'passwd', type: '1', link: '../../etc/passwd' }]), 'evil.tar": member "passwd" is a hardlink to something that is not an earlier file'],
    ['a hardlink to a later member', rawTar([{ name: 'a', type: '1', link: 'b' }, { name: 'b', content: 'x' }]), 'member "a" is a hardlink'],
    ['a block device', rawTar([{ name: 'disk', type: '4', major: 8 }]), 'evil.tar": member "disk" is a block-device, which an image layer may not hold'],
    ['a path stored twice', rawTar([{ name: 'x', content: 'one' }, { name: './x', content: 'two' }]), 'member "x" is stored twice'],
    ['an absolute name (issue 18)', rawTar([{ name: '/etc/', type: '5' }, { name: '/etc/evil', content: 'x' }]), 'evil.tar": member "/etc/" has an absolute name'],
    ['a short file that is not a tar', Buffer.from('just some text\n'), 'evil.tar": not a tar archive'],
    ['a tar without its end marker', rawTar([{ name: 'x', content: 'one' }]).subarray(0, 1024), 'evil.tar": not a tar archive'],
  ])('%s', async (_, evil, message) => {
    // allowOverlap turns off only the overlap check, never this one.
    for (const allowOverlap of message.includes('../') ? [false, true] : [false]) {
      const p = project({
        'image.yaml': `tags: [localhost/evil:1]\nallowOverlap: ${allowOverlap}\nlayers: [good.tar, evil.tar]\n`,
        'good.tar': goodLayer,
        'evil.tar': evil,
      });
      const result = await p.run(['image.tar']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(message);
      expect(existsSync(join(p.dir, 'image.tar'))).toBe(false);
      expect(existsSync(join(p.dir, 'image.oci.tar'))).toBe(false);
      // Nothing was recorded either: the next run refuses again.
      expect((await p.run(['image.oci.tar'])).stderr).toContain(message);
    }
  });

  it('the same layers without the hostile one build both outputs', async () => {
    const p = project({ 'image.yaml': 'tags: [localhost/fine:1]\nlayers: [good.tar]\n', 'good.tar': goodLayer });
    const result = await p.run(['image.tar', 'image.oci.tar']);
    expect(result.stderr).toBe(result.code === 0 ? result.stderr : '');
    expect(result.code).toBe(0);
    expect(existsSync(join(p.dir, 'image.oci.tar'))).toBe(true);
  });
});

describe('17: layer lists: one boundary check, one short message naming the input', () => {
  const outsideWith = (files: Record<string, string>, links: Record<string, string>): string => {
    const dir = scratch('outside');
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    for (const [name, target] of Object.entries(links)) symlinkSync(target, join(dir, name));
    return dir;
  };

  it.each([
    ['a folder outside holding only symlinks', () => outsideWith({}, { passwd: '/etc/passwd' })],
    ['a folder outside holding files', () => outsideWith({ a: '1', b: '2', c: '3' }, {})],
    ['a system folder', () => '/etc'],
  ])('%s is refused before anything is read', async (_, makeOutside) => {
    const outside = makeOutside();
    const p = project({ 'app.layer': '# the app\nlocal/\n' });
    mkdirSync(join(p.dir, 'local'));
    writeFileSync(join(p.dir, 'app.layer'), `# the app\nlocal/\n${outside}/\n`);
    const viaPath = await p.run(['app.layer.tar']);
    expect(viaPath.code).toBe(1);
    expect(viaPath.stderr).toContain(`redo: "app.layer:3": input "${outside}/" is outside the project`);
    expect(viaPath.stderr.length).toBeLessThan(600);
    // The same folder reached through a symlink inside the project: the same check.
    symlinkSync(outside, join(p.dir, 'linked'));
    writeFileSync(join(p.dir, 'app.layer'), 'linked/\n');
    const viaLink = await p.run(['app.layer.tar']);
    expect(viaLink.code).toBe(1);
    expect(viaLink.stderr).toContain('redo: "app.layer:1": input "linked/" is outside the project');
    expect(viaLink.stderr.length).toBeLessThan(600);
    expect(existsSync(join(p.dir, 'app.layer.tar'))).toBe(false);
  });

  it('a missing tar is reported as missing, not as a missing image description', async () => {
    const p = project({ 'app.layer': 'missing.tar\n' });
    const result = await p.run(['app.layer.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "missing.tar": no such file, and no image description "missing.yaml" to build it from');
  });

  it('an OCI layout without an image description says so, as NAME.tar does', async () => {
    const p = project({ 'app.layer': 'missing.tar\n' });
    const result = await p.run(['missing.oci.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "missing.oci.tar": no such file, and no image description "missing.yaml" to build it from\n  hint: to build an image, write missing.yaml');
    expect(result.stderr).not.toContain('no rule to build it');
  });

  it('a conflict between two folders names them as the list does, never a temporary file', async () => {
    const p = project({ 'app.layer': 'one/\ntwo/\n', 'one/etc/motd': 'one\n', 'two/etc/motd': 'two\n' });
    const result = await p.run(['app.layer.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "etc/motd": delivered twice with different');
    expect(result.stderr).toContain('"one/"');
    expect(result.stderr).toContain('"two/"');
    expect(result.stderr).not.toContain('redo-ts-layer-');
    expect(result.stderr).not.toContain('.tmp');
  });
});

describe('13: no copy, unpack or patch step follows a symlink out of the build folder', () => {
  /** A tar made by GNU tar from `files` (name → content, or `-> target` for a symlink). */
  function archive(files: Record<string, string>): Buffer {
    const dir = scratch('archive');
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      if (content.startsWith('-> ')) symlinkSync(content.slice(3), join(dir, name));
      else writeFileSync(join(dir, name), content);
    }
    return execFileSync('tar', ['-C', dir, '-cf', '-', '--sort=name', ...Object.keys(files)]);
  }

  function spec(sources: string[], patches: string[] = []): string {
    return [
      'name: evil',
      'version: "1"',
      'sources:',
      ...sources,
      ...(patches.length > 0 ? ['patches:', ...patches] : []),
      'build:',
      '  - install -D -m 0644 /dev/null "$DESTDIR/x/y"',
      'files:',
      '  - path: /x',
      '',
    ].join('\n');
  }

  it.each([
    [
      'a later archive unpacked through a folder link an earlier one planted',
      (outside: string) => ({
        'one.tar': archive({ lib: `-> ${outside}` }),
        'two.tar': archive({ 'lib/evil': 'pwned\n' }),
        'targets/evil.spec.yaml': spec(['  - {url: "file:one.tar", integrity: project, unpack: true}', '  - {url: "file:two.tar", integrity: project, unpack: true}']),
      }),
      'unpack of "two.tar" would write outside the build folder',
    ],
    [
      'a source copied onto a dangling link an archive planted',
      (outside: string) => ({
        'one.tar': archive({ 'notes.txt': `-> ${outside}/notes.txt` }),
        'notes.txt': 'pwned\n',
        'targets/evil.spec.yaml': spec(['  - {url: "file:one.tar", integrity: project, unpack: true}', '  - {url: "file:notes.txt", integrity: project}']),
      }),
      'copy of source "notes.txt" would write outside the build folder',
    ],
    [
      'a patch applied in a folder that is a planted link',
      (outside: string) => ({
        'one.tar': archive({ sub: `-> ${outside}` }),
        'fix.patch': '--- a/f\n+++ b/f\n@@ -1 +1 @@\n-old\n+pwned\n',
        'targets/evil.spec.yaml': spec(['  - {url: "file:one.tar", integrity: project, unpack: true}'], ['  - {url: "file:fix.patch", integrity: project, dir: sub}']),
      }),
      'patch "fix.patch" would write outside the build folder',
    ],
  ])('%s is refused, and nothing is written outside', async (_, files, message) => {
    const outside = scratch('outside');
    writeFileSync(join(outside, 'f'), 'old\n');
    const p = project(files(outside));
    const result = await p.run(['targets/evil.fragment.tar']);
    expect(result.stderr).toContain(`redo: "targets/evil.spec.yaml": ${message}`);
    expect(result.code).toBe(1);
    expect(readdirSync(outside)).toEqual(['f']);
    expect(readFileSync(join(outside, 'f'), 'utf8')).toBe('old\n');
  });

  it('a patch whose own target climbs out with ".." says so, not "through a symlink" (issue 18)', async () => {
    const p = project({
      'fix.patch': '--- a/../../escape\n+++ b/../../escape\n@@ -0,0 +1 @@\n+pwned\n',
      'targets/evil.spec.yaml': spec([], ['  - {url: "file:fix.patch", integrity: project}']).replace('sources:\n', ''),
    });
    const result = await p.run(['targets/evil.fragment.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "targets/evil.spec.yaml": patch "fix.patch" would write outside the build folder\n  path: ../../escape\n');
    expect(result.stderr).toMatch(/ {2}leads to: \S+ \(by its own ".."\)\n/);
    expect(result.stderr).not.toContain('through a symlink');
  });

  it('a build-requires fragment cannot write through a link an earlier one put in $SYSROOT', async () => {
    const outside = scratch('outside');
    const p = project({
      'one.tar': archive({ 'usr/lib': `-> ${outside}` }),
      'two.tar': archive({ 'usr/lib/evil': 'pwned\n' }),
      'targets/evil.spec.yaml': spec([]).replace('sources:\n', ''),
    });
    let caught: unknown;
    try {
      await buildFragment(join(p.dir, 'targets/evil.spec.yaml'), join(p.dir, 'out.tar'), {
        root: p.dir,
        environment: await testBuildEnvironment(),
        cacheDir: join(p.dir, '.cache'),
        sysroot: [join(p.dir, 'one.tar'), join(p.dir, 'two.tar')],
      });
    } catch (error) {
      caught = error;
    }
    expect(isRedoError(caught, 'ERR_BUILD_ESCAPE')).toBe(true);
    expect((caught as Error).message).toContain('would write outside $SYSROOT');
    expect(readdirSync(outside)).toEqual([]);
  });

  it('links that stay inside the build folder are followed as before', async () => {
    const p = project({
      'one.tar': archive({ 'real/.keep': '', lib: '-> real' }),
      'two.tar': archive({ 'lib/inside': 'fine\n' }),
      'targets/evil.spec.yaml': spec(['  - {url: "file:one.tar", integrity: project, unpack: true}', '  - {url: "file:two.tar", integrity: project, unpack: true}']).replace(
        'install -D -m 0644 /dev/null "$DESTDIR/x/y"',
        'install -D -m 0644 real/inside "$DESTDIR/x/y"',
      ),
    });
    const result = await p.run(['targets/evil.fragment.tar']);
    expect(result.stderr).not.toContain('outside the build folder');
    expect(result.code).toBe(0);
  });
});

describe('11: downloads are capped, report progress when long, and leave no partial behind', () => {
  let server: Server;
  let base: string;
  const fixed = Buffer.alloc(5000, 0x61);
  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunk = Buffer.alloc(64 * 1024, 0x7a);
      if (request.url === '/fixed') {
        response.writeHead(200, { 'content-length': fixed.length }).end(fixed);
      } else if (request.url === '/endless' || request.url === '/slow') {
        // Never ends: fast for the limit, slow (64 KiB every 100 ms) for the signal test.
        response.writeHead(200);
        const delayMs = request.url === '/slow' ? 100 : 0;
        const more = (): void => {
          if (response.destroyed) return;
          if (response.write(chunk)) setTimeout(more, delayMs);
          else response.once('drain', () => setTimeout(more, delayMs));
        };
        more();
      } else {
        response.writeHead(404).end();
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  });

  const pin = integrityOfBytes(fixed);
  const specFor = (url: string, extra = ''): string =>
    ['name: dl', 'version: "1"', 'sources:', `  - url: ${url}`, `    integrity: ${pin}`, ...(extra === '' ? [] : [`    ${extra}`]), 'build:', '  - install -D -m 0644 dl.bin "$DESTDIR/dl"', 'files:', '  - path: /dl', ''].join('\n').replace('dl.bin', url.split('/').pop()!);

  /** The project's own temporary folder (TMPDIR of the run), to see what is left in it. */
  const leftovers = (dir: string): string[] => readdirSync(join(dir, 'tmp')).filter((name) => name.startsWith('redo-ts-'));

  it('an endless source stops at the download limit, and nothing is left or cached', async () => {
    const p = project({ 'targets/dl.spec.yaml': specFor(`${base}/endless`), 'tmp/.keep': '' });
    // The cache holds only the build environment's packages (seeded), before and after.
    const cached = (): string[] => (existsSync(join(p.dir, '.cache', 'content-v2')) ? readdirSync(join(p.dir, '.cache', 'content-v2'), { recursive: true }).map(String).sort() : []);
    const before = cached();
    const result = await p.run(['targets/dl.fragment.tar'], { REDO_TS_DOWNLOAD_LIMIT: '1M', TMPDIR: join(p.dir, 'tmp') });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`redo: "targets/dl.spec.yaml": source "${base}/endless": download is larger than allowed`);
    expect(result.stderr).toContain('wanted: at most the download limit: 1048576 bytes (REDO_TS_DOWNLOAD_LIMIT, default 4G)');
    expect(leftovers(p.dir)).toEqual([]);
    expect(cached()).toEqual(before);
  });

  it.each([
    ['a download past its size', 'size: 4000', 'download is larger than allowed', "wanted: at most the source's size: 4000 bytes"],
    ['a download short of its size', 'size: 6000', 'download is shorter than its size', 'found:  5000 bytes'],
  ])('%s is refused', async (_, size, headline, detail) => {
    const p = project({ 'targets/dl.spec.yaml': specFor(`${base}/fixed`, size) });
    const result = await p.run(['targets/dl.fragment.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(headline);
    expect(result.stderr).toContain(detail);
  });

  it('a download of exactly its size builds, with no progress lines', async () => {
    const p = project({ 'targets/dl.spec.yaml': specFor(`${base}/fixed`, 'size: 5000') });
    const result = await p.run(['targets/dl.fragment.tar']);
    expect(result.stderr).not.toContain('downloaded');
    expect(result.code).toBe(0);
  });

  it('a size that is not a number is a spec error at file:line', async () => {
    const p = project({ 'targets/dl.spec.yaml': specFor(`${base}/fixed`, 'size: lots') });
    const result = await p.run(['targets/dl.fragment.tar']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redo: "targets/dl.spec.yaml:6": sources[0].size: "lots" must be a whole number of bytes');
  });

  it('a long download shows progress, and SIGTERM removes the partial download', async () => {
    const p = project({ 'targets/dl.spec.yaml': specFor(`${base}/slow`), 'tmp/.keep': '' });
    const child = startCli(p.dir, ['targets/dl.fragment.tar'], { env: { REDO_TS_CACHE: join(p.dir, '.cache'), TMPDIR: join(p.dir, 'tmp') } });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const exited = once(child, 'exit');
    try {
      const deadline = Date.now() + 20_000;
      while (!/downloaded \(\d+ s\)/.test(stderr) && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));
      expect(stderr).toMatch(new RegExp(`source "${base}/slow": [0-9.]+ MiB downloaded \\(\\d+ s\\)`));
      expect(leftovers(p.dir).some((name) => name.startsWith('redo-ts-fetch-'))).toBe(true);
      child.kill('SIGTERM');
      const [code, signal] = (await exited) as [number | null, string | null];
      expect(code !== 0 || signal !== null).toBe(true);
      expect(leftovers(p.dir)).toEqual([]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 30_000);
});

describe('a hostile registry serving a pinned base image (issue 18)', () => {
  let hostile: HostileRegistry | undefined;
  afterEach(async () => {
    await hostile?.stop();
    hostile = undefined;
  });

  /** Fixture 602 with its base pinned to the hostile registry's image, and an empty cache. */
  function onHostileBase(registry: HostileRegistry): { dir: string; cache: string } {
    const copy = onBaseFixture(registry.address);
    made.push(copy.dir);
    const description = join(copy.dir, 'image.yaml');
    writeFileSync(description, readFileSync(description, 'utf8').replace(/^base: .*$/m, `base: ${registry.address}/${registry.repository}@${registry.manifestDigest}`));
    return { dir: copy.dir, cache: join(copy.dir, '.cache') };
  }

  it('an endless body for a 727-byte layer is cut off at 728 bytes: the build fails and leaves nothing in the cache', async () => {
    hostile = await startHostileRegistry({ kind: 'endless-blob', intervalMs: 0 });
    const p = onHostileBase(hostile);
    const result = await runCli(p.dir, ['image.tar'], { env: { REDO_TS_CACHE: p.cache } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`redo: "${hostile.address}/${hostile.repository}@${hostile.layerDigest}": the blob the registry sent is longer than its descriptor says\n  wanted: ${hostile.layerDigest} (727 bytes)\n`);
    expect(hostile.sentBytes()).toBeLessThan(64 * 1024 * 1024);
    expect(readdirSync(join(p.cache, 'tmp'))).toEqual([]);
    expect(existsSync(join(p.dir, 'image.tar'))).toBe(false);
  }, 60_000);

  it('SIGTERM during a base layer download removes the partial file from the cache', async () => {
    hostile = await startHostileRegistry({ kind: 'endless-blob', intervalMs: 50 });
    const p = onHostileBase(hostile);
    const child = startCli(p.dir, ['image.tar'], { env: { REDO_TS_CACHE: p.cache } });
    const exited = once(child, 'exit');
    const partials = (): string[] => (existsSync(join(p.cache, 'tmp')) ? readdirSync(join(p.cache, 'tmp')) : []);
    try {
      const deadline = Date.now() + 30_000;
      // The layer's own partial file (the manifest and config went in before it).
      const layerPartial = `-${hostile.layerDigest.slice(7, 23)}`;
      while (!partials().some((name) => name.endsWith(layerPartial)) && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));
      expect(partials().some((name) => name.startsWith('base-') && name.endsWith(layerPartial))).toBe(true);
      child.kill('SIGTERM');
      const [code, signal] = (await exited) as [number | null, string | null];
      expect(code !== 0 || signal !== null).toBe(true);
      expect(partials()).toEqual([]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 60_000);
});
