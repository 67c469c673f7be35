import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { firstCertificateOfPem, readJavaKeystore, writeJavaKeystore } from '../../../../lib/sources/debian/java-keystore.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-keystore-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Two CA certificates of the machine's bundle (ca-certificates, which .ci/run installs).
const bundle = '/usr/share/ca-certificates/mozilla';
const pem = (name: string): string => readFileSync(join(bundle, name), 'utf8');
const hasKeytool = spawnSync('keytool', ['-help']).status === 0;

describe('the Java keystore of ca-certificates-java', () => {
  const certificates = [
    { alias: 'debian:ISRG_Root_X1.pem', der: firstCertificateOfPem(pem('ISRG_Root_X1.crt'))! },
    { alias: 'debian:NetLock_Arany_=Class_Gold=_Főtanúsítvány.pem', der: firstCertificateOfPem(pem('NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt'))! },
  ];
  it('is the same bytes for the same certificates in any order, and reads back lowercased', () => {
    const first = writeJavaKeystore(certificates, 'changeit', 1700000000);
    expect(writeJavaKeystore([...certificates].reverse(), 'changeit', 1700000000).equals(first)).toBe(true);
    expect(readJavaKeystore(first)!.map((entry) => [entry.alias, entry.der.length])).toEqual([
      ['debian:isrg_root_x1.pem', certificates[0]!.der.length],
      ['debian:netlock_arany_=class_gold=_főtanúsítvány.pem', certificates[1]!.der.length],
    ]);
  });
  it.skipIf(!hasKeytool)('is read by keytool, which checks its digest with the store password', () => {
    const path = join(scratch, 'cacerts');
    writeFileSync(path, writeJavaKeystore(certificates, 'changeit', 1700000000));
    const listed = execFileSync('keytool', ['-list', '-keystore', path, '-storepass', 'changeit'], { encoding: 'utf8' });
    expect(listed).toContain('Your keystore contains 2 entries');
    expect(listed).toContain('debian:isrg_root_x1.pem');
    expect(spawnSync('keytool', ['-list', '-keystore', path, '-storepass', 'wrong'], { encoding: 'utf8' }).stdout).toContain('password was incorrect');
  });
});
if (!hasKeytool) console.log('skipped the keytool check: keytool is not installed (apt-get install openjdk-17-jre-headless; .ci/run installs it)');
