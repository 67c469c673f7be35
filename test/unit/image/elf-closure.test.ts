import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readElfDynamic } from '../../../lib/image/elf-closure.js';

/** NEEDED and interpreter of a host file as readelf (binutils) or `ld.so --list` sees them, for comparison. */
function neededByLoader(path: string): string[] {
  const listing = execFileSync('/lib64/ld-linux-x86-64.so.2', ['--list', path], { encoding: 'utf8' });
  return listing.split('\n').map((line) => line.trim().split(' ')[0]!).filter((name) => name.endsWith('.so.6') || name.includes('.so.'));
}

describe('readElfDynamic', () => {
  it('reads the NEEDED sonames and the loader of a real program', () => {
    const elf = readElfDynamic(readFileSync('/usr/bin/ls'))!;
    expect(elf.interpreter).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(elf.machine).toBe(62);
    expect(elf.needed).toContain('libc.so.6');
    for (const soname of elf.needed) expect(neededByLoader('/usr/bin/ls').join(' ')).toContain(soname);
  });
  it('reads a shared library, which has no loader', () => {
    const elf = readElfDynamic(readFileSync('/lib/x86_64-linux-gnu/libz.so.1'))!;
    expect(elf.interpreter).toBeUndefined();
    expect(elf.needed).toEqual(['libc.so.6']);
  });
  it('returns undefined for what is not a dynamic ELF file', () => {
    expect(readElfDynamic(Buffer.from('#!/bin/sh\necho hi\n'.padEnd(80)))).toBeUndefined();
    expect(readElfDynamic(readFileSync('/bin/busybox'))).toBeUndefined();
  });
});
