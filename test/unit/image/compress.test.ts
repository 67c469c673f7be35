// gzip layers: pinned header bytes and a pinned compressed digest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipFile } from '../../../lib/image/compress.js';
import { digestFile } from '../../../lib/image/digest.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-gzip-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 3 MiB of text with some repetition: compressible, several zlib chunks long. */
function sampleBytes(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < 90_000; i++) lines.push(`line ${i} ${(i * 7919) % 1000} of the sample\n`);
  return Buffer.from(lines.join(''));
}

describe('gzipFile', () => {
  it('writes the pinned 10-byte header: no name, mtime 0, XFL 0, OS 255', async () => {
    writeFileSync(join(dir, 'in'), sampleBytes());
    await gzipFile(join(dir, 'in'), join(dir, 'out.gz'));
    expect(readFileSync(join(dir, 'out.gz')).subarray(0, 10).toString('hex')).toBe('1f8b08000000000000ff');
  });

  it('gives the pinned compressed digest, and gunzip restores the input', async () => {
    writeFileSync(join(dir, 'in'), sampleBytes());
    const result = await gzipFile(join(dir, 'in'), join(dir, 'out.gz'));
    expect(result).toEqual(digestFile(join(dir, 'out.gz')));
    // Pinned for Node 20's bundled zlib at level 6; a change here changes every gzip layer digest.
    expect(result.digest).toBe(JSON.parse(readFileSync(new URL('../../golden/gzip.json', import.meta.url), 'utf8')).sampleDigest);
    const unzipped = spawnSync('gzip', ['-dc', join(dir, 'out.gz')], { maxBuffer: 64 << 20 }).stdout;
    expect(unzipped.equals(sampleBytes())).toBe(true);
  });
});
