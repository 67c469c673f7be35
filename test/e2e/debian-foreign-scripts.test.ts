// An image of another architecture than the machine's gets the same maintainer-script
// effects, without an emulator: its postinsts run with the static busybox of the project's
// build environment over the arm64 files (the image's programs replaced by busybox applets,
// the recording shims, or a logger of what was not run). The same spec built for amd64 and
// arm64 gives the same alternatives, systemd and init links, nginx module links,
// diversions and system users, and the same PAM configuration (pam-auth-update's result,
// which the amd64 image gets from the image's Perl script and the arm64 one from redo-ts's port).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli } from '../helpers/rig.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-foreign-scripts-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const hasArm64 = (): boolean => {
  const listed = spawnSync('apt-get', ['indextargets', '--format', '$(ARCHITECTURE)'], { encoding: 'utf8' }).stdout ?? '';
  return listed.split('\n').includes('arm64');
};

const packages = [
  'base-files', 'base-passwd', 'dash', 'bash', 'coreutils', 'sed', 'grep', 'debianutils', 'findutils', 'mawk', 'util-linux', 'passwd', 'adduser',
  'init-system-helpers', 'nginx-light', 'redis-server', 'openjdk-17-jre-headless', 'libpam-runtime',
];

/** The members the postinsts' calls make, with an architecture's names made neutral: `type mode owner path [-> target]`. */
function effectsOf(tar: string): string[] {
  const listing = execFileSync('tar', ['-tvf', tar], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n').filter((line) => line !== '');
  return listing
    .map((line) => line.split(/\s+/))
    .map((fields) => [fields[0], fields[1], ...fields.slice(5)].join(' '))
    .map((line) => line.replace(/aarch64-linux-gnu|x86_64-linux-gnu/g, 'MULTIARCH').replace(/arm64|amd64/g, 'ARCH'))
    .filter((line) => / (etc\/alternatives\/|var\/lib\/dpkg\/alternatives\/|etc\/systemd\/|etc\/rc.\.d\/|etc\/nginx\/modules-enabled\/|var\/lib\/dpkg\/diversions|usr\/bin\/sh |var\/log\/|etc\/pam\.d\/common-|var\/lib\/pam\/)/.test(line))
    .sort();
}

const read = (tar: string, member: string): string => execFileSync('tar', ['-xOf', tar, member], { encoding: 'utf8' }).replace(/arm64|amd64/g, 'ARCH');

describe('maintainer scripts of another architecture', () => {
  it.skipIf(!hasArm64())('give an arm64 image the alternatives, links, diversions and users of the amd64 one, with no emulator', async () => {
    const dir = join(scratch, 'project');
    mkdirSync(join(dir, 'targets'), { recursive: true });
    cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
    // The host-architecture tools the arm64 postinsts run with.
    writeFileSync(join(dir, 'targets', 'build-environment.spec.yaml'), 'name: build-environment\nversion: "1"\npackages: [busybox-static]\n');
    for (const arch of ['amd64', 'arm64']) {
      writeFileSync(join(dir, 'targets', `web-${arch}.spec.yaml`),
        `name: web-${arch}\nversion: "1"\narchitecture: ${arch}\npackages: [${packages.join(', ')}]\nexclude: [/usr/share/doc/**, /usr/share/man/**, /usr/share/locale/**]\n`);
    }
    const locked = await runCli(dir, ['lock']);
    expect(locked.code, locked.stderr).toBe(0);
    const env = { REDO_TS_CACHE: join(scratch, 'cache'), SOURCE_DATE_EPOCH: '1700000000' };
    const built = await runCli(dir, ['targets/web-amd64.fragment.tar', 'targets/web-arm64.fragment.tar'], { env });
    expect(built.code, built.stderr).toBe(0);
    const amd64 = join(dir, 'targets', 'web-amd64.fragment.tar');
    const arm64 = join(dir, 'targets', 'web-arm64.fragment.tar');

    const log = await runCli(dir, ['log', 'targets/web-arm64.fragment.tar']);
    expect(log.stdout + log.stderr).toMatch(/preinsts and postinsts run with recording shims: [0-9]+ \+ [0-9]+ scripts, [0-9]+ \+ [0-9]+ calls, with the amd64 busybox of targets\/build-environment\.spec\.yaml over the arm64 files/);

    const ours = effectsOf(arm64);
    expect(ours).toEqual(effectsOf(amd64));
    // What postinsts of the three made, by recorded calls (none of it came from the packages' files).
    expect(ours).toContain('lrwxrwxrwx 0/0 etc/systemd/system/multi-user.target.wants/nginx.service -> /lib/systemd/system/nginx.service');
    expect(ours).toContain('lrwxrwxrwx 0/0 etc/systemd/system/multi-user.target.wants/redis-server.service -> /lib/systemd/system/redis-server.service');
    expect(ours).toContain('lrwxrwxrwx 0/0 etc/nginx/modules-enabled/50-mod-http-echo.conf -> /usr/share/nginx/modules-available/mod-http-echo.conf');
    expect(ours).toContain('lrwxrwxrwx 0/0 etc/alternatives/java -> /usr/lib/jvm/java-17-openjdk-ARCH/bin/java');
    expect(ours.filter((line) => / etc\/rc2\.d\/S[0-9][0-9]nginx /.test(line))).toHaveLength(1);
    expect(read(arm64, 'var/lib/dpkg/diversions')).toContain('/bin/sh\n/bin/sh.distrib\ndash\n');
    for (const file of ['etc/passwd', 'etc/group', 'etc/shadow', 'var/lib/dpkg/diversions']) expect(read(arm64, file), file).toBe(read(amd64, file));
    // libpam-runtime's postinst: the same files, byte for byte.
    expect(log.stdout + log.stderr).toMatch(/PAM configuration \(pam-auth-update's result computed by redo-ts: the image is arm64, this machine amd64\)/);
    const pamFiles = ['account', 'auth', 'password', 'session', 'session-noninteractive'].flatMap((type) => [`etc/pam.d/common-${type}`, `var/lib/pam/${type}`]);
    for (const file of [...pamFiles, 'var/lib/pam/seen']) {
      expect(ours, file).toContain(`-rw-r--r-- 0/0 ${file}`);
      expect(read(arm64, file), file).toBe(read(amd64, file));
    }
    expect(read(arm64, 'etc/pam.d/common-auth')).toMatch(/^auth\t\[success=1 default=ignore\]\tpam_unix\.so nullok$/m);
    expect(read(arm64, 'etc/passwd')).toMatch(/^redis:x:[0-9]+:[0-9]+::\/var\/lib\/redis:\/usr\/sbin\/nologin$/m);
  }, 900_000);
});
