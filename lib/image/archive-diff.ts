/** Byte comparison of two build outputs that names the first differing archive member and field. */

import { closeSync, createReadStream, fstatSync, lstatSync, mkdtempSync, openSync, readSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { indexTar, type IndexedMember } from './tar.js';
import { BLOCK_BYTES, decodeHeader, pathText } from './tar-header.js';

/**
 * Where two outputs first differ. `member` is the chain from the outer file inward
 * (a folder entry, an archive member, `(gunzip)` for a decompressed stream), e.g.
 * `["c68b…tar", "bin/busybox"]`; empty when the difference is in the top file
 * itself. `field` is a tar header field (`name`, `mode`, `uid`, `gid`, `size`,
 * `mtime`, `typeflag`, `linkname`, `uname`, `gname`, ...), `content`, `pax records`,
 * `gzip header`, `missing` (present on one side only) or `length`. `offsetBytes` is
 * the offset inside the member's content (or the file) for content differences.
 */
export interface ArchiveDifference {
  member: string[];
  field: string;
  offsetBytes?: number;
  a: string;
  b: string;
}

/** One line for people: `bin/busybox: mode: 0755 vs 0775` style. */
export function describeDifference(difference: ArchiveDifference): string {
  const where = difference.member.length === 0 ? '(top level)' : difference.member.join(' → ');
  const at = difference.offsetBytes === undefined ? '' : ` at byte ${difference.offsetBytes}`;
  return `${where}: ${difference.field}${at}: ${difference.a} vs ${difference.b}`;
}

const CHUNK_BYTES = 1 << 20;

/** First offset where two files differ, or null when identical (the shorter file's end counts). */
function firstDifferentByte(a: string, b: string): { offset: number; sizeA: number; sizeB: number } | null {
  const fdA = openSync(a, 'r');
  const fdB = openSync(b, 'r');
  try {
    const sizeA = fstatSync(fdA).size;
    const sizeB = fstatSync(fdB).size;
    const bufA = Buffer.allocUnsafe(CHUNK_BYTES);
    const bufB = Buffer.allocUnsafe(CHUNK_BYTES);
    let position = 0;
    for (;;) {
      const nA = readSync(fdA, bufA, 0, CHUNK_BYTES, position);
      const nB = readSync(fdB, bufB, 0, CHUNK_BYTES, position);
      const n = Math.min(nA, nB);
      if (bufA.compare(bufB, 0, n, 0, n) !== 0) {
        let i = 0;
        while (bufA[i] === bufB[i]) i++;
        return { offset: position + i, sizeA, sizeB };
      }
      if (nA !== nB) return { offset: position + n, sizeA, sizeB };
      if (nA === 0) return null;
      position += n;
    }
  } finally {
    closeSync(fdA);
    closeSync(fdB);
  }
}

function readHead(path: string, bytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(bytes);
    const n = readSync(fd, head, 0, bytes, 0);
    return head.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function isGzip(path: string): boolean {
  const head = readHead(path, 2);
  return head.length === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

function isTar(path: string): boolean {
  const head = readHead(path, BLOCK_BYTES);
  if (head.length < BLOCK_BYTES || head.toString('latin1', 257, 262) !== 'ustar') return false;
  try {
    decodeHeader(head, path);
    return true;
  } catch {
    return false;
  }
}

async function gunzipTo(input: string, output: string): Promise<void> {
  const fd = openSync(output, 'w');
  try {
    for await (const chunk of createReadStream(input).pipe(createGunzip())) {
      const bytes = chunk as Buffer;
      let at = 0;
      while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    }
  } finally {
    closeSync(fd);
  }
}

function copyRange(input: string, offset: number, size: number, output: string): void {
  const fdIn = openSync(input, 'r');
  const fdOut = openSync(output, 'w');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let done = 0;
    while (done < size) {
      const n = readSync(fdIn, chunk, 0, Math.min(CHUNK_BYTES, size - done), offset + done);
      if (n === 0) break;
      writeSync(fdOut, chunk, 0, n);
      done += n;
    }
  } finally {
    closeSync(fdIn);
    closeSync(fdOut);
  }
}

/** Header byte ranges (POSIX ustar) → field names, for naming a differing header byte. */
const headerFields: Array<[number, string]> = [
  [100, 'name'],
  [108, 'mode'],
  [116, 'uid'],
  [124, 'gid'],
  [136, 'size'],
  [148, 'mtime'],
  [156, 'checksum'],
  [157, 'typeflag'],
  [257, 'linkname'],
  [263, 'magic'],
  [265, 'version'],
  [297, 'uname'],
  [329, 'gname'],
  [337, 'devmajor'],
  [345, 'devminor'],
  [500, 'prefix'],
  [512, 'padding'],
];

function fieldAt(offsetInBlock: number): string {
  for (const [end, name] of headerFields) if (offsetInBlock < end) return name;
  return 'padding';
}

const numericFields = new Set(['mode', 'uid', 'gid', 'size', 'mtime', 'checksum', 'chksum', 'devmajor', 'devminor']);

/** The text of the header field at `offsetInBlock`; numbers without their NUL/space terminator. */
function fieldValue(block: Buffer, offsetInBlock: number): string {
  let start = 0;
  for (const [end, name] of headerFields) {
    if (offsetInBlock < end) {
      const text = block.toString('latin1', start, end).replace(/\0+$/, '');
      return JSON.stringify(numericFields.has(name) ? text.replace(/[ \0]+$/, '') : text);
    }
    start = end;
  }
  return '';
}

function memberContaining(members: IndexedMember[], offset: number): IndexedMember | undefined {
  let found: IndexedMember | undefined;
  for (const m of members) {
    if (m.headerOffsetBytes > offset) break;
    found = m;
  }
  return found;
}

/**
 * Compares two build outputs (files or folders such as an OCI layout) byte for
 * byte. Returns null when identical, else the first difference, descending into
 * folders (entries in name order), gzip streams and tar members (a layer inside a
 * docker archive, a file inside a layer) to name the innermost member and header
 * field or content offset. Uses a scratch folder under os.tmpdir(), removed after.
 */
export async function compareArchives(a: string, b: string): Promise<ArchiveDifference | null> {
  const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-diff-'));
  try {
    return await compareFiles(a, b, [], scratch, { next: 0 });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function compareFiles(
  a: string,
  b: string,
  chain: string[],
  scratch: string,
  counter: { next: number },
): Promise<ArchiveDifference | null> {
  const statA = lstatSync(a);
  const statB = lstatSync(b);
  if (statA.isDirectory() !== statB.isDirectory()) {
    return { member: chain, field: 'type', a: statA.isDirectory() ? 'folder' : 'file', b: statB.isDirectory() ? 'folder' : 'file' };
  }
  if (statA.isDirectory()) {
    for (const pair of ociLayoutPairs(a, b)) {
      const inner = await compareFiles(pair.a, pair.b, [...chain, pair.label], scratch, counter);
      if (inner !== null) return inner;
    }
    const namesA = readdirSync(a).sort();
    const namesB = readdirSync(b).sort();
    const all = [...new Set([...namesA, ...namesB])].sort();
    for (const name of all) {
      const inA = namesA.includes(name);
      const inB = namesB.includes(name);
      if (!inA || !inB) return { member: [...chain, name], field: 'missing', a: inA ? 'present' : 'absent', b: inB ? 'present' : 'absent' };
      const difference = await compareFiles(join(a, name), join(b, name), [...chain, name], scratch, counter);
      if (difference !== null) return difference;
    }
    return null;
  }
  const first = firstDifferentByte(a, b);
  if (first === null) return null;

  // Image formats name their members by digest, so a change renames them: pair the
  // members by role (layer N, config, manifest) and compare those first.
  if (isTar(a) && isTar(b)) {
    const pairs = dockerArchivePairs(a, b);
    if (pairs !== null) {
      for (const pair of pairs) {
        const innerA = join(scratch, `${counter.next++}`);
        const innerB = join(scratch, `${counter.next++}`);
        copyRange(a, pair.a.dataOffsetBytes, pair.a.header.sizeBytes, innerA);
        copyRange(b, pair.b.dataOffsetBytes, pair.b.header.sizeBytes, innerB);
        const inner = await compareFiles(innerA, innerB, [...chain, pair.label], scratch, counter);
        if (inner !== null) return inner;
      }
    }
  }

  if (isGzip(a) && isGzip(b)) {
    if (first.offset < 10) {
      return { member: chain, field: 'gzip header', offsetBytes: first.offset, a: hexByte(a, first.offset), b: hexByte(b, first.offset) };
    }
    const plainA = join(scratch, `${counter.next++}`);
    const plainB = join(scratch, `${counter.next++}`);
    await gunzipTo(a, plainA);
    await gunzipTo(b, plainB);
    const inner = await compareFiles(plainA, plainB, [...chain, '(gunzip)'], scratch, counter);
    if (inner !== null) return inner;
    return { member: chain, field: 'gzip stream (same uncompressed bytes)', offsetBytes: first.offset, a: hexByte(a, first.offset), b: hexByte(b, first.offset) };
  }

  if (isTar(a) && isTar(b)) {
    const membersA = indexTar(a);
    const membersB = indexTar(b);
    const memberA = memberContaining(membersA, first.offset);
    const memberB = memberContaining(membersB, first.offset);
    if (memberA === undefined || memberB === undefined) {
      return { member: chain, field: 'end of archive', offsetBytes: first.offset, a: `${first.sizeA} bytes`, b: `${first.sizeB} bytes` };
    }
    const name = pathText(memberA.header.path);
    const nameB = pathText(memberB.header.path);
    if (memberA.headerOffsetBytes !== memberB.headerOffsetBytes || name !== nameB) {
      return { member: [...chain, name], field: 'missing', a: `"${name}"`, b: `"${nameB}" at the same position` };
    }
    if (first.offset < memberA.dataOffsetBytes) {
      const ustarStart = memberA.dataOffsetBytes - BLOCK_BYTES;
      if (first.offset < ustarStart) {
        return { member: [...chain, name], field: 'pax records', offsetBytes: first.offset - memberA.headerOffsetBytes, a: hexByte(a, first.offset), b: hexByte(b, first.offset) };
      }
      const inBlock = first.offset - ustarStart;
      const blockA = readRange(a, ustarStart, BLOCK_BYTES);
      const blockB = readRange(b, ustarStart, BLOCK_BYTES);
      return { member: [...chain, name], field: fieldAt(inBlock), a: fieldValue(blockA, inBlock), b: fieldValue(blockB, inBlock) };
    }
    const offsetInContent = first.offset - memberA.dataOffsetBytes;
    if (offsetInContent >= memberA.header.sizeBytes || offsetInContent >= memberB.header.sizeBytes) {
      return { member: [...chain, name], field: 'padding', offsetBytes: offsetInContent, a: hexByte(a, first.offset), b: hexByte(b, first.offset) };
    }
    const innerA = join(scratch, `${counter.next++}`);
    const innerB = join(scratch, `${counter.next++}`);
    copyRange(a, memberA.dataOffsetBytes, memberA.header.sizeBytes, innerA);
    copyRange(b, memberB.dataOffsetBytes, memberB.header.sizeBytes, innerB);
    if ((isGzip(innerA) && isGzip(innerB)) || (isTar(innerA) && isTar(innerB))) {
      const inner = await compareFiles(innerA, innerB, [...chain, name], scratch, counter);
      if (inner !== null) return inner;
    }
    return { member: [...chain, name], field: 'content', offsetBytes: offsetInContent, a: hexByte(a, first.offset), b: hexByte(b, first.offset) };
  }

  if (first.offset >= Math.min(first.sizeA, first.sizeB)) {
    return { member: chain, field: 'length', offsetBytes: first.offset, a: `${first.sizeA} bytes`, b: `${first.sizeB} bytes` };
  }
  return { member: chain, field: 'content', offsetBytes: first.offset, a: hexByte(a, first.offset), b: hexByte(b, first.offset) };
}

function readRange(path: string, offset: number, size: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const out = Buffer.alloc(size);
    readSync(fd, out, 0, size, offset);
    return out;
  } finally {
    closeSync(fd);
  }
}

function hexByte(path: string, offset: number): string {
  const byte = readRange(path, offset, 1)[0];
  return byte === undefined ? 'end of file' : `0x${byte.toString(16).padStart(2, '0')}`;
}

function readMember(archive: string, member: IndexedMember): Buffer {
  return readRange(archive, member.dataOffsetBytes, member.header.sizeBytes);
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Members of two docker archives paired by role: layer N, config, manifest.json. Null if not docker archives. */
function dockerArchivePairs(a: string, b: string): Array<{ label: string; a: IndexedMember; b: IndexedMember }> | null {
  const membersA = indexTar(a);
  const membersB = indexTar(b);
  const find = (members: IndexedMember[], name: string) => members.find((m) => pathText(m.header.path) === name);
  const manifestA = find(membersA, 'manifest.json');
  const manifestB = find(membersB, 'manifest.json');
  if (manifestA === undefined || manifestB === undefined) return null;
  type Manifest = Array<{ Config?: string; Layers?: string[] }>;
  const docA = parseJson(readMember(a, manifestA)) as Manifest | undefined;
  const docB = parseJson(readMember(b, manifestB)) as Manifest | undefined;
  const imageA = Array.isArray(docA) ? docA[0] : undefined;
  const imageB = Array.isArray(docB) ? docB[0] : undefined;
  if (imageA === undefined || imageB === undefined) return null;
  const pairs: Array<{ label: string; a: IndexedMember; b: IndexedMember }> = [];
  const layersA = imageA.Layers ?? [];
  const layersB = imageB.Layers ?? [];
  for (let i = 0; i < Math.min(layersA.length, layersB.length); i++) {
    const x = find(membersA, layersA[i]!);
    const y = find(membersB, layersB[i]!);
    if (x !== undefined && y !== undefined) pairs.push({ label: `layer ${i + 1} (${layersA[i]} vs ${layersB[i]})`, a: x, b: y });
  }
  const configA = imageA.Config === undefined ? undefined : find(membersA, imageA.Config);
  const configB = imageB.Config === undefined ? undefined : find(membersB, imageB.Config);
  if (configA !== undefined && configB !== undefined) pairs.push({ label: `config (${imageA.Config} vs ${imageB.Config})`, a: configA, b: configB });
  pairs.push({ label: 'manifest.json', a: manifestA, b: manifestB });
  return pairs;
}

/** Blobs of two OCI layouts paired by role (layer N, config, manifest, index.json). Empty if not layouts. */
function ociLayoutPairs(a: string, b: string): Array<{ label: string; a: string; b: string }> {
  type Descriptor = { digest?: string };
  const blob = (root: string, d: Descriptor | undefined): string | undefined =>
    typeof d?.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(d.digest) ? join(root, 'blobs', 'sha256', d.digest.slice(7)) : undefined;
  const load = (path: string | undefined): Record<string, unknown> | undefined => {
    if (path === undefined) return undefined;
    try {
      return parseJson(readRange(path, 0, lstatSync(path).size)) as Record<string, unknown> | undefined;
    } catch {
      return undefined;
    }
  };
  const indexA = load(join(a, 'index.json'));
  const indexB = load(join(b, 'index.json'));
  if (indexA === undefined || indexB === undefined) return [];
  const manifestPathA = blob(a, (indexA['manifests'] as Descriptor[] | undefined)?.[0]);
  const manifestPathB = blob(b, (indexB['manifests'] as Descriptor[] | undefined)?.[0]);
  const manifestA = load(manifestPathA);
  const manifestB = load(manifestPathB);
  const pairs: Array<{ label: string; a: string; b: string }> = [];
  if (manifestA !== undefined && manifestB !== undefined) {
    const layersA = (manifestA['layers'] as Descriptor[] | undefined) ?? [];
    const layersB = (manifestB['layers'] as Descriptor[] | undefined) ?? [];
    for (let i = 0; i < Math.min(layersA.length, layersB.length); i++) {
      const x = blob(a, layersA[i]);
      const y = blob(b, layersB[i]);
      if (x !== undefined && y !== undefined && exists(x) && exists(y)) pairs.push({ label: `layer ${i + 1} (${layersA[i]!.digest} vs ${layersB[i]!.digest})`, a: x, b: y });
    }
    const configA = blob(a, manifestA['config'] as Descriptor | undefined);
    const configB = blob(b, manifestB['config'] as Descriptor | undefined);
    if (configA !== undefined && configB !== undefined && exists(configA) && exists(configB)) pairs.push({ label: 'config', a: configA, b: configB });
    pairs.push({ label: 'manifest', a: manifestPathA!, b: manifestPathB! });
  }
  pairs.push({ label: 'index.json', a: join(a, 'index.json'), b: join(b, 'index.json') });
  return pairs;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
