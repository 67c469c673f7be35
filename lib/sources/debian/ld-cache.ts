/** /etc/ld.so.cache written from an image's own ELF files, as glibc's ldconfig would, for any architecture and without running anything. */

import { readElfDynamicFrom, type ElfDynamic } from '../../image/elf-closure.js';

/** What the writer needs to know of the image: member paths without a leading slash. */
export interface LdCacheImage {
  /** The member at `path` (symlinks not followed), or undefined. */
  entryOf(path: string): { type: string; linkTarget?: string } | undefined;
  /** A regular file's bytes from `offset` (may return fewer at the end). */
  read(path: string, offset: number, length: number): Buffer;
  sizeOf(path: string): number;
  /** The names directly inside a folder (a real folder, not a symlink), sorted or not. */
  childrenOf(folder: string): string[];
}

/** One library of the cache: the soname the dynamic linker looks up, and the path it loads. */
export interface LdCacheEntry {
  soname: string;
  path: string;
  /** FLAG_ELF_LIBC6 and the architecture's ABI bits (0x0303 for x86-64, 0x0a03 for aarch64). */
  flags: number;
}

/** What writeLdCache made. */
export interface LdCache {
  bytes: Buffer;
  entries: LdCacheEntry[];
  /** The folders scanned, in order (after ld.so.conf and its includes). */
  folders: string[];
}

/** Debian's multiarch triplet of each dpkg architecture. */
const tripletOfArchitecture: Record<string, string> = {
  amd64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', i386: 'i386-linux-gnu', armhf: 'arm-linux-gnueabihf', armel: 'arm-linux-gnueabi',
  ppc64el: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu', riscv64: 'riscv64-linux-gnu', mips64el: 'mips64el-linux-gnuabi64', loong64: 'loongarch64-linux-gnu',
};

/**
 * glibc's cache flags of a library (sysdeps/generic/ldconfig.h): FLAG_ELF_LIBC6 (3) with
 * the ABI bits ld.so checks for its own architecture (_DL_CACHE_DEFAULT_ID).
 */
export function ldCacheFlagsOf(elf: Pick<ElfDynamic, 'machine' | 'is64' | 'elfFlags'>): number {
  const libc6 = 0x0003;
  switch (elf.machine) {
    case 62: return libc6 | (elf.is64 ? 0x0300 : 0x0800); // FLAG_X8664_LIB64, FLAG_X8664_LIBX32
    case 183: return libc6 | 0x0a00; // FLAG_AARCH64_LIB64
    case 40: return libc6 | ((elf.elfFlags & 0x400) !== 0 ? 0x0900 : (elf.elfFlags & 0x200) !== 0 ? 0x0b00 : 0); // ARM hard / soft float
    case 21: return libc6 | (elf.is64 ? 0x0500 : 0); // FLAG_POWERPC_LIB64
    case 22: return libc6 | (elf.is64 ? 0x0400 : 0); // FLAG_S390_LIB64
    case 43: return libc6 | (elf.is64 ? 0x0100 : 0); // FLAG_SPARC_LIB64
    case 243: return libc6 | ((elf.elfFlags & 0x6) === 0x4 ? 0x1000 : (elf.elfFlags & 0x6) === 0 ? 0x0f00 : 0); // RISC-V double / soft float ABI
    case 258: return libc6 | ((elf.elfFlags & 0x7) === 0x3 ? 0x1200 : (elf.elfFlags & 0x7) === 0x1 ? 0x1100 : 0); // LoongArch double / soft
    default: return libc6;
  }
}

/**
 * glibc's _dl_cache_libcmp: byte order, except that runs of digits compare as numbers
 * (`libfoo.so.10` after `libfoo.so.9`). The cache is sorted by it, highest first, and
 * ld.so finds a soname by binary search in that order.
 */
export function compareLibraryNames(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const isDigit = (c: number): boolean => c >= 48 && c <= 57;
  while (i < a.length) {
    const ca = a.charCodeAt(i);
    const cb = j < b.length ? b.charCodeAt(j) : 0;
    if (isDigit(ca)) {
      if (!isDigit(cb)) return 1;
      let va = 0;
      let vb = 0;
      while (i < a.length && isDigit(a.charCodeAt(i))) va = va * 10 + a.charCodeAt(i++) - 48;
      while (j < b.length && isDigit(b.charCodeAt(j))) vb = vb * 10 + b.charCodeAt(j++) - 48;
      if (va !== vb) return va - vb;
    } else if (isDigit(cb)) {
      return -1;
    } else if (ca !== cb) {
      return ca - cb;
    } else {
      i += 1;
      j += 1;
    }
  }
  return 0 - (j < b.length ? b.charCodeAt(j) : 0);
}

/** The folders ld.so.conf names (following `include GLOB` lines), in order, without duplicates. */
function confFolders(image: LdCacheImage, resolve: (path: string) => string | undefined, confPath: string, depth = 0): string[] {
  const real = resolve(confPath);
  if (real === undefined || depth > 8 || image.entryOf(real)?.type !== 'file') return [];
  const text = image.read(real, 0, image.sizeOf(real)).toString('utf8');
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '' || line.startsWith('hwcap ')) continue;
    if (line.startsWith('include ') || line.startsWith('include\t')) {
      for (const pattern of line.slice(8).trim().split(/\s+/)) {
        const absolute = pattern.startsWith('/') ? pattern : `${confPath.slice(0, confPath.lastIndexOf('/'))}/${pattern}`;
        const slash = absolute.lastIndexOf('/');
        const folder = absolute.slice(0, slash).replace(/^\/+/, '');
        const glob = new RegExp(`^${absolute.slice(slash + 1).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
        const realFolder = resolve(folder);
        if (realFolder === undefined || image.entryOf(realFolder)?.type !== 'directory') continue;
        // glob(3) sorts its matches.
        for (const name of image.childrenOf(realFolder).filter((n) => glob.test(n)).sort()) out.push(...confFolders(image, resolve, `${folder}/${name}`, depth + 1));
      }
      continue;
    }
    // Old syntax "DIR=TYPE" and comma/colon/space separated lists.
    for (const item of line.split(/[\s,:]+/)) if (item.startsWith('/')) out.push(item.replace(/=.*$/, '').replace(/\/+$/, '') || '/');
  }
  return out;
}

/**
 * The ld.so.cache of an image, as `ldconfig -X` (no links made) writes it for the
 * folders of the image's /etc/ld.so.conf (and its includes) followed by glibc's system
 * folders for `architecture` (/lib/TRIPLET, /usr/lib/TRIPLET, /lib, /usr/lib); a folder
 * reached twice (merged-/usr: /lib is /usr/lib) is scanned once, under its first name.
 * In each, every file or symlink to a file named `lib*.so*` or `ld-*.so*` that is an
 * ELF object with a dynamic section is a library; its cache path is FOLDER/SONAME (the
 * soname link, as ldconfig records it). The file is glibc's new format ("glibc-ld.so.cache1.1",
 * the only one glibc 2.32+ writes), entries sorted as ld.so searches them, strings
 * after them, and a generator extension naming redo-ts. Deterministic; pure but for `image`.
 */
export function writeLdCache(image: LdCacheImage, architecture: string): LdCache {
  const resolve = (path: string): string | undefined => resolveInImage(image, path);
  const triplet = tripletOfArchitecture[architecture];
  const system = [...(triplet !== undefined ? [`/lib/${triplet}`, `/usr/lib/${triplet}`] : []), '/lib', '/usr/lib'];
  const listed = [...confFolders(image, resolve, 'etc/ld.so.conf'), ...system];
  const seen = new Set<string>();
  const folders: Array<{ shown: string; real: string }> = [];
  for (const shown of listed) {
    const real = resolve(shown.replace(/^\/+/, ''));
    if (real === undefined || image.entryOf(real)?.type !== 'directory' || seen.has(real)) continue;
    seen.add(real);
    folders.push({ shown, real });
  }
  const entries: LdCacheEntry[] = [];
  let isBigEndian = false;
  for (const folder of folders) {
    const libraries = new Map<string, { name: string; isLink: boolean; flags: number }>();
    for (const name of image.childrenOf(folder.real).sort()) {
      if (!(name.startsWith('lib') || name.startsWith('ld-')) || !name.includes('.so')) continue;
      const member = folder.real === '' ? name : `${folder.real}/${name}`;
      const entry = image.entryOf(member);
      if (entry === undefined || (entry.type !== 'file' && entry.type !== 'symlink')) continue;
      const real = resolve(member);
      if (real === undefined || image.entryOf(real)?.type !== 'file') continue;
      const elf = readElfDynamicFrom((offset, length) => image.read(real, offset, length), image.sizeOf(real));
      if (elf === undefined) continue;
      isBigEndian = elf.isBigEndian;
      const soname = elf.soname ?? name;
      const isLink = entry.type === 'symlink';
      const known = libraries.get(soname);
      // ldconfig's choice between two files with one soname: a file over a link, else the higher name.
      if (known === undefined || (!isLink && known.isLink) || (isLink === known.isLink && compareLibraryNames(known.name, name) < 0)) {
        libraries.set(soname, { name, isLink, flags: ldCacheFlagsOf(elf) });
      }
    }
    for (const [soname, library] of libraries) entries.push({ soname, path: `${folder.shown === '/' ? '' : folder.shown}/${soname}`, flags: library.flags });
  }
  // ldconfig's compare(): soname descending (libcmp), then higher flags first; equal ones keep folder order.
  entries.sort((a, b) => compareLibraryNames(b.soname, a.soname) || b.flags - a.flags);
  return { bytes: formatLdCache(entries, isBigEndian), entries, folders: folders.map((f) => f.shown) };
}

/*
 * glibc's new cache format (elf/dl-cache.h, cache_file_new), all integers in the
 * libraries' byte order:
 *   0   "glibc-ld.so.cache" "1.1"        magic and version, 20 bytes, no NUL
 *   20  u32 nlibs, u32 len_strings
 *   28  u8 flags (2: little endian, 3: big endian), 3 bytes padding
 *   32  u32 extension_offset, 3 x u32 unused           header: 48 bytes
 *   48  nlibs x file_entry_new: i32 flags, u32 key, u32 value, u32 osversion (0), u64 hwcap (0)
 *       string table: NUL-terminated strings; key and value are offsets from byte 0
 *       (a soname is the tail of its path, so key points into value)
 *   ext (aligned to 4): u32 magic 0xeaa42174, u32 count (1),
 *       per section: u32 tag (0: generator), u32 flags, u32 offset, u32 size; then the bytes
 */
function formatLdCache(entries: readonly LdCacheEntry[], isBigEndian: boolean): Buffer {
  const headerBytes = 48;
  const entryBytes = 24;
  const stringsAt = headerBytes + entries.length * entryBytes;
  const paths: Buffer[] = [];
  const offsets: Array<{ key: number; value: number }> = [];
  let cursor = stringsAt;
  for (const entry of entries) {
    const bytes = Buffer.from(`${entry.path}\0`, 'latin1');
    offsets.push({ value: cursor, key: cursor + Buffer.byteLength(entry.path, 'latin1') - Buffer.byteLength(entry.soname, 'latin1') });
    paths.push(bytes);
    cursor += bytes.length;
  }
  const stringBytes = cursor - stringsAt;
  const extensionAt = (cursor + 3) & ~3;
  const generator = Buffer.from('redo-ts (writeLdCache)', 'latin1');
  const out = Buffer.alloc(extensionAt + 8 + 16 + generator.length);
  const u32 = (value: number, at: number): void => {
    if (isBigEndian) out.writeUInt32BE(value >>> 0, at);
    else out.writeUInt32LE(value >>> 0, at);
  };
  out.write('glibc-ld.so.cache1.1', 0, 'latin1');
  u32(entries.length, 20);
  u32(stringBytes, 24);
  out[28] = isBigEndian ? 3 : 2;
  u32(extensionAt, 32);
  for (const [index, entry] of entries.entries()) {
    const at = headerBytes + index * entryBytes;
    u32(entry.flags, at);
    u32(offsets[index]!.key, at + 4);
    u32(offsets[index]!.value, at + 8);
  }
  Buffer.concat(paths).copy(out, stringsAt);
  u32(0xeaa42174, extensionAt);
  u32(1, extensionAt + 4);
  u32(0, extensionAt + 8);
  u32(0, extensionAt + 12);
  u32(extensionAt + 24, extensionAt + 16);
  u32(generator.length, extensionAt + 20);
  generator.copy(out, extensionAt + 24);
  return out;
}

/** The member a path names once every symlink on the way is followed (at most 40), or undefined when it does not exist. */
function resolveInImage(image: LdCacheImage, path: string): string | undefined {
  let parts = path.split('/').filter((part) => part !== '' && part !== '.');
  let hops = 0;
  for (let at = 0; at < parts.length; at += 1) {
    if (parts[at] === '..') {
      parts.splice(Math.max(0, at - 1), at > 0 ? 2 : 1);
      at = Math.max(-1, at - 2);
      continue;
    }
    const prefix = parts.slice(0, at + 1).join('/');
    const entry = image.entryOf(prefix);
    if (entry === undefined) return undefined;
    if (entry.type !== 'symlink') continue;
    hops += 1;
    if (hops > 40) return undefined;
    const target = (entry.linkTarget ?? '').split('/').filter((part) => part !== '' && part !== '.');
    parts = [...((entry.linkTarget ?? '').startsWith('/') ? [] : parts.slice(0, at)), ...target, ...parts.slice(at + 1)];
    at = -1;
  }
  return parts.join('/');
}
