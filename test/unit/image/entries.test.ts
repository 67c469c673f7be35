// collectEntries: host metadata never leaks; special files, bad metadata and odd names are handled by path.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectEntries } from '../../../lib/image/entries.js';
import { parseMetadata } from '../../../lib/image/metadata.js';
import { writeTar } from '../../../lib/image/tar.js';
import { isRedoError } from '../../../lib/errors.js';

let dir: string;
let count = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-entries-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tree(): string {
  const root = join(dir, `t${count++}`);
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'bin', 'tool'), '#!/bin/sh\n');
  chmodSync(join(root, 'bin', 'tool'), 0o700);
  writeFileSync(join(root, 'etc', 'conf'), 'x=1\n');
  chmodSync(join(root, 'etc', 'conf'), 0o666);
  chmodSync(join(root, 'etc'), 0o777);
  return root;
}

const summary = (root: string, options = {}) =>
  collectEntries(root, options).map((e) => `${e.type} ${e.path.toString('latin1')} ${e.mode.toString(8)} ${e.uid}:${e.gid}${e.linkTarget ? ' -> ' + e.linkTarget.toString('latin1') : ''}`);

describe('collectEntries', () => {
  it('applies the default rule, not the host modes or owner', () => {
    expect(summary(tree())).toEqual(['directory bin 755 0:0', 'file bin/tool 755 0:0', 'directory etc 755 0:0', 'file etc/conf 644 0:0']);
  });

  it('applies the metadata table, later rules overriding earlier ones', () => {
    const metadata = parseMetadata('/etc/** 0750 0 0\n/etc/conf 0640 - 42\n/bin/tool 4755 0 0\n', 'meta');
    expect(summary(tree(), { metadata })).toEqual(['directory bin 755 0:0', 'file bin/tool 4755 0:0', 'directory etc 750 0:0', 'file etc/conf 640 0:42']);
  });

  it('keeps a symlink that points outside the rootfs as a link, never following it', () => {
    const root = tree();
    symlinkSync('/etc/shadow', join(root, 'etc', 'abs'));
    symlinkSync('../../../../outside', join(root, 'etc', 'rel'));
    expect(summary(root).filter((l) => l.startsWith('symlink'))).toEqual(['symlink etc/abs 777 0:0 -> /etc/shadow', 'symlink etc/rel 777 0:0 -> ../../../../outside']);
  });

  it('stores hardlinks as one file plus links to the first path in byte order', () => {
    const root = tree();
    linkSync(join(root, 'bin', 'tool'), join(root, 'bin', 'a-tool'));
    expect(summary(root).slice(0, 3)).toEqual(['directory bin 755 0:0', 'file bin/a-tool 755 0:0', 'hardlink bin/tool 755 0:0 -> bin/a-tool']);
    expect(summary(root, { hardlinks: 'copy' }).slice(1, 3)).toEqual(['file bin/a-tool 755 0:0', 'file bin/tool 755 0:0']);
  });

  it('keeps names over 100 and 255 bytes; a name that is not UTF-8 is listed, and refused by writeTar naming it', async () => {
    const root = tree();
    const raw = Buffer.concat([Buffer.from(root + '/etc/'), Buffer.from([0x63, 0x61, 0x66, 0xe9])]);
    writeFileSync(raw, 'latin1 name');
    const entries = collectEntries(root);
    expect(entries.some((e) => e.path.equals(Buffer.from([0x65, 0x74, 0x63, 0x2f, 0x63, 0x61, 0x66, 0xe9])))).toBe(true);
    await expect(writeTar(entries, join(dir, 'raw-name.tar'), { mtimeSeconds: 0 })).rejects.toSatisfy(
      (error) => isRedoError(error, 'ERR_LAYER_UNREPRESENTABLE') && (error as Error).message.includes('"etc/caf\\xe9"'),
    );
    rmSync(raw);
    const deep = join(root, 'd'.repeat(200), 'e'.repeat(200));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'f'.repeat(250)), 'deep');
    const out = join(dir, 'names.tar');
    await writeTar(collectEntries(root), out, { mtimeSeconds: 0 });
    const extracted = join(dir, `x${count++}`);
    mkdirSync(extracted);
    const result = spawnSync('tar', ['-C', extracted, '-xf', out], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(spawnSync('diff', ['-r', root, extracted]).status).toBe(0);
  });

  it('refuses an undeclared fifo naming it, and keeps a declared one', () => {
    const root = tree();
    spawnSync('mkfifo', [join(root, 'etc', 'pipe')]);
    expect(() => collectEntries(root, { label: 'rootfs' })).toThrow(/"rootfs\/etc\/pipe": is a fifo/);
    const entries = summary(root, { metadata: parseMetadata('etc/pipe 0600 0 0\n', 'meta') });
    expect(entries).toContain('fifo etc/pipe 600 0:0');
  });

  it('refuses an undeclared socket naming it, and leaves out a declared one', async () => {
    const root = tree();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(root, 'etc', 'sock'), resolve));
    try {
      expect(() => collectEntries(root, { label: 'rootfs' })).toThrow(/"rootfs\/etc\/sock": is a socket/);
      expect(summary(root, { metadata: parseMetadata('etc/sock - - -\n', 'meta') })).not.toContain('etc/sock');
    } finally {
      server.close();
    }
  });

  it('refuses metadata for a path that does not exist, naming the path and line', () => {
    try {
      collectEntries(tree(), { metadata: parseMetadata('# header\n/etc/missing 0644 0 0\n', 'files.meta'), label: 'rootfs' });
      expect.unreachable();
    } catch (error) {
      expect(isRedoError(error, 'ERR_METADATA_UNMATCHED')).toBe(true);
      expect((error as Error).message).toContain('"etc/missing"');
      expect((error as import('../../../lib/errors.js').RedoError).details).toContain('declared at: files.meta:2');
    }
  });

  it('puts the folder under a prefix when asked', () => {
    expect(summary(tree(), { prefix: '/opt/app' })[0]).toBe('directory opt/app/bin 755 0:0');
  });
});

describe('parseMetadata', () => {
  it.each([
    ['etc 0644 0', /wanted 4 fields/],
    ['etc 0999 0 0', /mode: wanted octal/],
    ['etc 0644 root 0', /uid: wanted a decimal id/],
    ['../etc 0644 0 0', /not inside the rootfs/],
  ])('refuses %j with a message naming file:line', (line, message) => {
    expect(() => parseMetadata(`# ok\n${line}\n`, 'rootfs.meta')).toThrow(/"rootfs\.meta:2"/);
    try {
      parseMetadata(`${line}\n`, 'rootfs.meta');
      expect.unreachable();
    } catch (error) {
      expect(isRedoError(error, 'ERR_METADATA_INVALID')).toBe(true);
      expect((error as import('../../../lib/errors.js').RedoError).render()).toMatch(message as RegExp);
    }
  });

  it('reads escapes for spaces and raw bytes', () => {
    const table = parseMetadata('my\\ file 0600 1 2\nraw\\xff - - -\n', 'm');
    expect(table.rules.map((r) => (r.pattern as Buffer).toString('latin1'))).toEqual(['my file', 'raw\xff']);
    expect(table.rules[0]).toMatchObject({ mode: 0o600, uid: 1, gid: 2 });
  });
});
