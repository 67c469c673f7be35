// Maintainer scripts read without running them: variables, functions called with
// arguments, umask, and the commands whose effects an image needs, as on a fresh install.
import { describe, expect, it } from 'vitest';
import { addAccount, parseAccounts, readScriptActions } from '../../../../lib/sources/debian/script-actions.js';

describe('readScriptActions', () => {
  it('follows variables and expands a function called with literal arguments (redis-tools)', () => {
    const script = [
      '#!/bin/sh', 'set -eu', 'USER="redis"', '',
      'Setup_dir () {', '\tDIR="${1}"', '\tMODE="${2}"', '\tGROUP="${3}"', '\tmkdir -p ${DIR}',
      '\tif ! dpkg-statoverride --list ${DIR} >/dev/null 2>&1', '\tthen', '\t\tchown ${USER}:${GROUP} ${DIR}', '\t\tchmod ${MODE} ${DIR}', '\tfi', '}', '',
      'if [ "$1" = "configure" ]', 'then', '\tadduser \\', '\t\t--system \\', '\t\t--home /var/lib/redis \\', '\t\t--quiet \\', '\t\t--group \\', '\t\t${USER} || true',
      '\tSetup_dir /var/lib/redis 750 ${USER}', 'fi',
    ].join('\n');
    expect(readScriptActions(script)).toEqual([
      { kind: 'adduser', name: 'redis', home: '/var/lib/redis', shell: '/usr/sbin/nologin', gecos: '', hasOwnGroup: true, isHomeCreated: true },
      { kind: 'mkdir', paths: ['/var/lib/redis'], mode: 0o755 },
      { kind: 'chown', owner: 'redis', group: 'redis', paths: ['/var/lib/redis'] },
      { kind: 'chmod', mode: 0o750, paths: ['/var/lib/redis'] },
    ]);
  });

  it.each([
    ['umask 066\ntouch "$DPKG_ROOT"/etc/security/opasswd\numask 022\n', [{ kind: 'touch', paths: ['/etc/security/opasswd'], mode: 0o600 }]],
    ['cp -p "$DPKG_ROOT/usr/share/debianutils/shells" "$DPKG_ROOT/etc/shells"\n', [{ kind: 'copy', from: '/usr/share/debianutils/shells', to: '/etc/shells' }]],
    ['dpkg-statoverride --update --add redis redis 640 /etc/redis/redis.conf\n', [{ kind: 'chown', owner: 'redis', group: 'redis', paths: ['/etc/redis/redis.conf'], mode: 0o640 }]],
    // Not understood: an unknown variable, command substitution.
    ['chown $owner /var/x\nmkdir -m $(stat -c %a /usr/local) /usr/local/share/x\n', []],
  ])('reads %j', (script, actions) => {
    expect(readScriptActions(script)).toEqual(actions);
  });
});

describe('addAccount', () => {
  it('gives a system user the first free ids from 100, and its own group with --group', () => {
    const accounts = parseAccounts('root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n', 'root:x:0:\nnogroup:x:65534:\n');
    expect(addAccount(accounts, { kind: 'adduser', name: 'redis', home: '/var/lib/redis', shell: '/usr/sbin/nologin', gecos: '', hasOwnGroup: true, isHomeCreated: true })).toEqual({ uid: 100, gid: 100 });
    expect(addAccount(accounts, { kind: 'adduser', name: 'svc', home: '/nonexistent', shell: '/usr/sbin/nologin', gecos: '', hasOwnGroup: false, isHomeCreated: false })).toEqual({ uid: 101, gid: 65534 });
    expect(accounts.passwd.map((row) => row.join(':'))).toContain('redis:x:100:100::/var/lib/redis:/usr/sbin/nologin');
  });
});
