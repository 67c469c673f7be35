import { createHash } from 'node:crypto';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedoError } from '../../../lib/errors.js';
import { listArMembers, openDebData, readDebEntries, type DebCheck } from '../../../lib/sources/deb.js';
import { makeFixtureDeb, makeUnsafeDeb, type DebCompression } from '../../fixtures/402-deb-package/make-deb.js';
import { withoutTools } from '../../helpers/without-tools.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-deb-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function summarise(entries: Awaited<ReturnType<typeof readDebEntries>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const link = entry.linkTarget === undefined ? '' : ` -> ${entry.linkTarget.toString()}`;
    out[entry.path.toString()] = `${entry.type} ${entry.mode.toString(8).padStart(4, '0')} ${entry.uid}:${entry.gid} ${entry.sizeBytes}${link}`;
  }
  return out;
}

describe('readDebEntries', () => {
  const compressions: DebCompression[] = ['xz', 'zstd', 'gzip', 'none'];
  for (const compression of compressions) {
    it(`reads a dpkg-deb -Z${compression} package with its own modes, owners and links`, async () => {
      const deb = makeFixtureDeb(dir, compression);
      const entries = await readDebEntries(deb, 'redo-fixture=1.0-1', join(dir, `data-${compression}.tar`));
      const summary = summarise(entries);
      expect(summary['usr/bin/tool']).toBe('file 0755 0:0 20');
      expect(summary['usr/bin/suid']).toBe('file 4755 0:0 20');
      expect(summary['usr/bin/tool-link']).toBe('symlink 0777 0:0 0 -> tool');
      expect(summary['etc/fixture.conf']).toBe('file 0600 0:0 9');
      expect(summary['usr/bin']).toBe('directory 0755 0:0 0');
      const data = [summary['usr/lib/fixture/data'], summary['usr/lib/fixture/data-hard']].sort();
      expect(data).toEqual(['file 0644 0:0 12', 'hardlink 0644 0:0 0 -> usr/lib/fixture/data']);
      const contentEntry = entries.find((entry) => entry.path.toString() === 'usr/bin/tool')!;
      expect(contentEntry.content?.kind).toBe('path');
    });
  }

  const unsafe: Array<[string, string, string]> = [
    ['dotdot', '../evil', 'member: "../evil"'],
    ['nested-dotdot', './usr/../../evil', 'member: "./usr/../../evil"'],
    ['absolute', '/etc/evil', 'member: "/etc/evil"'],
  ];
  for (const [label, member, detail] of unsafe) {
    it(`refuses a package whose data archive holds ${member}`, async () => {
      const deb = makeUnsafeDeb(dir, member, label);
      const error = await readDebEntries(deb, 'unsafe=1', join(dir, `unsafe-${label}.tar`)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedoError);
      expect((error as RedoError).code).toBe('ERR_DEB_UNSAFE_PATH');
      expect((error as RedoError).headline).toBe('redo: "unsafe=1": package data archive holds an unsafe path');
      expect((error as RedoError).details[0]).toBe(detail);
    });
  }

  it('refuses a file that is not an ar archive', async () => {
    const notDeb = join(dir, 'not.deb');
    writeFileSync(notDeb, 'hello');
    await expect(readDebEntries(notDeb, 'broken=1', join(dir, 'broken.tar'))).rejects.toMatchObject({
      code: 'ERR_DEB_FORMAT',
      headline: 'redo: "broken=1": not a valid .deb package',
    });
  });

  it('lists the ar members of a package in order', async () => {
    const deb = makeFixtureDeb(dir, 'gzip');
    const members = await listArMembers(deb, 'redo-fixture=1.0-1');
    expect(members.map((member) => member.name)).toEqual(['debian-binary', 'control.tar.gz', 'data.tar.gz']);
  });
  describe('decoding a package once per process', () => {
    const sriOf = (path: string) => `sha256-${createHash('sha256').update(readFileSync(path)).digest('base64')}`;
    const mismatch = (found: string) => Promise.resolve(new Error(`mismatch ${found}`));

    it('reads a second copy of the same .deb (another path) without decompressing it again', async () => {
      const deb = makeFixtureDeb(dir, 'xz');
      const first = join(dir, 'once-a.deb');
      const second = join(dir, 'once-b.deb');
      copyFileSync(deb, first);
      copyFileSync(deb, second);
      const check: DebCheck = { integrity: sriOf(first), onMismatch: mismatch };
      const entries = await readDebEntries(first, 'redo-fixture=1.0-1', join(dir, 'once-a.tar'), check);
      // xz is not on PATH for the second read: it succeeds only from the archive decoded above.
      const again = await withoutTools(dir, () => readDebEntries(second, 'redo-fixture=1.0-1', join(dir, 'once-b.tar')));
      expect(summarise(again)).toEqual(summarise(entries));
      expect(readFileSync(join(dir, 'once-b.tar'))).toEqual(readFileSync(join(dir, 'once-a.tar')));
    });

    it('does not reuse it for a damaged copy: the pin\'s hash decides', async () => {
      const deb = makeFixtureDeb(dir, 'xz');
      const good = join(dir, 'pin-good.deb');
      const damaged = join(dir, 'pin-damaged.deb');
      copyFileSync(deb, good);
      const bytes = readFileSync(deb);
      bytes[bytes.length - 40] ^= 0xff; // inside the data member, same size
      writeFileSync(damaged, bytes);
      const pin = sriOf(good);
      await readDebEntries(good, 'redo-fixture=1.0-1', join(dir, 'pin-good.tar'), { integrity: pin, onMismatch: mismatch });
      await expect(withoutTools(dir, () => readDebEntries(damaged, 'redo-fixture=1.0-1', join(dir, 'pin-damaged.tar'), { integrity: pin, onMismatch: mismatch })))
        .rejects.toThrow(`mismatch ${sriOf(damaged)}`);
      await expect(withoutTools(dir, () => readDebEntries(damaged, 'redo-fixture=1.0-1', join(dir, 'pin-damaged.tar')))).rejects.toMatchObject({ code: 'ERR_DEB_FORMAT' });
    });

    it('a decompressor that cannot start fails the reader that comes later, not the process', async () => {
      const deb = makeFixtureDeb(dir, 'xz');
      const uncaught: unknown[] = [];
      const onUncaught = (error: unknown): void => void uncaught.push(error);
      // Vitest's own handler would report it too: keep only ours while the stream waits.
      const saved = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.on('uncaughtException', onUncaught);
      try {
        const data = await withoutTools(dir, () => openDebData(deb, 'redo-fixture=1.0-1'));
        await new Promise((resolve) => setTimeout(resolve, 300)); // xz has failed to start by now
        await expect(pipeline(data, createWriteStream(join(dir, 'late.tar')))).rejects.toMatchObject({ code: 'ERR_DEB_FORMAT' });
      } finally {
        process.off('uncaughtException', onUncaught);
        for (const listener of saved) process.on('uncaughtException', listener);
      }
      expect(uncaught).toEqual([]);
    });

    it('does not reuse it for other bytes of the same size at the same path', async () => {
      const path = join(dir, 'same-path.deb');
      copyFileSync(makeFixtureDeb(dir, 'none'), path);
      await readDebEntries(path, 'redo-fixture=1.0-1', join(dir, 'same-path-1.tar'));
      const bytes = readFileSync(path);
      const at = bytes.indexOf('echo tool\n');
      expect(at).toBeGreaterThan(0);
      bytes.write('echo TOOL\n', at, 'latin1');
      writeFileSync(path, bytes);
      await readDebEntries(path, 'redo-fixture=1.0-1', join(dir, 'same-path-2.tar'));
      expect(readFileSync(join(dir, 'same-path-2.tar')).includes('echo TOOL\n')).toBe(true);
      expect(readFileSync(join(dir, 'same-path-2.tar')).includes('echo tool\n')).toBe(false);
    });
    it('keeps packages read at the same time apart', async () => {
      const base = readFileSync(makeFixtureDeb(dir, 'none'));
      const at = base.indexOf('echo tool\n');
      const words = ['TOOL', 'Tool', 'tOol', 'toOl', 'tooL', 'TOol'];
      const debs = words.map((word, index) => {
        const bytes = Buffer.from(base);
        bytes.write(`echo ${word}\n`, at, 'latin1');
        writeFileSync(join(dir, `together-${index}.deb`), bytes);
        writeFileSync(join(dir, `together-${index}b.deb`), bytes);
        return join(dir, `together-${index}`);
      });
      await Promise.all(debs.map((deb, index) => readDebEntries(`${deb}.deb`, `p${index}=1`, `${deb}.tar`)));
      await Promise.all(debs.map((deb, index) => readDebEntries(`${deb}b.deb`, `p${index}=1`, `${deb}b.tar`)));
      expect(debs.map((deb) => readFileSync(`${deb}b.tar`).includes(`echo ${words[debs.indexOf(deb)]}\n`))).toEqual(words.map(() => true));
    });
    it('removes the folder of kept archives a killed process left', async () => {
      const dead = spawnSync('true').pid;
      const leftover = join(tmpdir(), `redo-ts-deb-data-${dead}-test`);
      mkdirSync(join(leftover), { recursive: true });
      writeFileSync(join(leftover, '0.tar'), 'left behind');
      vi.resetModules();
      const fresh = await import('../../../lib/sources/deb.js');
      await fresh.readDebEntries(makeFixtureDeb(dir, 'gzip'), 'redo-fixture=1.0-1', join(dir, 'fresh.tar'));
      expect(existsSync(leftover)).toBe(false);
    });
  });
});
