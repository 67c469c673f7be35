// Compressed layers: pinned header bytes and pinned compressed digests for every codec and level.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressFile, gzipFile, parseLayerCompression, type LayerCompression } from '../../../lib/image/compress.js';
import { digestFile } from '../../../lib/image/digest.js';
import { writeTar } from '../../../lib/image/tar.js';
import type { TarEntry } from '../../../lib/image/tar-header.js';

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

/**
 * A fixed layer tar of about 2.6 MiB (several 1 MiB compression slices): text, a
 * pseudo-random binary (an LCG, so the bytes are fixed) and a run of zeros, written
 * by writeTar at mtime 0.
 */
async function writeFixedLayer(path: string): Promise<void> {
  const random = Buffer.alloc(700_000);
  let state = 12345;
  for (let i = 0; i < random.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    random[i] = state >>> 24;
  }
  const file = (name: string, bytes: Buffer, mode = 0o644): TarEntry => ({ path: Buffer.from(name), type: 'file', mode, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'buffer', bytes } });
  await writeTar([
    file('usr/share/doc/sample.txt', sampleBytes()),
    file('usr/bin/random', random, 0o755),
    file('var/lib/zeros', Buffer.alloc(300_000)),
    { path: Buffer.from('usr/bin/link'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from('random') },
  ], path, { mtimeSeconds: 0 });
}

const golden = JSON.parse(readFileSync(new URL('../../golden/compress.json', import.meta.url), 'utf8')) as Record<string, string>;

describe('compressFile: golden digests of a fixed layer for each codec and level', () => {
  beforeAll(async () => {
    await writeFixedLayer(join(dir, 'layer.tar'));
  });

  it('the fixed layer itself has its pinned diffID', () => {
    expect(digestFile(join(dir, 'layer.tar')).digest).toBe(golden['layer']);
  });

  // A change of any digest here changes every compressed layer's digest: the codecs are
  // pinned exactly in package.json (pako, @hpcc-js/wasm-zstd) so no machine or Node
  // version can change them.
  it.each(['gzip:1', 'gzip:6', 'gzip:9', 'zstd:1', 'zstd:3', 'zstd:9'])('%s gives its pinned digest, and the system tool restores the layer', async (text) => {
    const compression = parseLayerCompression(text) as LayerCompression;
    const out = join(dir, `layer.${text.replace(':', '-')}`);
    const result = await compressFile(join(dir, 'layer.tar'), out, compression);
    expect(result).toEqual(digestFile(out));
    expect(result.digest).toBe(golden[text]);
    const tool = compression.codec === 'gzip' ? ['gzip', '-dc', out] : ['zstd', '-dcq', out];
    const restored = spawnSync(tool[0]!, tool.slice(1), { maxBuffer: 64 << 20 }).stdout;
    expect(restored.equals(readFileSync(join(dir, 'layer.tar')))).toBe(true);
  }, 60_000);

  it('gzip keeps the pinned header at every level', async () => {
    for (const level of [1, 9]) {
      await compressFile(join(dir, 'layer.tar'), join(dir, 'h.gz'), { codec: 'gzip', level });
      expect(readFileSync(join(dir, 'h.gz')).subarray(0, 10).toString('hex')).toBe('1f8b08000000000000ff');
    }
  });

  it('parseLayerCompression takes CODEC or CODEC:LEVEL and refuses the rest', () => {
    expect(parseLayerCompression('zstd')).toEqual({ codec: 'zstd', level: 3 });
    expect(parseLayerCompression('gzip')).toEqual({ codec: 'gzip', level: 6 });
    expect(parseLayerCompression('none')).toEqual({ codec: 'none', level: 0 });
    expect(parseLayerCompression('zstd:19')).toEqual({ codec: 'zstd', level: 19 });
    expect(parseLayerCompression('zstd:22')).toBe('"zstd:22": the zstd level must be from 1 to 19');
    expect(parseLayerCompression('gzip:0')).toBe('"gzip:0": the gzip level must be from 1 to 9');
    expect(parseLayerCompression('none:1')).toBe('"none:1": none takes no level');
    expect(parseLayerCompression('brotli')).toBe('"brotli" is not none, gzip, zstd, gzip:LEVEL or zstd:LEVEL');
  });
});
