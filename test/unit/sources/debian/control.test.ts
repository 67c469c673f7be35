// The control archive of a .deb: decompressed once per process for the same bytes, never for other bytes.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listArMembers } from '../../../../lib/sources/deb.js';
import { readDebControl } from '../../../../lib/sources/debian/control.js';
import { makeFixtureDeb } from '../../../fixtures/402-deb-package/make-deb.js';
import { withoutTools } from '../../../helpers/without-tools.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-control-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});


describe('readDebControl', () => {
  it('reads a second copy of the same package without running xz again, and refuses other bytes without it', async () => {
    const deb = makeFixtureDeb(dir, 'xz');
    expect((await listArMembers(deb, 'fixture')).map((member) => member.name)).toContain('control.tar.xz');
    const copy = join(dir, 'copy.deb');
    copyFileSync(deb, copy);
    const first = await readDebControl(deb, 'redo-fixture=1.0-1');
    const again = await withoutTools(dir, () => readDebControl(copy, 'redo-fixture=1.0-1'));
    expect(again.get('control')!.toString('utf8')).toBe(first.get('control')!.toString('utf8'));
    expect([...again.keys()]).toEqual([...first.keys()]);

    // Other control bytes (one byte of the compressed member changed) are decompressed anew: without xz, that fails.
    const members = await listArMembers(deb, 'fixture');
    const control = members.find((member) => member.name === 'control.tar.xz')!;
    const bytes = readFileSync(deb);
    bytes[control.offsetBytes + Math.floor(control.sizeBytes / 2)] ^= 0xff;
    const other = join(dir, 'other.deb');
    writeFileSync(other, bytes);
    await expect(withoutTools(dir, () => readDebControl(other, 'redo-fixture=1.0-1'))).rejects.toMatchObject({ code: 'ERR_DEB_FORMAT' });
  });
});
