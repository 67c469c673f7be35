// What maintainer scripts do on a fresh install, reproduced without running them: the CA
// bundle and hash links of ca-certificates (openssl in the image verifies with them), the
// system user redis-tools' postinst adds with adduser and the owners and modes it sets,
// nginx-common's log files, shadow files made as the passwd package makes them.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli } from '../helpers/rig.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-script-effects-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('maintainer-script effects', () => {
  it('gives an image the CA bundle, system users, owners and modes the postinsts make', async () => {
    const dir = join(scratch, 'project');
    mkdirSync(join(dir, 'targets'), { recursive: true });
    cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
    writeFileSync(join(dir, 'targets', 'effects.spec.yaml'), 'name: effects\nversion: "1"\narchitecture: amd64\npackages: [base-files, base-passwd, passwd, ca-certificates, openssl, nginx-common, redis-tools]\nexclude: [/usr/share/doc/**, /usr/share/man/**, /usr/share/locale/**]\n');
    const locked = await runCli(dir, ['lock']);
    expect(locked.code, locked.stderr).toBe(0);
    const built = await runCli(dir, ['targets/effects.fragment.tar'], { env: { REDO_TS_CACHE: join(scratch, 'cache'), SOURCE_DATE_EPOCH: '1700000000' } });
    expect(built.code, built.stderr).toBe(0);
    const root = join(scratch, 'root');
    mkdirSync(root);
    execFileSync('tar', ['-xf', join(dir, 'targets', 'effects.fragment.tar'), '-C', root, '--no-same-owner']);
    const listing = execFileSync('tar', ['-tvf', join(dir, 'targets', 'effects.fragment.tar')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

    // ca-certificates: the bundle, one .pem link per certificate, the hash links openssl looks up.
    const bundle = readFileSync(join(root, 'etc/ssl/certs/ca-certificates.crt'), 'utf8');
    expect(bundle.match(/-----BEGIN CERTIFICATE-----/g)!.length).toBeGreaterThan(100);
    expect(readlinkSync(join(root, 'etc/ssl/certs/ISRG_Root_X1.pem'))).toBe('/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt');
    expect(readFileSync(join(root, 'etc/ca-certificates.conf'), 'utf8')).toContain('\nmozilla/ISRG_Root_X1.crt\n');
    const verify = spawnSync('unshare', ['-r', '/usr/sbin/chroot', root, '/usr/bin/openssl', 'verify', '-CApath', '/etc/ssl/certs', '/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(verify.stdout + verify.stderr).toContain(': OK');

    // redis-tools: adduser --system --group redis, then Setup_dir's chown and chmod.
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    const redis = /^redis:x:([0-9]+):([0-9]+)::\/var\/lib\/redis:\/usr\/sbin\/nologin$/m.exec(passwd);
    expect(redis, passwd).not.toBeNull();
    expect(readFileSync(join(root, 'etc/group'), 'utf8')).toMatch(new RegExp(`^redis:x:${redis![2]}:$`, 'm'));
    expect(listing).toMatch(new RegExp(`^drwxr-x--- ${redis![1]}/${redis![2]} .* var/lib/redis/$`, 'm'));
    expect(listing).toMatch(new RegExp(`^drwxr-s--- ${redis![1]}/4 .* var/log/redis/$`, 'm'));
    // nginx-common: /var/log/nginx root:adm, its log files www-data:adm 0640.
    expect(listing).toMatch(/^drwxr-xr-x 0\/4 .* var\/log\/nginx\/$/m);
    expect(listing).toMatch(/^-rw-r----- 33\/4 .* var\/log\/nginx\/access\.log$/m);
    // passwd: shadow files, root's password field moved there, the change day SOURCE_DATE_EPOCH's.
    expect(readFileSync(join(root, 'etc/shadow'), 'utf8')).toMatch(/^root:\*:19675:0:99999:7:::$/m);
    expect(passwd).toMatch(/^root:x:0:0:root:\/root:\/bin\/bash$/m);
    expect(statSync(join(root, 'etc/shadow')).mode & 0o777).toBe(0o640);
  });
});
