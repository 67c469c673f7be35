import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemdEnablementEntries, sysvInitLinkEntries } from '../../../../lib/sources/debian/effects.js';
import { alternativesOfCalls, diversionsOfCalls, enabledUnitsOfCalls, parseCallLog, preinstFilesOfCalls, recordPostinstCalls, symlinksOfCalls } from '../../../../lib/sources/debian/script-calls.js';
import { probeSandbox } from '../../../../lib/sandbox/sandbox.js';
import { elfFacts, hostToolsOf } from '../../../../lib/sources/debian/host-tools.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-script-calls-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const shown = (entries: ReturnType<typeof sysvInitLinkEntries>): string[] => entries.map((entry) => `${entry.path.toString()} ${entry.type === 'symlink' ? `-> ${entry.linkTarget!.toString()}` : `"${entry.content?.kind === 'buffer' ? entry.content.bytes.toString() : ''}"`}`);

// openjdk-17-jre-headless's postinst (Debian 12), shortened: alternatives made in a loop,
// slaves from variables that hold several words, a test on a shipped file, $(...) values.
const openjdkPostinst = `#!/bin/sh
set -e
priority=1711
basedir=/usr/lib/jvm/java-17-openjdk-amd64
mandir=$basedir/man
jre_tools='java keytool'
case "$1" in
configure)
    if ! mountpoint -q /proc; then exit 1; fi
    [ -d /etc/.java ] || mkdir -m 755 /etc/.java
    if [ -z "$2" ]; then update_alternatives=y; fi
    if [ "$update_alternatives" = y ]; then
    if [ "$DPKG_MAINTSCRIPT_ARCH" != $(dpkg --print-architecture) ]; then priority=$(expr $priority - 1); fi
    for i in $jre_tools; do
        unset slave1 || true
        if [ -e $mandir/man1/$i.1.gz ]; then
            slave1="--slave \\
                /usr/share/man/man1/$i.1.gz \\
                $i.1.gz \\
                $mandir/man1/$i.1.gz"
        fi
        update-alternatives --install /usr/bin/$i $i $basedir/bin/$i $priority $slave1
    done
    fi
    ;;
esac
conf=mod-echo.conf:50-mod-echo.conf
ln -sf /usr/share/nginx/modules-available/$(echo $conf | cut -d: -f1) /etc/nginx/modules-enabled/50-mod-echo.conf 2>/dev/null || ln -sf /usr/share/nginx/modules-available/mod-echo.conf /etc/nginx/modules-enabled/50-mod-echo.conf
if deb-systemd-helper --quiet was-enabled 'redis-server.service'; then
    deb-systemd-helper enable 'redis-server.service' >/dev/null || true
fi
exit 0
`;

describe('postinsts run with recording shims', () => {
  const reason = probeSandbox();
  it.skipIf(reason !== undefined || !existsSync('/bin/busybox') || !existsSync('/bin/dash'))('records the calls of a loop with their computed arguments, as on a fresh install', { timeout: 60_000 }, async () => {
    // A tiny image: the machine's dash as /bin/sh with its libraries (busybox's own sh would
    // run its mkdir, not the shim), busybox's cut/echo/expr, the postinst in dpkg's info
    // folder, one man page shipped.
    const root = join(scratch, 'root');
    for (const dir of ['bin', 'usr/bin', 'var/lib/dpkg/info', 'usr/lib/jvm/java-17-openjdk-amd64/man/man1', 'etc']) mkdirSync(join(root, dir), { recursive: true });
    copyFileSync('/bin/dash', join(root, 'bin', 'sh'));
    for (const library of execFileSync('ldd', ['/bin/dash'], { encoding: 'utf8' }).split('\n').map((line) => /(\/\S+) \(0x/.exec(line)?.[1]).filter((path) => path !== undefined)) {
      mkdirSync(join(root, dirname(library)), { recursive: true });
      copyFileSync(library, join(root, library));
    }
    for (const applet of ['cut', 'expr', 'echo']) copyFileSync('/bin/busybox', join(root, 'usr/bin', applet));
    writeFileSync(join(root, 'usr/lib/jvm/java-17-openjdk-amd64/man/man1/java.1.gz'), '');
    writeFileSync(join(root, 'var/lib/dpkg/info/openjdk.postinst'), openjdkPostinst);
    chmodSync(join(root, 'var/lib/dpkg/info/openjdk.postinst'), 0o755);
    const recorded = await recordPostinstCalls({
      root, scratch: join(scratch, 'work'), scripts: [{ package: 'openjdk', infoName: 'openjdk' }], architecture: 'amd64', mtimeSeconds: 0, env: process.env, subject: 'test',
    });
    const calls = recorded?.calls;
    expect(recorded?.notRun).toEqual([]);
    expect(calls!.map((call) => `${call.package}: ${call.argv.join(' ')}`)).toEqual([
      'openjdk: mountpoint -q /proc',
      'openjdk: mkdir -m 755 /etc/.java',
      'openjdk: dpkg --print-architecture',
      'openjdk: update-alternatives --install /usr/bin/java java /usr/lib/jvm/java-17-openjdk-amd64/bin/java 1711 --slave /usr/share/man/man1/java.1.gz java.1.gz /usr/lib/jvm/java-17-openjdk-amd64/man/man1/java.1.gz',
      'openjdk: update-alternatives --install /usr/bin/keytool keytool /usr/lib/jvm/java-17-openjdk-amd64/bin/keytool 1711',
      'openjdk: ln -sf /usr/share/nginx/modules-available/mod-echo.conf /etc/nginx/modules-enabled/50-mod-echo.conf',
      'openjdk: deb-systemd-helper --quiet was-enabled redis-server.service',
      'openjdk: deb-systemd-helper enable redis-server.service',
    ]);
    expect(alternativesOfCalls(calls!).map((alt) => [alt.name, alt.priority, alt.slaves.length])).toEqual([['java', 1711, 1], ['keytool', 1711, 0]]);
    expect(symlinksOfCalls(calls!)).toEqual([{ package: 'openjdk', target: '/usr/share/nginx/modules-available/mod-echo.conf', path: '/etc/nginx/modules-enabled/50-mod-echo.conf' }]);
    expect(enabledUnitsOfCalls(calls!)).toEqual([{ package: 'openjdk', unit: 'redis-server.service' }]);
  });
});

/** The first 64 bytes of a 64-bit little-endian executable for AArch64 (e_machine 183): what the machine cannot run here. */
function aarch64Executable(): Buffer {
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2;
  header[5] = 1;
  header[6] = 1;
  header.writeUInt16LE(2, 16);
  header.writeUInt16LE(183, 18);
  return header;
}

describe('postinsts of another architecture', () => {
  const reason = probeSandbox();
  it('reads the ELF machine and whether a dynamic linker is asked for', () => {
    expect(elfFacts(aarch64Executable())).toEqual({ machine: 183, isDynamic: false });
    expect(elfFacts(Buffer.from('#!/bin/sh\n'))).toBeUndefined();
  });

  it.skipIf(reason !== undefined || !existsSync('/bin/busybox') || !existsSync('/bin/ls'))('run with the build environment\'s static busybox: shimmed applets recorded, the #! options kept, foreign programs logged as not run', { timeout: 60_000 }, async () => {
    const environment = join(scratch, 'environment');
    mkdirSync(join(environment, 'usr/bin'), { recursive: true });
    // A busybox that needs a dynamic linker could not run over the image's files.
    copyFileSync('/bin/ls', join(environment, 'usr/bin/busybox'));
    expect(await hostToolsOf(environment, ['env.spec.yaml'])).toBeUndefined();
    copyFileSync('/bin/busybox', join(environment, 'usr/bin/busybox'));
    const tools = await hostToolsOf(environment, ['env.spec.yaml']);
    expect(tools?.machine).toBe(elfFacts(execFileSync('head', ['-c', '64', '/bin/busybox']))!.machine);

    // An arm64 image: dash, cut and ischroot are AArch64 programs; /bin/sh is dash.
    const root = join(scratch, 'foreign');
    for (const dir of ['usr/bin', 'var/lib/dpkg/info', 'etc']) mkdirSync(join(root, dir), { recursive: true });
    symlinkSync('usr/bin', join(root, 'bin'));
    for (const name of ['dash', 'cut', 'ischroot']) {
      writeFileSync(join(root, 'usr/bin', name), aarch64Executable());
      chmodSync(join(root, 'usr/bin', name), 0o755);
    }
    symlinkSync('dash', join(root, 'usr/bin/sh'));
    const scripts = {
      // `chown` and `dpkg` are busybox applets too: the shims must answer, not busybox.
      first: '#!/bin/sh -e\nchown root:adm /var/log/first\nif dpkg --compare-versions "$2" lt 1.0; then ln -s /usr/share/x "/etc/$(echo a:b | cut -d: -f2)"; fi\nischroot || true\nupdate-alternatives --install /usr/bin/x x /usr/bin/x.real 10\n',
      // -e from the #! line: the script stops at `false`.
      second: '#!/bin/sh -e\nfalse\nchown nobody /var/log/second\n',
    };
    for (const [name, text] of Object.entries(scripts)) {
      writeFileSync(join(root, 'var/lib/dpkg/info', `${name}.postinst`), text);
      chmodSync(join(root, 'var/lib/dpkg/info', `${name}.postinst`), 0o755);
    }
    // python3.11-minimal's preinst, run first with `install`.
    writeFileSync(join(root, 'var/lib/dpkg/info/first.preinst'), '#!/bin/sh\nset -e\ncase "$1" in\n  install) mkdir -p /var/lib/python; touch /var/lib/python/python3.11_installed ;;\n  upgrade) touch /upgraded ;;\nesac\n');
    chmodSync(join(root, 'var/lib/dpkg/info/first.preinst'), 0o755);
    const recorded = await recordPostinstCalls({
      root, scratch: join(scratch, 'foreign-work'), scripts: [{ package: 'first', infoName: 'first' }, { package: 'second', infoName: 'second' }],
      preinsts: [{ package: 'first', infoName: 'first' }], architecture: 'arm64', mtimeSeconds: 0, env: process.env, subject: 'test', hostTools: tools!,
    });
    expect(recorded!.calls.map((call) => `${call.package}: ${call.argv.join(' ')}`)).toEqual([
      'first: chown root:adm /var/log/first',
      'first: dpkg --compare-versions  lt 1.0',
      // cut, an AArch64 program, is busybox's cut here: the value is computed.
      'first: ln -s /usr/share/x /etc/b',
      'first: update-alternatives --install /usr/bin/x x /usr/bin/x.real 10',
    ]);
    expect(recorded!.notRun).toEqual([{ package: 'first', program: '/usr/bin/ischroot' }]);
    expect(recorded!.preinstCalls.map((call) => `${call.package}: ${call.argv.join(' ')}`)).toEqual(['first: mkdir -p /var/lib/python', 'first: touch /var/lib/python/python3.11_installed']);
    expect(preinstFilesOfCalls(recorded!.preinstCalls)).toEqual([
      { path: 'var', type: 'directory', mode: 0o755 },
      { path: 'var/lib', type: 'directory', mode: 0o755 },
      { path: 'var/lib/python', type: 'directory', mode: 0o755 },
      { path: 'var/lib/python/python3.11_installed', type: 'file', mode: 0o644 },
    ]);
  });
});

describe('reading the recorded calls', () => {
  it('parses the NUL-separated log and drops a truncated last record', () => {
    const log = Buffer.from('pkg\u00003\u0000ln\u0000-s\u0000a b\u0000pkg\u00002\u0000rm\u0000');
    expect(parseCallLog(log)).toEqual([{ package: 'pkg', argv: ['ln', '-s', 'a b'] }]);
  });
  it('takes enable calls of the system instance only', () => {
    expect(enabledUnitsOfCalls([
      { package: 'a', argv: ['deb-systemd-helper', 'unmask', 'a.service'] },
      { package: 'a', argv: ['deb-systemd-helper', 'enable', 'a.service', 'b.timer'] },
      { package: 'b', argv: ['deb-systemd-helper', '--user', 'enable', 'c.service'] },
    ])).toEqual([{ package: 'a', unit: 'a.service' }, { package: 'a', unit: 'b.timer' }]);
  });
});

describe('diversions as dpkg-divert records them', () => {
  it('lists the last added first, three lines each, without the removed ones (dash\'s postinst)', () => {
    const divert = (...args: string[]) => ({ package: 'dash', argv: ['dpkg-divert', ...args] });
    expect(diversionsOfCalls([
      divert('--listpackage', '/bin/sh'),
      divert('--package', 'bash', '--no-rename', '--remove', '/bin/sh'),
      divert('--package', 'dash', '--no-rename', '--divert', '/bin/sh.distrib', '--add', '/bin/sh'),
      divert('--package', 'dash', '--no-rename', '--divert', '/usr/share/man/man1/sh.distrib.1.gz', '--add', '/usr/share/man/man1/sh.1.gz'),
      divert('--add', '/usr/bin/x'),
      divert('--remove', '/usr/bin/x'),
    ])).toBe('/usr/share/man/man1/sh.1.gz\n/usr/share/man/man1/sh.distrib.1.gz\ndash\n/bin/sh\n/bin/sh.distrib\ndash\n');
  });
});

describe('systemd units enabled as deb-systemd-helper does without systemctl', () => {
  it('links aliases, then wants folders, and records the links in its state folder', () => {
    const units = new Map([['/lib/systemd/system/redis-server.service', '[Unit]\nDescription=x\n[Install]\nWantedBy=multi-user.target\nAlias=redis.service\n']]);
    expect(shown(systemdEnablementEntries(['redis-server.service', 'missing.service'], (path) => units.get(path)))).toEqual([
      'etc/systemd/system/redis.service -> /lib/systemd/system/redis-server.service',
      'var/lib/systemd/deb-systemd-helper-enabled/redis.service ""',
      'etc/systemd/system/multi-user.target.wants/redis-server.service -> /lib/systemd/system/redis-server.service',
      'var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/redis-server.service ""',
      'var/lib/systemd/deb-systemd-helper-enabled/redis-server.service.dsh-also "/etc/systemd/system/redis.service\n/etc/systemd/system/multi-user.target.wants/redis-server.service\n"',
    ]);
  });
});

describe('SysV init links as update-rc.d makes them without insserv', () => {
  const script = '#!/bin/sh\n### BEGIN INIT INFO\n# Provides: nginx\n# Default-Start:     2 3 4 5\n# Default-Stop:      0 1 6\n### END INIT INFO\n';
  it('links S01 for each Default-Start level and K01 for each Default-Stop level, once', () => {
    expect(shown(sysvInitLinkEntries([['nginx', 'defaults'], ['nginx', 'defaults'], ['gone', 'defaults']], (path) => (path === '/etc/init.d/nginx' ? script : undefined), () => false))).toEqual([
      'etc/rc2.d/S01nginx -> ../init.d/nginx', 'etc/rc3.d/S01nginx -> ../init.d/nginx', 'etc/rc4.d/S01nginx -> ../init.d/nginx', 'etc/rc5.d/S01nginx -> ../init.d/nginx',
      'etc/rc0.d/K01nginx -> ../init.d/nginx', 'etc/rc1.d/K01nginx -> ../init.d/nginx', 'etc/rc6.d/K01nginx -> ../init.d/nginx',
    ]);
  });
  it('leaves a script alone that has links already', () => {
    expect(sysvInitLinkEntries([['nginx', 'defaults']], () => script, (name) => name === 'nginx')).toEqual([]);
  });
});
