// compareArchives names the first differing member and field, through docker archives, OCI layouts and gzip.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareArchives, describeDifference } from '../../../lib/image/archive-diff.js';
import { writeDockerArchive } from '../../../lib/image/docker-archive.js';
import { writeOciLayout } from '../../../lib/image/oci.js';
import { writeTar } from '../../../lib/image/tar.js';
import type { TarEntry } from '../../../lib/image/tar-header.js';
import type { ImageConfig } from '../../../lib/image/image-config.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-archive-diff-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(path: string, text: string, fields: Partial<TarEntry> = {}): TarEntry {
  const bytes = Buffer.from(text);
  return { path: Buffer.from(path), type: 'file', mode: 0o644, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'buffer', bytes }, ...fields };
}
const config: ImageConfig = { architecture: 'amd64', os: 'linux', cmd: ['/bin/true'] };

async function layers(name: string, motd: string, mode = 0o644): Promise<string[]> {
  const a = join(dir, `${name}-1.tar`);
  const b = join(dir, `${name}-2.tar`);
  await writeTar([file('bin/true', '#!/bin/sh\n', { mode: 0o755 })], a, { mtimeSeconds: 0 });
  await writeTar([file('etc/motd', motd, { mode }), file('etc/issue', 'same')], b, { mtimeSeconds: 0 });
  return [a, b];
}

describe('compareArchives', () => {
  it('returns null for identical files', async () => {
    const [a] = await layers('same', 'hi');
    expect(await compareArchives(a!, a!)).toBeNull();
  });

  it.each([
    ['a header field', 'hello', 0o600, /^etc\/motd: mode: "000644" vs "000600"$/],
    ['the content offset', 'hellO', 0o644, /^etc\/motd: content at byte 4: 0x6f vs 0x4f$/],
  ])('names %s inside a layer of a docker archive', async (_what, motd, mode, wanted) => {
    const left = await layers('left', 'hello');
    const right = await layers(`right-${mode}-${motd}`, motd, mode);
    await writeDockerArchive({ layers: left, config, repoTags: ['x:1'] }, join(dir, 'left.tar'));
    await writeDockerArchive({ layers: right, config, repoTags: ['x:1'] }, join(dir, 'right.tar'));
    const difference = await compareArchives(join(dir, 'left.tar'), join(dir, 'right.tar'));
    expect(difference!.member[0]).toMatch(/^layer 2 \(/);
    expect(describeDifference({ ...difference!, member: difference!.member.slice(1) })).toMatch(wanted);
  });

  it('descends through an OCI layout and its gzip layers', async () => {
    await writeOciLayout({ layers: await layers('l', 'hello'), config, refName: 'latest', gzip: true }, join(dir, 'left.oci'));
    await writeOciLayout({ layers: await layers('r', 'jello'), config, refName: 'latest', gzip: true }, join(dir, 'right.oci'));
    const difference = await compareArchives(join(dir, 'left.oci'), join(dir, 'right.oci'));
    expect(difference!.member.slice(1)).toEqual(['(gunzip)', 'etc/motd']);
    expect(difference!.field).toBe('content');
    expect(difference!.offsetBytes).toBe(0);
  });

  it('names the config when only the image config differs', async () => {
    const same = await layers('c', 'hello');
    await writeDockerArchive({ layers: same, config, repoTags: ['x:1'] }, join(dir, 'c1.tar'));
    await writeDockerArchive({ layers: same, config: { ...config, cmd: ['/bin/false'] }, repoTags: ['x:1'] }, join(dir, 'c2.tar'));
    const difference = await compareArchives(join(dir, 'c1.tar'), join(dir, 'c2.tar'));
    expect(difference!.member[0]).toMatch(/^config \(/);
    expect(difference!.field).toBe('content');
  });

  it('reports plain files by offset and length', async () => {
    writeFileSync(join(dir, 'p1'), 'abc');
    writeFileSync(join(dir, 'p2'), 'abcd');
    expect(await compareArchives(join(dir, 'p1'), join(dir, 'p2'))).toEqual({ member: [], field: 'length', offsetBytes: 3, a: '3 bytes', b: '4 bytes' });
  });
});
