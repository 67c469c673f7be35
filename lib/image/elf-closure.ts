/** The ELF closure check: every NEEDED library of every ELF file in an image resolves inside the image (knows nothing of packages). */

import { closeSync, openSync, readSync } from 'node:fs';
import { RedoError } from '../errors.js';
import { entriesOfTar, pathText, readEntryBytes, type TarEntry } from './tar.js';

/** What the dynamic section of one ELF file asks for. */
export interface ElfDynamic {
  /** PT_INTERP: the dynamic loader path, if any. */
  interpreter?: string;
  /** DT_NEEDED sonames, in order. */
  needed: string[];
  /** DT_RUNPATH entries (`$ORIGIN` unexpanded). */
  runpath: string[];
  /** DT_RPATH entries, used only when there is no RUNPATH. */
  rpath: string[];
  /** e_machine: 62 x86-64, 183 aarch64, 3 i386, … */
  machine: number;
  /** DT_SONAME, when the file names one. */
  soname?: string;
  /** ELFCLASS64 (else 32-bit). */
  is64: boolean;
  /** e_flags (the ARM and RISC-V float ABI, say). */
  elfFlags: number;
  /** ELFDATA2MSB (else little endian). */
  isBigEndian: boolean;
}

/*
 * ELF layout read here (System V ABI, elf(5)):
 *   e_ident: "\x7fELF", class (1: 32-bit, 2: 64-bit), data (1: little, 2: big endian)
 *   e_type @16, e_machine @18; e_phoff @28/32, e_phentsize @42/54, e_phnum @44/56 (32/64-bit)
 *   program headers: PT_LOAD 1 (offset, vaddr), PT_DYNAMIC 2, PT_INTERP 3
 *   dynamic entries (tag, value): DT_NEEDED 1, DT_STRTAB 5, DT_RPATH 15, DT_RUNPATH 29
 * DT_STRTAB is a virtual address, turned into a file offset through the PT_LOAD holding it.
 */
/** Parses the dynamic section of ELF `bytes`; undefined for non-ELF or files without one (static, relocatable). */
export function readElfDynamic(bytes: Buffer): ElfDynamic | undefined {
  return readElfDynamicFrom((offset, length) => bytes.subarray(offset, offset + length), bytes.length);
}

/**
 * As readElfDynamic, reading through `read(offset, length)` (which may return fewer bytes
 * at the end of the file) so that only the headers, the dynamic segment and the strings
 * it names are read, never a whole large library.
 */
export function readElfDynamicFrom(read: (offset: number, length: number) => Buffer, sizeBytes: number): ElfDynamic | undefined {
  const head = read(0, 64);
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const is64 = head[4] === 2;
  const isLittle = head[5] === 1;
  const u16 = (b: Buffer, at: number): number => (isLittle ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const u32 = (b: Buffer, at: number): number => (isLittle ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const word = (b: Buffer, at: number): number => (is64 ? Number(isLittle ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)) : u32(b, at));
  const type = u16(head, 16);
  if (type !== 2 && type !== 3) return undefined;
  const phoff = word(head, is64 ? 32 : 28);
  const phentsize = u16(head, is64 ? 54 : 42);
  const phnum = u16(head, is64 ? 56 : 44);
  if (phnum === 0 || phoff + phnum * phentsize > sizeBytes) return undefined;
  const table = read(phoff, phnum * phentsize);
  if (table.length < phnum * phentsize) return undefined;
  const loads: Array<{ offset: number; vaddr: number; size: number }> = [];
  let dynamic: { offset: number; size: number } | undefined;
  let interpreter: string | undefined;
  for (let i = 0; i < phnum; i += 1) {
    const at = i * phentsize;
    const pType = u32(table, at);
    const offset = word(table, at + (is64 ? 8 : 4));
    const vaddr = word(table, at + (is64 ? 16 : 8));
    const fileSize = word(table, at + (is64 ? 32 : 16));
    if (pType === 1) loads.push({ offset, vaddr, size: fileSize });
    else if (pType === 2) dynamic = { offset, size: fileSize };
    else if (pType === 3) interpreter = read(offset, fileSize).toString('latin1').replace(/\0.*$/s, '');
  }
  if (dynamic === undefined || dynamic.offset + dynamic.size > sizeBytes) return undefined;
  const section = read(dynamic.offset, dynamic.size);
  const entrySize = is64 ? 16 : 8;
  const tags: Array<[number, number]> = [];
  for (let at = 0; at + entrySize <= section.length; at += entrySize) {
    const tag = word(section, at);
    if (tag === 0) break;
    tags.push([tag, word(section, at + entrySize / 2)]);
  }
  const strtabAddress = tags.find(([tag]) => tag === 5)?.[1];
  const load = strtabAddress === undefined ? undefined : loads.find((l) => strtabAddress >= l.vaddr && strtabAddress < l.vaddr + l.size);
  if (strtabAddress === undefined || load === undefined) return undefined;
  const strtab = strtabAddress - load.vaddr + load.offset;
  const stringAt = (offset: number): string => {
    for (let length = 256; ; length *= 4) {
      const chunk = read(strtab + offset, length);
      const end = chunk.indexOf(0);
      if (end >= 0 || chunk.length < length) return chunk.toString('utf8', 0, end < 0 ? chunk.length : end);
    }
  };
  const result: ElfDynamic = { needed: [], runpath: [], rpath: [], machine: u16(head, 18), is64, elfFlags: u32(head, is64 ? 48 : 36), isBigEndian: !isLittle };
  if (interpreter !== undefined) result.interpreter = interpreter;
  for (const [tag, value] of tags) {
    if (tag === 1) result.needed.push(stringAt(value));
    else if (tag === 29) result.runpath.push(...stringAt(value).split(':').filter((p) => p !== ''));
    else if (tag === 15) result.rpath.push(...stringAt(value).split(':').filter((p) => p !== ''));
    else if (tag === 14) result.soname = stringAt(value);
  }
  return result;
}

/** Debian's multiarch folder of each ELF machine. */
const tripletOf: Record<number, string> = { 62: 'x86_64-linux-gnu', 183: 'aarch64-linux-gnu', 3: 'i386-linux-gnu', 40: 'arm-linux-gnueabihf', 21: 'powerpc64le-linux-gnu', 22: 's390x-linux-gnu', 243: 'riscv64-linux-gnu' };

/** A layer of the image: a label for messages and its tar. */
export interface ClosureLayer {
  label: string;
  path: string;
}

/** One library an ELF file needs that the image does not have. */
export interface MissingLibrary {
  binary: string;
  soname: string;
  layer: string;
}

/**
 * What the ELF closure check needs to know about one layer, computed from its tar once
 * (and kept beside the layer's blob: lib/image/assemble.ts): every member's path (with
 * a leading `/`), type and link target; the dynamic section of each ELF file; the text
 * of the loader's configuration files (/etc/ld.so.conf and what lies under it).
 */
export interface LayerElfFacts {
  entries: Array<{ path: string; type: TarEntry['type']; linkTarget?: string }>;
  elf: Record<string, ElfDynamic>;
  texts: Record<string, string>;
}

/** The ELF facts of the layer tar at `path`: reads its headers, and only the parts of its ELF files the check needs. */
export function elfFactsOfTar(path: string): LayerElfFacts {
  const facts: LayerElfFacts = { entries: [], elf: {}, texts: {} };
  for (const entry of entriesOfTar(path)) {
    const name = `/${pathText(entry.path)}`;
    facts.entries.push({ path: name, type: entry.type, ...(entry.type === 'symlink' ? { linkTarget: pathText(entry.linkTarget!) } : {}) });
    if (entry.type !== 'file') continue;
    if (name.startsWith('/etc/ld.so.conf') && entry.sizeBytes <= 1 << 16) facts.texts[name] = (readEntryBytes(entry) ?? Buffer.alloc(0)).toString('utf8');
    if (entry.sizeBytes < 64) continue;
    const elf = readEntryElf(entry);
    if (elf !== undefined) facts.elf[name] = elf;
  }
  return facts;
}

/**
 * The merged view of `layers` (upper layers replace lower ones' paths) and the NEEDED
 * sonames (and PT_INTERP loaders) of its ELF files that resolve nowhere in it. A soname
 * is looked up as glibc's loader does: DT_RPATH (without RUNPATH), DT_RUNPATH (`$ORIGIN`
 * expanded), the folders of /etc/ld.so.conf and its includes, the multiarch folders
 * (/lib/TRIPLET, /usr/lib/TRIPLET), /lib64, /usr/lib64, /lib, /usr/lib, all resolved
 * through the image's own symlinks (merged /usr included). Reads the layer tars only.
 */
export function findMissingLibraries(layers: readonly ClosureLayer[]): MissingLibrary[] {
  return findMissingLibrariesInFacts(layers.map((layer) => ({ label: layer.label, facts: elfFactsOfTar(layer.path) })));
}

/** As findMissingLibraries, from each layer's facts (elfFactsOfTar) instead of its tar. */
export function findMissingLibrariesInFacts(layers: ReadonlyArray<{ label: string; facts: LayerElfFacts }>): MissingLibrary[] {
  const view = new Map<string, { type: TarEntry['type']; linkTarget?: string; layer: string; facts: LayerElfFacts }>();
  for (const layer of layers) {
    for (const entry of layer.facts.entries) view.set(entry.path, { ...entry, layer: layer.label, facts: layer.facts });
  }
  const resolvePath = (path: string): string | undefined => {
    let parts = path.split('/').filter((p) => p !== '' && p !== '.');
    let done: string[] = [];
    for (let hops = 0; parts.length > 0; ) {
      const part = parts.shift()!;
      if (part === '..') {
        done.pop();
        continue;
      }
      const candidate = `/${[...done, part].join('/')}`;
      const found = view.get(candidate);
      if (found === undefined) return undefined;
      if (found.type === 'symlink') {
        hops += 1;
        if (hops > 40) return undefined;
        const target = found.linkTarget!;
        parts = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...parts];
        if (target.startsWith('/')) done = [];
        continue;
      }
      done.push(part);
    }
    return `/${done.join('/')}`;
  };
  const isFile = (path: string): boolean => {
    const resolved = resolvePath(path);
    const found = resolved === undefined ? undefined : view.get(resolved);
    return found !== undefined && (found.type === 'file' || found.type === 'hardlink');
  };
  const readText = (path: string): string | undefined => {
    const resolved = resolvePath(path);
    const found = resolved === undefined ? undefined : view.get(resolved);
    return found?.type === 'file' ? found.facts.texts[resolved!] : undefined;
  };
  const configured = ldSoConfFolders(readText, [...view.keys()]);
  const missing: MissingLibrary[] = [];
  const paths = [...view.keys()].sort();
  for (const path of paths) {
    const { type, layer, facts } = view.get(path)!;
    if (type !== 'file') continue;
    const elf = facts.elf[path];
    if (elf === undefined) continue;
    if (elf.interpreter !== undefined && !isFile(elf.interpreter)) missing.push({ binary: path, soname: elf.interpreter, layer });
    const origin = path.slice(0, path.lastIndexOf('/')) || '/';
    const triplet = tripletOf[elf.machine];
    const expand = (dir: string): string => dir.replace(/\$(ORIGIN|\{ORIGIN\})/g, origin).replace(/\$(LIB|\{LIB\})/g, 'lib');
    const folders = [
      ...(elf.runpath.length === 0 ? elf.rpath : []).map(expand),
      ...elf.runpath.map(expand),
      ...configured,
      ...(triplet !== undefined ? [`/lib/${triplet}`, `/usr/lib/${triplet}`] : []),
      '/lib64', '/usr/lib64', '/lib', '/usr/lib',
    ];
    for (const soname of elf.needed) {
      const isFound = soname.includes('/') ? isFile(soname) : folders.some((dir) => isFile(`${dir}/${soname}`));
      if (!isFound) missing.push({ binary: path, soname, layer });
    }
  }
  return missing;
}

/** Folders listed in /etc/ld.so.conf and the files it includes (glob includes over the image's paths). */
function ldSoConfFolders(readText: (path: string) => string | undefined, paths: readonly string[]): string[] {
  const folders: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const raw of (readText(file) ?? '').split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (line === '') continue;
      const include = /^include\s+(.+)$/.exec(line);
      if (include === null) {
        folders.push(line);
        continue;
      }
      const pattern = include[1]!.startsWith('/') ? include[1]! : `/etc/${include[1]!}`;
      const matcher = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
      for (const path of paths.filter((p) => matcher.test(p)).sort()) visit(path);
    }
  };
  visit('/etc/ld.so.conf');
  return folders;
}

/** The dynamic section of a file entry, reading only the parts of it that are needed. */
function readEntryElf(entry: TarEntry): ElfDynamic | undefined {
  const content = entry.content;
  if (content === undefined) return undefined;
  if (content.kind === 'buffer') return readElfDynamic(content.bytes);
  if (content.kind !== 'path') return undefined;
  const fd = openSync(content.path, 'r');
  try {
    const base = content.offsetBytes ?? 0;
    return readElfDynamicFrom((offset, length) => {
      const size = Math.max(0, Math.min(length, entry.sizeBytes - offset));
      const bytes = Buffer.alloc(size);
      const got = size === 0 ? 0 : readSync(fd, bytes, 0, size, base + offset);
      return bytes.subarray(0, got);
    }, entry.sizeBytes);
  } finally {
    closeSync(fd);
  }
}


/**
 * Throws ERR_ELF_NEEDED when an ELF file of the image needs a library (or a loader) no
 * layer provides, naming each binary, soname and the layer holding the binary (up to 20).
 * `subject` names the image in the headline.
 */
export function checkElfClosure(layers: readonly ClosureLayer[], subject: string): void {
  reportMissingLibraries(findMissingLibraries(layers), subject);
}

/** As checkElfClosure, from each layer's facts (elfFactsOfTar). */
export function checkElfClosureInFacts(layers: ReadonlyArray<{ label: string; facts: LayerElfFacts }>, subject: string): void {
  reportMissingLibraries(findMissingLibrariesInFacts(layers), subject);
}

function reportMissingLibraries(missing: MissingLibrary[], subject: string): void {
  if (missing.length === 0) return;
  const shown = missing.slice(0, 20).map((m) => `${m.binary} needs ${m.soname} (binary in layer ${m.layer})`);
  if (missing.length > shown.length) shown.push(`… and ${missing.length - shown.length} more`);
  throw new RedoError('ERR_ELF_NEEDED', `redo: ${subject}: ${missing.length === 1 ? 'a library an ELF file needs is' : `${missing.length} libraries ELF files need are`} not in the image`, {
    details: shown,
    hint: 'add the package or spec that provides the library, or leave out the binary that needs it (exclude); `allowMissingLibraries: true` in the image description skips this check',
  });
}
