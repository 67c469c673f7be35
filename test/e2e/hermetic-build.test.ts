/** End to end: build steps run in the sandbox over the project's build environment, never on the host's tools, files or network. */

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { entriesOfTar, readEntryBytes } from '../../lib/image/tar.js';
import { seedBuildEnvironment } from '../helpers/build-environment.js';
import { refreshVanishedLocks } from '../helpers/deb-locks.js';
import { copyWithRules, runCli, startCli } from '../helpers/rig.js';
import { readdirSync } from 'node:fs';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

let server: Server;
let port: number;
let requests = 0;
beforeAll(async () => {
  server = createServer((_request, response) => {
    requests += 1;
    response.writeHead(200, { 'content-length': 6 }).end('bytes\n');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise<void>((done) => server.close(() => done()));
});

/** A project with the repository's rules and build environment, one spec `app` with `steps`, and its own cache. */
async function project(steps: string[], files: string[], extra = ''): Promise<{ dir: string; cache: string }> {
  const source = mkdtempSync(join(tmpdir(), 'redo-ts-hermetic-src-'));
  let dir: string;
  try {
    mkdirSync(join(source, 'targets'));
    writeFileSync(join(source, 'package.json'), '{ "private": true }\n');
    writeFileSync(join(source, 'targets', 'app.spec.yaml'), [
      'name: app',
      'version: "1"',
      'build:',
      ...steps.map((step) => `  - ${JSON.stringify(step)}`),
      'files:',
      ...files.map((path) => `  - path: ${path}`),
      extra,
    ].join('\n'));
    dir = copyWithRules(source, 'redo-ts-hermetic-');
  } finally {
    rmSync(source, { recursive: true, force: true });
  }
  const cache = mkdtempSync(join(tmpdir(), 'redo-ts-hermetic-cache-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => rmSync(cache, { recursive: true, force: true }));
  await seedBuildEnvironment(join(dir, 'targets'), cache);
  return { dir, cache };
}

/** A folder of fake sh, python3, gcc, install, tar, patch ... that would write other bytes, first on a PATH. */
function fakeTools(): string {
  const dir = mkdtempSync(join(tmpdir(), 'redo-ts-fake-tools-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  for (const tool of ['sh', 'python3', 'gcc', 'install', 'cp', 'sha256sum', 'tar', 'patch']) {
    writeFileSync(join(dir, tool), `#!/bin/sh\nfor last; do :; done\necho "fake ${tool}" > "$last" 2>/dev/null\nexit 0\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  return dir;
}

const fragment = (dir: string): Buffer => readFileSync(join(dir, 'targets', 'app.fragment.tar'));

describe('hermetic build steps', () => {
  it('the same spec built with two host PATHs, one full of fake tools, gives identical bytes made by the environment\'s tools', async () => {
    const steps = [
      'command -v install > tools.txt',
      'install -D -m 0644 tools.txt "$DESTDIR/usr/share/app/tools.txt"',
      'sha256sum /usr/bin/install | cut -d" " -f1 > "$DESTDIR/usr/share/app/install.sha256"',
      'cp /usr/bin/install "$DESTDIR/usr/share/app/install"',
    ];
    const a = await project(steps, ['/usr/share/app']);
    const b = await project(steps, ['/usr/share/app']);
    const plain = await runCli(a.dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: a.cache, PATH: '/usr/bin:/bin' } });
    expect(plain.stderr).not.toMatch(/^redo: /m);
    expect(plain.code).toBe(0);
    const fake = await runCli(b.dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: b.cache, PATH: `${fakeTools()}:${process.env.PATH}` } });
    expect(fake.stderr).not.toMatch(/^redo: /m);
    expect(fake.code).toBe(0);
    expect(fragment(b.dir).equals(fragment(a.dir))).toBe(true);

    const delivered = new Map(entriesOfTar(join(a.dir, 'targets', 'app.fragment.tar')).map((entry) => [entry.path.toString(), entry]));
    expect(readEntryBytes(delivered.get('usr/share/app/tools.txt')!)!.toString()).toBe('/usr/bin/install\n');
    // The install the step copied is coreutils' from the locked environment, not the host's.
    const environment = new Map(entriesOfTar(join(a.dir, 'targets', 'build-environment.fragment.tar')).map((entry) => [entry.path.toString(), entry]));
    const locked = readEntryBytes(environment.get('usr/bin/install')!)!;
    expect(readEntryBytes(delivered.get('usr/share/app/install')!)!.equals(locked)).toBe(true);
    expect(plain.stderr).toContain('fragment: build steps ran in the sandbox over environment');
  });

  it('sources are unpacked and patched the same with a fake tar and patch first on the host PATH and another umask: redo-ts\'s unpacker, the environment\'s patch', async () => {
    const sources = [
      'sources:',
      '  - url: file:src.tar.gz',
      '    integrity: project',
      '    unpack: true',
      'patches:',
      '  - url: file:fix.patch',
      '    integrity: project',
      '    dir: pkg',
      '',
    ].join('\n');
    const steps = [
      'install -D -m 0644 pkg/greeting.txt "$DESTDIR/usr/share/app/greeting.txt"',
      'stat -c "%A %n" pkg pkg/greeting.txt pkg/run.sh > "$DESTDIR/usr/share/app/modes.txt"',
    ];
    const made: Array<{ dir: string; cache: string }> = [];
    for (let index = 0; index < 2; index += 1) {
      const built = await project(steps, ['/usr/share/app'], sources);
      const tree = mkdtempSync(join(tmpdir(), 'redo-ts-hermetic-tree-'));
      cleanups.push(() => rmSync(tree, { recursive: true, force: true }));
      mkdirSync(join(tree, 'pkg'));
      writeFileSync(join(tree, 'pkg', 'greeting.txt'), 'hello\n');
      writeFileSync(join(tree, 'pkg', 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
      spawnSync('tar', ['-C', tree, '-czf', join(built.dir, 'src.tar.gz'), '--sort=name', '--mtime=@0', '--owner=0', '--group=0', 'pkg']);
      writeFileSync(join(built.dir, 'fix.patch'), '--- a/greeting.txt\n+++ b/greeting.txt\n@@ -1 +1 @@\n-hello\n+hello, patched\n');
      made.push(built);
    }
    const [a, b] = made as [{ dir: string; cache: string }, { dir: string; cache: string }];
    const plain = await runCli(a.dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: a.cache, PATH: '/usr/bin:/bin' } });
    expect(plain.stderr).not.toMatch(/^redo: /m);
    expect(plain.code).toBe(0);
    const fake = await runCli(b.dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: b.cache, PATH: `${fakeTools()}:${process.env.PATH}` }, umask: '077' });
    expect(fake.stderr).not.toMatch(/^redo: /m);
    expect(fake.code).toBe(0);
    expect(fragment(b.dir).equals(fragment(a.dir))).toBe(true);
    const delivered = new Map(entriesOfTar(join(a.dir, 'targets', 'app.fragment.tar')).map((entry) => [entry.path.toString(), entry]));
    expect(readEntryBytes(delivered.get('usr/share/app/greeting.txt')!)!.toString()).toBe('hello, patched\n');
    // The archive's modes with a fixed umask 022, never the caller's 077.
    expect(readEntryBytes(delivered.get('usr/share/app/modes.txt')!)!.toString()).toBe('drwxr-xr-x pkg\n-rw-r--r-- pkg/greeting.txt\n-rwxr-xr-x pkg/run.sh\n');
  });

  it('a step that writes outside $DESTDIR reaches neither the project nor the host', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'redo-ts-outside-'));
    cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
    const { dir, cache } = await project([
      // Each attempt may fail (read-only, or not there); none may land on the host.
      `echo escaped > ${JSON.stringify(join(process.cwd(), 'escaped.txt'))} || true`,
      `mkdir -p ${JSON.stringify(outside)} && echo escaped > ${JSON.stringify(join(outside, 'escaped.txt'))} || true`,
      'echo escaped > /etc/escaped.txt || true',
      'echo escaped > ../escaped.txt || true; echo escaped > ../../escaped.txt || true',
      'echo escaped > /tmp/scratch.txt',
      'ls / > roots.txt; install -D -m 0644 roots.txt "$DESTDIR/roots.txt"',
    ], ['/roots.txt']);
    const built = await runCli(dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(built.stderr).not.toMatch(/^redo: /m);
    expect(built.code).toBe(0);
    expect(existsSync(join(process.cwd(), 'escaped.txt'))).toBe(false);
    expect(existsSync(join(dir, 'escaped.txt'))).toBe(false);
    expect(existsSync(join(outside, 'escaped.txt'))).toBe(false);
    expect(existsSync('/etc/escaped.txt')).toBe(false);
    expect(existsSync('/tmp/scratch.txt')).toBe(false);
    // The sandbox's / is the environment: no home, no project, no host /work or /root.
    const roots = readEntryBytes(entriesOfTar(join(dir, 'targets', 'app.fragment.tar')).find((entry) => entry.path.toString() === 'roots.txt')!)!.toString().split('\n');
    expect(roots).toContain('build');
    expect(roots).not.toContain('work');
    expect(roots).not.toContain('root');
  });

  it('a step that reaches for the network fails naming the step, and the server on 127.0.0.1 sees nothing', async () => {
    const { dir, cache } = await project([
      'mkdir -p "$DESTDIR/x"',
      `wget -q -O "$DESTDIR/x/page" http://127.0.0.1:${port}/page`,
    ], ['/x']);
    const before = requests;
    const built = await runCli(dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(built.code).toBe(1);
    expect(requests).toBe(before);
    expect(built.stderr).toContain('redo: "targets/app.spec.yaml": build[1] exited with status 1 reaching for the network, which build steps do not have');
    expect(built.stderr).toContain('make what the step downloads a pinned source of the spec');
    expect(existsSync(join(dir, 'targets', 'app.fragment.tar'))).toBe(false);
  });

  it('a tool the environment does not have is named, with the package list to add it to', async () => {
    const { dir, cache } = await project(['gcc -o hello hello.c'], ['/x']);
    const built = await runCli(dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: cache, PATH: process.env.PATH } });
    expect(built.code).toBe(1);
    expect(spawnSync('gcc', ['--version']).status).toBe(0); // the host has one; the step must not see it
    expect(built.stderr).toContain('redo: "targets/app.spec.yaml": build[0] ran "gcc", which its build environment does not have');
    expect(built.stderr).toContain('hint: add the Debian package that provides "gcc" to targets/build-environment.spec.yaml');
  });

  it('util-linux unshare, where bubblewrap is missing, gives the same bytes', async () => {
    const steps = ['id -u > id.txt; hostname >> id.txt; umask >> id.txt; echo "$HOME $TZ $LC_ALL $SOURCE_DATE_EPOCH $PWD" >> id.txt', 'install -D -m 0644 id.txt "$DESTDIR/id.txt"'];
    const a = await project(steps, ['/id.txt']);
    const b = await project(steps, ['/id.txt']);
    const withBwrap = await runCli(a.dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: a.cache, REDO_TS_SANDBOX: 'bwrap' } });
    expect(withBwrap.code, withBwrap.stderr).toBe(0);
    const withUnshare = await runCli(b.dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: b.cache, REDO_TS_SANDBOX: 'unshare' }, umask: '077' });
    expect(withUnshare.code, withUnshare.stderr).toBe(0);
    expect(fragment(b.dir).equals(fragment(a.dir))).toBe(true);
    const text = readEntryBytes(entriesOfTar(join(a.dir, 'targets', 'app.fragment.tar')).find((entry) => entry.path.toString() === 'id.txt')!)!.toString();
    expect(text).toBe('0\nredo-ts\n0022\n/build/home UTC C.UTF-8 0 /build/src\n');
  });

  it('a kernel that refuses user namespaces gets an error that says so and how to fix it, and no step runs on the host', async () => {
    const { dir, cache } = await project(['install -D -m 0644 /dev/null "$DESTDIR/x"'], ['/x']);
    // Run redo-ts itself in a sandbox that forbids creating user namespaces.
    const node = process.execPath;
    const result = spawnSync('bwrap', ['--dev-bind', '/', '/', '--unshare-user', '--disable-userns', '--', node, join(__dirname, '../../bin/redo-ts.js'), 'targets/app.fragment.tar'], {
      cwd: dir, env: { ...process.env, REDO_TS_CACHE: cache }, encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('redo: "targets/app.spec.yaml": build steps cannot be sandboxed: bwrap refused to start');
    expect(result.stderr).toContain('kernel.unprivileged_userns_clone=1');
    expect(existsSync(join(dir, 'targets', 'app.fragment.tar'))).toBe(false);
  });

  it('build-environment: host is explicit and visible: the build, the SBOMs and verify say the image is not hermetic, naming the spec', async () => {
    const { dir, cache } = await project(['install -D -m 0644 /dev/null "$DESTDIR/x"'], ['/x'], 'build-environment: host\n');
    writeFileSync(join(dir, 'app.yaml'), 'layers: [targets/app.fragment.tar]\n');
    const env = { REDO_TS_CACHE: cache };
    const built = await runCli(dir, ['app.tar'], { env });
    expect(built.code, built.stderr).toBe(0);
    expect(built.stderr).toContain('fragment: NOT HERMETIC: targets/app.spec.yaml says build-environment: host');
    const spdx = await runCli(dir, ['sbom', 'app.tar'], { env });
    expect(spdx.code, spdx.stderr).toBe(0);
    expect((JSON.parse(spdx.stdout) as { creationInfo: { comment: string } }).creationInfo.comment).toContain('NOT HERMETIC: the build steps of targets/app.spec.yaml ran with the build machine\'s own tools');
    const cyclonedx = await runCli(dir, ['sbom', '--format', 'cyclonedx', 'app.tar'], { env });
    expect(cyclonedx.code, cyclonedx.stderr).toBe(0);
    const properties = (JSON.parse(cyclonedx.stdout) as { metadata: { component: { properties: Array<{ name: string; value: string }> } } }).metadata.component.properties;
    expect(properties).toContainEqual({ name: 'redo-ts:not-hermetic', value: 'targets/app.spec.yaml: build-environment: host' });
    const verified = await runCli(dir, ['verify', 'app.tar'], { env });
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^identical: app\.tar sha256:[0-9a-f]{64}\n  not hermetic: targets\/app\.spec\.yaml builds with this machine's tools \(build-environment: host\); another machine may build other bytes\n$/);

    // The same spec in the sandbox: nothing of the kind is said.
    writeFileSync(join(dir, 'targets', 'app.spec.yaml'), readFileSync(join(dir, 'targets', 'app.spec.yaml'), 'utf8').replace('build-environment: host\n', ''));
    const hermetic = await runCli(dir, ['verify', 'app.tar'], { env });
    expect(hermetic.code, hermetic.stderr).toBe(0);
    expect(hermetic.stdout).not.toContain('not hermetic');
    expect((await runCli(dir, ['sbom', 'app.tar'], { env })).stdout).not.toContain('NOT HERMETIC');
  });

  it.each(['bwrap', 'unshare'])('kill -9 of redo-ts while a step runs in the sandbox (%s): the sandbox and the step end within two seconds', async (tool) => {
    const marker = `37.${process.pid}${tool.length}`;
    const { dir, cache } = await project([`sleep ${marker}`], ['/x']);
    const running = (): number[] => readdirSync('/proc').filter((name) => /^[0-9]+$/.test(name)).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    }).map(Number);
    const child = startCli(dir, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: cache, REDO_TS_SANDBOX: tool } });
    cleanups.push(() => {
      for (const pid of running()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    });
    const closed = new Promise((done) => child.on('close', done));
    const deadline = Date.now() + 60_000;
    while (running().length === 0 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));
    expect(running().length).toBeGreaterThan(0);
    process.kill(child.pid!, 'SIGKILL');
    await closed;
    const stopBy = Date.now() + 2000;
    while (running().length > 0 && Date.now() < stopBy) await new Promise((done) => setTimeout(done, 50));
    expect(running()).toEqual([]);
  });

  it('kill -9 during the assembly of a build environment: the half-assembled root is never used, the next build removes it; cache prune removes unused environments', async () => {
    const { dir, cache } = await project(['install -D -m 0644 /dev/null "$DESTDIR/x"'], ['/x']);
    const env = { REDO_TS_CACHE: cache };
    // The copied test cache may hold this environment already: start without any.
    const home = join(cache, 'build-environments');
    rmSync(home, { recursive: true, force: true });
    const leftovers = (): string[] => (existsSync(home) ? readdirSync(home).filter((name) => name.startsWith('.tmp-')) : []);
    const child = startCli(dir, ['targets/app.fragment.tar'], { env });
    const stop = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Gone already.
      }
    };
    cleanups.push(stop);
    const closed = new Promise((done) => child.on('close', done));
    const deadline = Date.now() + 120_000;
    while (leftovers().length === 0 && child.exitCode === null && Date.now() < deadline) await new Promise((done) => setTimeout(done, 5));
    expect(leftovers()).toHaveLength(1);
    stop();
    await closed;
    // Killed before the rename: no environment under its key, only the half one aside.
    expect(readdirSync(home).filter((name) => !name.startsWith('.tmp-'))).toEqual([]);

    const rebuilt = await runCli(dir, ['targets/app.fragment.tar'], { env });
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    const assembled = readdirSync(home);
    expect(assembled).toHaveLength(1);
    expect(assembled[0]).toMatch(/^[0-9a-f]{64}$/);

    // Used just now: a prune of what was unused for a day keeps it; --unused-days 0 removes it.
    const kept = await runCli(dir, ['cache', 'prune', '--unused-days', '1'], { env });
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toBe('');
    expect(readdirSync(home)).toEqual(assembled);
    const pruned = await runCli(dir, ['cache', 'prune', '--unused-days', '0'], { env });
    expect(pruned.code, pruned.stderr).toBe(0);
    // And the environment's own fragment, kept in the cache by content when it was built.
    expect(pruned.stdout).toMatch(new RegExp(`^removed build environment ${assembled[0]!.slice(0, 12)} \\(targets/build-environment\\.spec\\.yaml\\), last used \\S+\\nremoved environment fragment [0-9a-f]{12} \\(targets/build-environment\\.spec\\.yaml\\), last used \\S+\\n$`));
    expect(pruned.stderr).toContain('redo-ts cache: 1 build environment unused for 0 days removed');
    expect(pruned.stderr).toContain('redo-ts cache: 1 environment fragment unused for 0 days removed, 0 interrupted keeps cleaned');
    expect(readdirSync(home)).toEqual([]);
    expect(readdirSync(join(cache, 'environment-fragments'))).toEqual([]);
    // A build that needs it again assembles it again.
    const again = await runCli(dir, ['-f', 'targets/app.fragment.tar'], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(readdirSync(home)).toEqual(assembled);
  });

  it('pip installing a wheel into $DESTDIR writes #!/usr/bin/python3 from the locked python, whatever python the caller has', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'redo-ts-hermetic-cache-'));
    cleanups.push(() => rmSync(cache, { recursive: true, force: true }));
    const a = copyWithRules(join(__dirname, '../fixtures/701-hermetic-pip'), 'redo-ts-hermetic-pip-');
    const b = copyWithRules(join(__dirname, '../fixtures/701-hermetic-pip'), 'redo-ts-hermetic-pip-');
    cleanups.push(() => rmSync(a, { recursive: true, force: true }), () => rmSync(b, { recursive: true, force: true }));
    // The committed locks, moved off any version a point release removed (deb-locks.ts).
    for (const copy of [a, b]) refreshVanishedLocks(copy, 'test/fixtures/701-hermetic-pip');
    // A python of the caller's own first on PATH, under its own name (as pyenv's shims or
    // a virtualenv put one): run on the host, pip would write that path into the shebang.
    const own = mkdtempSync(join(tmpdir(), 'redo-ts-own-python-'));
    cleanups.push(() => rmSync(own, { recursive: true, force: true }));
    const hostPython = spawnSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).stdout.trim();
    if (hostPython !== '') symlinkSync(hostPython, join(own, 'python3'));
    const first = await runCli(a, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: cache, PATH: `${own}:${process.env.PATH}` } });
    expect(first.stderr).not.toMatch(/^redo: /m);
    expect(first.code).toBe(0);
    const second = await runCli(b, ['targets/app.fragment.tar'], { env: { REDO_TS_CACHE: cache, PATH: `${fakeTools()}:/usr/bin:/bin` } });
    expect(second.code, second.stderr).toBe(0);
    expect(fragment(b).equals(fragment(a))).toBe(true);
    const script = entriesOfTar(join(a, 'targets', 'app.fragment.tar')).find((entry) => entry.path.toString() === 'app/lib/bin/greeting')!;
    expect(readEntryBytes(script)!.toString().split('\n')[0]).toBe('#!/usr/bin/python3');
  }, 600_000);
});
