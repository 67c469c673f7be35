import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pamAuthUpdateFiles } from '../../../../lib/sources/debian/pam-configs.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-pam-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// The machine's libpam-runtime (Debian's, which every Debian machine has): its script, templates and profiles.
const script = '/usr/sbin/pam-auth-update';

/** A fresh root with the machine's templates and the given profiles (name to text, or the machine's file). */
function freshRoot(name: string, profiles: Record<string, string>): string {
  const root = join(scratch, name);
  mkdirSync(join(root, 'usr/share/pam-configs'), { recursive: true });
  mkdirSync(join(root, 'etc/pam.d'), { recursive: true });
  mkdirSync(join(root, 'var/lib/pam'), { recursive: true });
  cpSync('/usr/share/pam', join(root, 'usr/share/pam'), { recursive: true });
  for (const [file, text] of Object.entries(profiles)) writeFileSync(join(root, 'usr/share/pam-configs', file), text, 'latin1');
  return root;
}

/** What the real Perl script writes over a copy of `root` (its own debconf database in the scratch, noninteractive). */
function realScript(root: string): Map<string, Buffer> {
  const copy = `${root}-perl`;
  cpSync(root, copy, { recursive: true });
  const conf = `${copy}.debconf.conf`;
  writeFileSync(conf, `Config: configdb\nTemplates: templatedb\n\nName: configdb\nDriver: File\nFilename: ${copy}.config.dat\n\n`
    + `Name: templatedb\nDriver: File\nMode: 644\nFilename: ${copy}.templates.dat\n`);
  execFileSync(script, ['--package', '--force', '--root', copy], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive', DEBCONF_SYSTEMRC: conf },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const files = new Map<string, Buffer>();
  for (const folder of ['etc/pam.d', 'var/lib/pam']) {
    for (const name of readdirSync(join(copy, folder)).sort()) files.set(`${folder}/${name}`, readFileSync(join(copy, folder, name)));
  }
  return files;
}

async function ported(root: string): Promise<Map<string, Buffer>> {
  const files = await pamAuthUpdateFiles(root);
  if (typeof files === 'string') throw new Error(files);
  return new Map(files.map((file) => [file.path, file.bytes] as const).sort(([a], [b]) => (a < b ? -1 : 1)));
}

const machine = (name: string): string => readFileSync(join('/usr/share/pam-configs', name), 'latin1');

// A module with Auth-Initial, a high Priority, Conflicts and options that pam-auth-update keeps as written.
const tmpdirProfile = `Name: A hand-written test profile  
Default: yes
Priority: 512
Conflicts: never-there, other
Auth-Type: Primary
Auth:
\t[success=end default=ignore]\tpam_test.so   try_first_pass   use_first_pass
\trequisite pam_test_end.so
Auth-Initial:
\t[success=end default=ignore]\tpam_test.so
\t[success=end default=ignore]\tpam_test2.so
Account-Type: Additional
Account:
\trequired\tpam_test.so
Session-Type: Additional
Session-Interactive-Only: yes
Session:
\toptional\tpam_test.so
Password-Type: Primary
Password:
\t[success=end default=ignore]\tpam_test.so
`;
const additional = `Name: Additional only, same priority as unix
Default: yes
Priority: 256
Auth-Type: Additional
Auth:
\toptional\tpam_extra.so
Session-Type: Additional
Session-Final:
\toptional\tpam_extra.so
`;
const conflicting = `Name: conflicts with the test profile
Default: yes
Priority: 100
Auth-Type: Primary
Auth:
\t[success=end default=ignore]\tpam_other.so
`;
// Debian bookworm's own profiles of libpam-krb5 4.11-1+b1, libpam-ldapd 0.9.12-4 and libpam-tmpdir 0.09+b2, verbatim.
const debianKrb5 = 'Name: Kerberos authentication\nDefault: yes\nPriority: 704\nConflicts: krb5-openafs\nAuth-Type: Primary\nAuth:\n\t[success=end default=ignore]\tpam_krb5.so minimum_uid=1000 try_first_pass\nAuth-Initial:\n\t[success=end default=ignore]\tpam_krb5.so minimum_uid=1000\nAccount-Type: Additional\nAccount:\n\trequired\t\t\tpam_krb5.so minimum_uid=1000\nPassword-Type: Primary\nPassword:\n\t[success=end default=ignore]\tpam_krb5.so minimum_uid=1000 try_first_pass use_authtok\nPassword-Initial:\n\t[success=end default=ignore]\tpam_krb5.so minimum_uid=1000\nSession-Type: Additional\nSession:\n\toptional\t\t\tpam_krb5.so minimum_uid=1000\n';
const debianLdap = 'Name: LDAP Authentication\nDefault: yes\nPriority: 128\nAuth-Type: Primary\nAuth-Initial:\n\t[success=end default=ignore]\tpam_ldap.so minimum_uid=1000\nAuth:\n\t[success=end default=ignore]\tpam_ldap.so minimum_uid=1000 use_first_pass\nAccount-Type: Additional\nAccount:\n\t[success=ok new_authtok_reqd=done ignore=ignore user_unknown=ignore authinfo_unavail=ignore default=bad]\tpam_ldap.so minimum_uid=1000\nPassword-Type: Primary\nPassword-Initial:\n\t[success=end default=ignore]\tpam_ldap.so minimum_uid=1000\nPassword:\n\t[success=end default=ignore]\tpam_ldap.so minimum_uid=1000 try_first_pass\nSession-Type: Additional\nSession:\n\t[success=ok default=ignore]\tpam_ldap.so minimum_uid=1000\n';
const debianTmpdir = 'Name: per-user temporary directories\nDefault: yes\nPriority: 0\nSession-Type: Additional\nSession-Final:\n optional pam_tmpdir.so\n';
const notDefault = 'Name: not default\nDefault: no\nPriority: 900\nAuth-Type: Primary\nAuth:\n\trequired pam_no.so\n';
const tally = 'Name: disabled by pam_tally\nDefault: yes\nPriority: 10\nAuth-Type: Primary\nAuth:\n\trequired pam_tally.so\n';

describe.runIf(existsSync(script))('pam-auth-update ported to TypeScript', () => {
  const cases: Array<[string, Record<string, string>]> = [
    ['the default profile (unix)', { unix: machine('unix') }],
    ['the machine\'s profiles', Object.fromEntries(readdirSync('/usr/share/pam-configs').map((name) => [name, machine(name)]))],
    ['Debian\'s krb5, ldap and tmpdir profiles beside unix and systemd', {
      unix: machine('unix'), systemd: machine('systemd'), krb5: debianKrb5, ldap: debianLdap, tmpdir: debianTmpdir,
    }],
    ['an extra module with Auth-Initial, Priority, Conflicts and Additional blocks', {
      unix: machine('unix'), systemd: machine('systemd'), test: tmpdirProfile, extra: additional, other: conflicting, 'not-default': notDefault, tally,
      'backup~': tally, '#editor#': tally,
    }],
  ];
  for (const [name, profiles] of cases) {
    it(`writes the real script's bytes for ${name}`, async () => {
      const root = freshRoot(name.replace(/[^a-z]+/g, '-'), profiles);
      const real = realScript(root);
      expect([...real.keys()]).toContain('etc/pam.d/common-auth');
      const ours = await ported(root);
      expect([...ours.keys()]).toEqual([...real.keys()]);
      for (const [path, bytes] of real) expect(ours.get(path)!.toString('latin1'), path).toBe(bytes.toString('latin1'));
    });
  }

  it('says why it writes nothing over an image with earlier state', async () => {
    const root = freshRoot('earlier', { unix: machine('unix') });
    writeFileSync(join(root, 'var/lib/pam/auth'), 'Module: unix\n');
    expect(await pamAuthUpdateFiles(root)).toMatch(/already has .*\/var\/lib\/pam\/auth/);
  });

  it('does not follow a profile that is a link (it could lead out of the image)', async () => {
    const root = freshRoot('linked', { unix: machine('unix') });
    symlinkSync('/usr/share/pam-configs/unix', join(root, 'usr/share/pam-configs/linked'));
    expect(await pamAuthUpdateFiles(root)).toMatch(/\/usr\/share\/pam-configs\/linked is not a regular file/);
  });
});
