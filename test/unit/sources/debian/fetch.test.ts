// Which packages a failed `apt-get download` could not fetch: every way apt 2.6 names a
// package in its errors (lines copied from real runs), only requested packages, once each.
import { describe, expect, it } from 'vitest';
import { packagesAptCouldNotFetch } from '../../../../lib/sources/debian/fetch.js';
import type { LockedPackage } from '../../../../lib/sources/debian/lock.js';

const pkg = (name: string, version: string, filename: string): LockedPackage => ({
  name, version, architecture: 'amd64', source: name, sizeBytes: 1, filename, integrity: 'sha256-x', suite: 'bookworm', pulledBy: ['requested'],
});
const zlib = pkg('zlib1g', '1:1.2.13.dfsg-1+deb12u1', 'pool/updates/main/z/zlib/zlib1g_1.2.13.dfsg-1+deb12u1_amd64.deb');
const libc = pkg('libc6', '2.36-9+deb12u14', 'pool/main/g/glibc/libc6_2.36-9+deb12u14_amd64.deb');
const libcDev = pkg('libc6-dev', '2.36-9+deb12u14', 'pool/main/g/glibc/libc6-dev_2.36-9+deb12u14_amd64.deb');
const ffi = pkg('libffi8', '3.4.4-1', 'pool/main/libf/libffi/libffi8_3.4.4-1_amd64.deb');
const tool = pkg('demo-tool', '2.0-1', 'pool/main/d/demo-tool/demo-tool_2.0-1_amd64.deb');

describe('packagesAptCouldNotFetch', () => {
  it('reads NAME:ARCH in quotes, a bare quoted NAME, and "Unable to locate package NAME:ARCH"', () => {
    const stderr = [
      "W: Download is performed unsandboxed as root as file '/tmp/x/libc6_2.36.deb' couldn't be accessed by user '_apt'. - pkgAcquire::Run (13: Permission denied)",
      "E: Version '1:1.2.13.dfsg-1+deb12u1' for 'zlib1g' was not found",
      "E: Can't find a source to download version '2.36-9+deb12u14' of 'libc6:amd64'",
      'E: Unable to locate package libffi8:amd64',
      '',
    ].join('\n');
    expect(packagesAptCouldNotFetch(stderr, [zlib, libc, libcDev, ffi, tool])).toEqual([
      { locked: zlib, evidence: "E: Version '1:1.2.13.dfsg-1+deb12u1' for 'zlib1g' was not found" },
      { locked: libc, evidence: "E: Can't find a source to download version '2.36-9+deb12u14' of 'libc6:amd64'" },
      { locked: ffi, evidence: 'E: Unable to locate package libffi8:amd64' },
    ]);
  });

  it('maps a 404 to the package by its pool file name, without the IP suffix', () => {
    const stderr = 'E: Failed to fetch http://127.0.0.1:41234/debian/pool/main/d/demo-tool/demo-tool_2.0-1_amd64.deb  404  Not Found [IP: 127.0.0.1 41234]\n';
    expect(packagesAptCouldNotFetch(stderr, [zlib, tool])).toEqual([
      { locked: tool, evidence: 'E: Failed to fetch http://127.0.0.1:41234/debian/pool/main/d/demo-tool/demo-tool_2.0-1_amd64.deb  404  Not Found' },
    ]);
  });

  it('names nothing when apt names no requested package (a held lock, a broken configuration)', () => {
    const stderr = 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1234 (apt-get)\nE: Unable to lock directory /var/lib/apt/lists/\n';
    expect(packagesAptCouldNotFetch(stderr, [zlib, libc])).toEqual([]);
  });
});
