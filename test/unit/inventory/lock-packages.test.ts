// debianLockProvider: the packages of a spec with a package list come from its lock
// (versions, pins, pulled-by) and from dpkg's database in its fragment (which paths each
// package delivered, under merged-/usr; control fields), licences from the copyright
// files in the fragment or, where the fragment lacks one, from the .deb in the cache.
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRedoError } from '../../../lib/errors.js';
import { writeTar, type TarEntry } from '../../../lib/image/tar.js';
import { debianLockProvider } from '../../../lib/inventory/lock-packages.js';
import type { DebPackage } from '../../../lib/inventory/packages.js';
import { formatLock, type DebianLock, type LockedPackage } from '../../../lib/sources/debian/lock.js';
import { integrityOfFile } from '../../../lib/sources/integrity.js';
import { loadSpec } from '../../../lib/sources/spec.js';
import { insertIntoStore } from '../../../lib/sources/store.js';
import { fixturePackage, makeFixtureDeb } from '../../fixtures/402-deb-package/make-deb.js';

const file = (path: string, text: string): TarEntry => ({ path: Buffer.from(path), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: Buffer.byteLength(text), content: { kind: 'buffer', bytes: Buffer.from(text) } });
const folder = (path: string): TarEntry => ({ path: Buffer.from(path), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 });
const symlink = (path: string, target: string): TarEntry => ({ path: Buffer.from(path), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from(target) });

const mitCopyright = [
  'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
  'Upstream-Name: alpha',
  '',
  'Files: *',
  'Copyright: 2024 Alpha Authors',
  'License: Expat',
  '',
  'License: Expat',
  ' Permission is hereby granted, free of charge, ...',
  '',
].join('\n');

const locked = (name: string, version: string, architecture: string, source: string, pulledBy: string[], integrity: string): LockedPackage => ({
  name, version, architecture, source, sizeBytes: 1, filename: `pool/main/${name[0]}/${source}/${name}_${version}_${architecture}.deb`, integrity, suite: 'bookworm', pulledBy,
});

describe('debianLockProvider', () => {
  let root: string;
  let cacheDir: string;
  let packages: Map<string, DebPackage>;
  const someIntegrity = `sha256-${Buffer.alloc(32, 7).toString('base64')}`;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'redo-ts-lock-packages-'));
    cacheDir = join(root, 'cache');
    const deb = makeFixtureDeb(root, 'gzip');
    const debIntegrity = await integrityOfFile(deb);
    await insertIntoStore(cacheDir, debIntegrity, deb, 'file:fixture');
    writeFileSync(join(root, 'tools.spec.yaml'), `name: tools\nversion: "1"\npackages: [alpha, ${fixturePackage.name}]\narchitecture: amd64\n`);
    const lock: DebianLock = {
      spec: 'tools.spec.yaml', architecture: 'amd64', isRecommendsWanted: false, requested: ['alpha', fixturePackage.name],
      indexes: [{ suite: 'bookworm', origin: 'Debian', date: 'Sat, 11 Jul 2026 10:16:37 UTC', path: 'main/binary-amd64/Packages', integrity: someIntegrity }],
      packages: [
        locked('alpha', '2.0-1', 'amd64', 'alpha', ['requested'], someIntegrity),
        locked('libbeta1', '1:1.5-2', 'amd64', 'beta', ['alpha'], someIntegrity),
        locked(fixturePackage.name, fixturePackage.version, 'all', fixturePackage.name, ['requested'], debIntegrity),
      ],
    };
    writeFileSync(join(root, 'tools.lock.yaml'), formatLock(lock));
    const status = [
      'Package: alpha\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.0-1\nDepends: libbeta1 (>= 1:1.5)\nDescription: the alpha tool\n',
      'Package: libbeta1\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nSource: beta (1.5-2)\nVersion: 1:1.5-2\nDescription: beta library\n',
      // Removed, configuration kept: dpkg lists it, but it is not installed.
      `Package: ${fixturePackage.name}\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: ${fixturePackage.version}\nDescription: fixture\n`,
    ].join('\n');
    await writeTar([
      symlink('bin', 'usr/bin'), folder('usr'), folder('usr/bin'), file('usr/bin/alpha', '#!/bin/sh\n'),
      folder('usr/lib'), folder('usr/lib/x86_64-linux-gnu'), file('usr/lib/x86_64-linux-gnu/libbeta.so.1', 'ELF'),
      folder('usr/share'), folder('usr/share/doc'), folder('usr/share/doc/alpha'), file('usr/share/doc/alpha/copyright', mitCopyright),
      folder('usr/share/doc/libbeta1'), file('usr/share/doc/libbeta1/copyright', 'Copyright 2024 Beta. Some licence in prose.\n'),
      file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n'),
      folder('var'), folder('var/lib'), folder('var/lib/dpkg'), folder('var/lib/dpkg/info'),
      file('var/lib/dpkg/status', status),
      // alpha ships /bin/alpha: merged-/usr moved it to /usr/bin/alpha.
      file('var/lib/dpkg/info/alpha.list', '/.\n/bin\n/bin/alpha\n/usr\n/usr/share\n/usr/share/doc\n/usr/share/doc/alpha\n/usr/share/doc/alpha/copyright\n'),
      file('var/lib/dpkg/info/libbeta1:amd64.list', '/.\n/usr/lib/x86_64-linux-gnu/libbeta.so.1\n/usr/share/doc/libbeta1/copyright\n/usr/share/doc/libbeta1/changelog.gz\n'),
    ], join(root, 'tools.fragment.tar'), { mtimeSeconds: 0 });
    const spec = await loadSpec(join(root, 'tools.spec.yaml'), { root });
    const found = await debianLockProvider({ cacheDir, isOffline: true, env: {} }).packagesOf(spec);
    packages = new Map(found.map((item) => [item.name, item]));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('gives every locked package, with the version, architecture, pin and url the lock gives', () => {
    expect([...packages.keys()]).toEqual(['alpha', 'libbeta1', fixturePackage.name]);
    const beta = packages.get('libbeta1')!;
    expect([beta.version, beta.architecture, beta.integrity, beta.url, beta.spec, beta.distro]).toEqual(['1:1.5-2', 'amd64', someIntegrity, 'deb:libbeta1=1:1.5-2?arch=amd64', 'tools.spec.yaml', 'debian-12']);
  });

  it.each([
    ['alpha', true, ['usr', 'usr/bin', 'usr/bin/alpha', 'usr/share', 'usr/share/doc', 'usr/share/doc/alpha', 'usr/share/doc/alpha/copyright']],
    // Named by its Multi-Arch info file; a listed path the fragment lacks (excluded) is not claimed.
    ['libbeta1', true, ['usr/lib/x86_64-linux-gnu/libbeta.so.1', 'usr/share/doc/libbeta1/copyright']],
    // Not installed per the status file: nothing delivered.
    [fixturePackage.name, false, []],
  ] as const)('%s: delivered %s, its paths from info/PKG.list under merged-/usr', (name, isDelivered, paths) => {
    const item = packages.get(name)!;
    expect(item.isDelivered).toBe(isDelivered);
    expect([...item.deliveredPaths].sort()).toEqual([...paths].sort());
  });

  it.each([
    ['alpha', 'MIT', 'alpha', 'libbeta1 (>= 1:1.5)', []],
    ['libbeta1', 'NOASSERTION', 'beta (1.5-2)', undefined, ['alpha']],
    // Not in the fragment: control and (non-machine-readable) copyright read from the cached .deb.
    [fixturePackage.name, 'NOASSERTION', fixturePackage.name, undefined, []],
  ] as const)('%s: licence %s, source and Depends, pulled-by from the lock', (name, licence, source, depends, pulledBy) => {
    const item = packages.get(name)!;
    expect(item.licence.expression).toBe(licence);
    expect(item.control.get('source')).toBe(source);
    expect(item.control.get('depends')).toBe(depends);
    expect(item.pulledBy).toEqual(pulledBy);
  });

  it('reads what the fragment lacks from the cached .deb, and keeps a summary of it', () => {
    expect(packages.get(fixturePackage.name)!.control.get('maintainer')).toBe('redo-ts tests <tests@example.invalid>');
    expect(readdirSync(join(cacheDir, 'inventory-v1')).filter((name) => name.endsWith('.json'))).toHaveLength(1);
  });

  it('keeps its answer by the spec, the lock and the fragment\'s digest: asked again, it reads neither the lock nor the .debs; a changed fragment is read again', async () => {
    expect(readdirSync(join(cacheDir, 'inventory-v1', 'lock-packages'))).toHaveLength(1);
    // A cache holding only the kept answer: no .deb, no summary (offline, those would be an error).
    const keptOnly = join(root, 'kept-only-cache');
    cpSync(join(cacheDir, 'inventory-v1', 'lock-packages'), join(keptOnly, 'inventory-v1', 'lock-packages'), { recursive: true });
    const spec = await loadSpec(join(root, 'tools.spec.yaml'), { root });
    const again = await debianLockProvider({ cacheDir: keptOnly, isOffline: true, env: {} }).packagesOf(spec);
    expect(new Map(again.map((item) => [item.name, item]))).toEqual(packages);
    expect(again.find((item) => item.name === 'alpha')!.deliveredPaths).toBeInstanceOf(Set);
    // Another fragment: another key, so the answer is computed again (and here, offline, fails for want of the .deb).
    await writeTar([file('etc/hostname', 'x\n')], join(root, 'tools.fragment.tar'), { mtimeSeconds: 0 });
    const error = await debianLockProvider({ cacheDir: keptOnly, isOffline: true, env: {} }).packagesOf(spec).catch((caught: unknown) => caught);
    expect(isRedoError(error, 'ERR_SOURCE_UNREACHABLE')).toBe(true);
  });

  it('offline, a .deb neither cached nor summarised is an error naming the lock', async () => {
    const spec = await loadSpec(join(root, 'tools.spec.yaml'), { root });
    const error = await debianLockProvider({ cacheDir: join(root, 'empty-cache'), isOffline: true, env: {} }).packagesOf(spec).catch((caught: unknown) => caught);
    expect(isRedoError(error, 'ERR_SOURCE_UNREACHABLE')).toBe(true);
    expect((error as Error).message).toContain('tools.lock.yaml');
  });
});
