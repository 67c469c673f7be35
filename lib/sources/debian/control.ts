/** deb822 control paragraphs (Packages indexes, Release files, dpkg's status) and the control archive of a .deb. */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { RedoError } from '../../errors.js';
import { listArMembers } from '../deb.js';

/** One paragraph: field names as written (case kept), values with continuation lines joined by "\n". */
export type Paragraph = Map<string, string>;

/**
 * Splits deb822 text into paragraphs. Field names are matched case-sensitively as
 * Debian writes them (`Package`, `Pre-Depends`); a continuation line (leading space
 * or tab) is appended to the previous field with "\n" and keeps its leading space, so
 * a paragraph can be written back byte for byte. Lines starting with `#` are skipped.
 */
export function parseParagraphs(text: string): Paragraph[] {
  const paragraphs: Paragraph[] = [];
  let current: Paragraph = new Map();
  let lastField: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '' || line.trim() === '') {
      if (current.size > 0) paragraphs.push(current);
      current = new Map();
      lastField = undefined;
      continue;
    }
    if (line.startsWith('#')) continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && lastField !== undefined) {
      current.set(lastField, `${current.get(lastField)!}\n${line}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    lastField = line.slice(0, colon);
    current.set(lastField, line.slice(colon + 1).trim());
  }
  if (current.size > 0) paragraphs.push(current);
  return paragraphs;
}

/** Writes a paragraph in deb822 form (fields in map order), ending with "\n". */
export function formatParagraph(paragraph: Paragraph): string {
  let out = '';
  for (const [name, value] of paragraph) {
    out += value.startsWith('\n') ? `${name}:${value}\n` : `${name}: ${value}\n`;
  }
  return out;
}

/** The members of a package's control archive: `control`, `md5sums`, `conffiles`, maintainer scripts, … */
export type ControlMembers = Map<string, Buffer>;

/**
 * Reads the control archive (control.tar, .gz, .xz or .zst) of the .deb at `path` and
 * returns its regular files by name (`control`, `md5sums`, `postinst`, …). `label`
 * names the package in errors. Throws ERR_DEB_FORMAT when there is no control member,
 * it does not decompress, or it is not a tar.
 */
export async function readDebControl(path: string, label: string): Promise<ControlMembers> {
  const members = await listArMembers(path, label);
  const member = members.find((m) => /^control\.tar(\.(gz|xz|zst))?$/.test(m.name));
  if (member === undefined) throw controlError(label, `no control.tar member (members: ${members.map((m) => m.name).join(', ')})`);
  const handle = await open(path, 'r');
  const raw = Buffer.alloc(member.sizeBytes);
  try {
    await handle.read(raw, 0, member.sizeBytes, member.offsetBytes);
  } finally {
    await handle.close();
  }
  let tar: Buffer;
  try {
    tar = decompress(member.name, raw);
  } catch (cause) {
    throw controlError(label, `${member.name} does not decompress: ${(cause as Error).message}`);
  }
  return readSmallTar(tar, label);
}

/**
 * Control archives this process decompressed with xz or zstd, by the sha256 of their
 * compressed bytes: a build reading one package's control twice (a build environment's
 * lock and a spec's `deb:` source of the same pin) runs the tool once. At most
 * decompressedKeptBytes in all; the bytes decide, never the package's name or path.
 */
const decompressed = new Map<string, Buffer>();
const decompressedKeptBytes = 16 * 1024 * 1024;
let decompressedBytes = 0;

function decompress(name: string, raw: Buffer): Buffer {
  if (name.endsWith('.gz')) return gunzipSync(raw);
  if (name === 'control.tar') return raw;
  const key = `${name}\n${createHash('sha256').update(raw).digest('hex')}`;
  const kept = decompressed.get(key);
  if (kept !== undefined) return kept;
  const tar = decompressWithTool(name, raw);
  if (decompressedBytes + tar.length <= decompressedKeptBytes) {
    decompressed.set(key, tar);
    decompressedBytes += tar.length;
  }
  return tar;
}

function decompressWithTool(name: string, raw: Buffer): Buffer {
  const tool = name.endsWith('.xz') ? ['xz', '--decompress', '--stdout'] : ['zstd', '--decompress', '--stdout', '--quiet'];
  const result = spawnSync(tool[0]!, tool.slice(1), { input: raw, maxBuffer: 64 * 1024 * 1024 });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) throw new Error(`${tool[0]} exited with status ${result.status}: ${result.stderr.toString().trim()}`);
  return result.stdout;
}

/*
 * A control archive is a small ustar/GNU tar: 512-byte headers (name[100] at 0,
 * size in octal at 124, typeflag at 156, ustar prefix[155] at 345), content padded
 * to 512. GNU long names come as a typeflag 'L' member holding the next name.
 */
function readSmallTar(tar: Buffer, label: string): ControlMembers {
  const files: ControlMembers = new Map();
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start: number, length: number): string => {
      const bytes = header.subarray(start, start + length);
      const end = bytes.indexOf(0);
      return bytes.toString('utf8', 0, end < 0 ? length : end);
    };
    const sizeText = field(124, 12).trim();
    if (!/^[0-7]*$/.test(sizeText)) throw controlError(label, `the control archive has a damaged header at byte ${offset}`);
    const size = sizeText === '' ? 0 : parseInt(sizeText, 8);
    const type = field(156, 1);
    const prefix = field(257, 6).startsWith('ustar') ? field(345, 155) : '';
    const name = longName ?? (prefix !== '' ? `${prefix}/${field(0, 100)}` : field(0, 100));
    longName = undefined;
    const body = tar.subarray(offset + 512, offset + 512 + size);
    if (body.length < size) throw controlError(label, `the control archive is truncated in "${name}"`);
    if (type === 'L') longName = body.toString('utf8').replace(/\0+$/, '');
    else if (type === '0' || type === '') files.set(name.replace(/^\.\//, ''), Buffer.from(body));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  if (!files.has('control')) throw controlError(label, 'the control archive has no "control" file');
  return files;
}

function controlError(label: string, problem: string): RedoError {
  return new RedoError('ERR_DEB_FORMAT', `redo: "${label}": not a valid .deb package`, {
    details: [`problem: ${problem}`],
    hint: 'the file is not a Debian package, or it is damaged: fetch it again',
  });
}
