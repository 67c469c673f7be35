/** The content-addressed store of image blobs (.redo/store/): each blob once, by digest, with the facts about a layer beside it. */

import { closeSync, constants, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync, type BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { RedoError } from '../errors.js';
import { digestBytes, digestFile, digestHex, toSha256Digest, type Sha256Digest } from './digest.js';

/** Bumped when the shape of a facts file changes; older facts are recomputed, never misread. */
const factsVersion = 1;

/**
 * A blob store: a folder laid out as
 *
 *     blobs/sha256/<hex>          each blob once (layers, configs, manifests, indexes, SBOMs)
 *     facts/sha256/<hex>.json     facts about a layer blob: tar index, check result, ELF needs...
 *     files/<sha256 of path>.json the digest of a file last stored from that path, with its
 *                                 stat identity (device, inode, size, mtime), so a layer that
 *                                 did not change is not read again to learn its digest
 *     registries/<host>.json      which repositories of a registry hold which blobs (push)
 *     tmp/                        blobs being written; renamed into blobs/ when complete
 *
 * Every write goes to tmp/ and is renamed into place, so a reader never sees half a blob
 * and two builds storing the same blob at once both succeed. A blob stored again is
 * freshened (its mtime set to now), which `redo-ts store gc` (store-gc.ts) reads as "in
 * use". A layer is stored by a copy
 * made in the kernel (reflink or copy_file_range); blobs() checks a blob's size before a
 * view uses it.
 */
export class BlobStore {
  /** The store's folder (absolute). */
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  /** The store of the project at `root`: ROOT/.redo/store. */
  static ofProject(root: string): BlobStore {
    return new BlobStore(join(root, '.redo', 'store'));
  }

  /** Where the blob `digest` lives (it may not exist). */
  blobPath(digest: Sha256Digest): string {
    return join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  /** Whether the store holds the blob `digest`. */
  has(digest: Sha256Digest): boolean {
    return existsSync(this.blobPath(digest));
  }

  /** Whether the store holds the blob `digest` with `sizeBytes` bytes. */
  hasSize(digest: string, sizeBytes: number): boolean {
    try {
      return statSync(this.blobPath(toSha256Digest(digest))).size === sizeBytes;
    } catch {
      return false;
    }
  }

  /** Stores `bytes` (a config, manifest, index or SBOM) unless present; returns its digest and size. */
  putBytes(bytes: Buffer): { digest: Sha256Digest; sizeBytes: number } {
    const digest = digestBytes(bytes);
    if (!this.has(digest)) {
      this.publish(this.writeTemporary(bytes), digest);
    } else {
      this.freshen(digest);
    }
    return { digest, sizeBytes: bytes.length };
  }

  /**
   * Stores the file at `path` (a layer target) unless the store has it; returns its
   * digest and size. When the file is the one last stored (or written: rememberWritten)
   * at `path` (same device, inode, size and mtime), it is not hashed: a stored blob is
   * not read at all, a missing one is copied. Otherwise the file is hashed once and, if
   * new, copied into blobs/ by the kernel. `knownDigest` (from the writer that made the file) skips the hashing.
   */
  putFile(path: string, knownDigest?: Sha256Digest): { digest: Sha256Digest; sizeBytes: number } {
    const absolute = resolve(path);
    const stat = statSync(absolute, { bigint: true });
    const remembered = this.rememberedDigest(absolute, stat);
    const digest = remembered ?? knownDigest ?? digestFile(absolute).digest;
    if (!this.hasSize(digest, Number(stat.size))) {
      // A copy, not a hard link: a link changes the target's ctime, which the engine takes
      // for an edit and answers by hashing the whole file again. The copy is a reflink
      // where the file system has them, else copy_file_range (libuv): done in the kernel,
      // the bytes never pass through this process.
      const temporary = this.temporaryPath();
      copyFileSync(absolute, temporary, constants.COPYFILE_FICLONE);
      this.publish(temporary, digest);
    } else {
      this.freshen(digest);
    }
    if (remembered === undefined) this.remember(absolute, digest);
    return { digest, sizeBytes: Number(stat.size) };
  }

  /**
   * The sha256 digest of the file at `path`, without reading it when it is the file last
   * stored or written at that path (rememberWritten: same device, inode, size and mtime);
   * otherwise hashed once and remembered. Stores nothing in blobs/.
   */
  digestOf(path: string): Sha256Digest {
    const absolute = resolve(path);
    const remembered = this.rememberedDigest(absolute, statSync(absolute, { bigint: true }));
    if (remembered !== undefined) return remembered;
    const digest = digestFile(absolute).digest;
    this.remember(absolute, digest);
    return digest;
  }

  /**
   * The sha256 digest of the file at `path` when it is the file last stored or written at
   * that path (rememberWritten: same device, inode, size and mtime), without reading it;
   * undefined otherwise (or when it cannot be stat'ed).
   */
  rememberedDigestOf(path: string): Sha256Digest | undefined {
    const absolute = resolve(path);
    try {
      return this.rememberedDigest(absolute, statSync(absolute, { bigint: true }));
    } catch {
      return undefined;
    }
  }

  /**
   * Remembers the digest of a layer a rule has just written to `outputPath` (its `$3`)
   * and hashed as it wrote it (writeTar's diffID), for the target `targetPath` it becomes
   * when the engine renames it into place (a rename keeps device, inode, size and
   * mtime): putFile(targetPath) then neither reads nor hashes it again.
   */
  rememberWritten(outputPath: string, targetPath: string, digest: Sha256Digest): void {
    const stat = statSync(outputPath, { bigint: true });
    const absolute = resolve(targetPath);
    this.writeJson(this.fileRecord(absolute), { path: absolute, identity: identityOf(stat), digest });
  }

  /**
   * Checks that every blob of `digests` is in the store with the size recorded for it
   * and returns their paths; throws ERR_IMAGE_STORE naming the first missing or
   * damaged one, with `subject` (the view being written) in the headline.
   */
  blobs(digests: ReadonlyArray<{ digest: Sha256Digest; sizeBytes: number }>, subject: string): string[] {
    return digests.map(({ digest, sizeBytes }) => {
      const path = this.blobPath(digest);
      let found: number | undefined;
      try {
        found = statSync(path).size;
      } catch {
        found = undefined;
      }
      if (found !== sizeBytes) {
        throw new RedoError('ERR_IMAGE_STORE', `redo: ${subject}: blob ${digest} is ${found === undefined ? 'missing from' : 'damaged in'} the image store`, {
          details: [`store: ${this.dir}`, `wanted: ${sizeBytes} bytes`, `found: ${found === undefined ? 'no file' : `${found} bytes`}`],
          hint: 'rebuild the image with -f (redo-ts -f NAME.image.json), which stores its blobs again',
        });
      }
      return path;
    });
  }

  /**
   * The facts of kind `kind` about blob `digest`, computed by `compute` the first time and
   * kept in facts/ beside the blob (as JSON) for every later image and build. A compute
   * that throws (a check that fails) keeps nothing, so the check runs again next time.
   */
  facts<T>(digest: Sha256Digest, kind: string, compute: () => T): T {
    // Absent or unreadable (a crash cannot leave half a file: see writeJson): compute.
    const kept = this.peekFacts<T>(digest, kind);
    if (kept !== undefined) return kept;
    const value = compute();
    this.writeJson(this.factsFile(digest, kind), { version: factsVersion, value });
    return value;
  }

  /** The facts of kind `kind` about blob `digest` when they are kept; undefined otherwise. */
  peekFacts<T>(digest: Sha256Digest, kind: string): T | undefined {
    try {
      const kept = JSON.parse(readFileSync(this.factsFile(digest, kind), 'utf8')) as { version: number; value: T };
      return kept.version === factsVersion ? kept.value : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Stores the bytes `write` puts into the temporary file it is given, hashed as they
   * were written (`write` returns their digest and size: gzipFile does), without
   * reading them back. Returns the digest and size.
   */
  async putWritten(write: (temporaryPath: string) => Promise<{ digest: Sha256Digest; sizeBytes: number }>): Promise<{ digest: Sha256Digest; sizeBytes: number }> {
    const temporary = this.temporaryPath();
    let written;
    try {
      written = await write(temporary);
    } catch (cause) {
      rmSync(temporary, { force: true });
      throw cause;
    }
    if (this.has(written.digest)) {
      rmSync(temporary, { force: true });
      this.freshen(written.digest);
    } else {
      this.publish(temporary, written.digest);
    }
    return { digest: written.digest, sizeBytes: written.sizeBytes };
  }

  /**
   * Sets the mtime of blob `digest` to now: a build reusing a stored blob says so, and a
   * store collection (collectStoreGarbage) keeps a blob used within its grace period even
   * before the record that reaches it is written. A missing blob is ignored.
   */
  freshen(digest: Sha256Digest): void {
    const now = new Date();
    try {
      utimesSync(this.blobPath(digest), now, now);
    } catch {
      // Gone (collected, or never stored): the caller stores it again when it needs it.
    }
  }

  /** Repositories of registry `host` known to hold each blob (remembered by pushes). */
  knownRepositories(host: string): Map<string, string[]> {
    try {
      const kept = JSON.parse(readFileSync(this.registryFile(host), 'utf8')) as Record<string, string[]>;
      return new Map(Object.entries(kept));
    } catch {
      return new Map();
    }
  }

  /** Remembers that `repository` of registry `host` holds the blobs `digests`. */
  rememberRepositories(host: string, repository: string, digests: readonly string[]): void {
    const known = this.knownRepositories(host);
    for (const digest of digests) {
      const repositories = known.get(digest) ?? [];
      if (!repositories.includes(repository)) known.set(digest, [...repositories, repository].sort());
    }
    const sorted = [...known.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.writeJson(this.registryFile(host), Object.fromEntries(sorted));
  }

  private factsFile(digest: Sha256Digest, kind: string): string {
    return join(this.dir, 'facts', 'sha256', `${digestHex(digest)}.${kind}.json`);
  }

  private registryFile(host: string): string {
    return join(this.dir, 'registries', `${host.replace(/[^A-Za-z0-9.-]/g, '_')}.json`);
  }

  private rememberedDigest(absolute: string, stat: BigIntStats): Sha256Digest | undefined {
    try {
      const kept = JSON.parse(readFileSync(this.fileRecord(absolute), 'utf8')) as { path: string; identity: string; digest: string };
      if (kept.path !== absolute || kept.identity !== identityOf(stat)) return undefined;
      return toSha256Digest(kept.digest);
    } catch {
      return undefined;
    }
  }

  private remember(absolute: string, digest: Sha256Digest): void {
    const stat = statSync(absolute, { bigint: true });
    this.writeJson(this.fileRecord(absolute), { path: absolute, identity: identityOf(stat), digest });
  }

  private fileRecord(absolute: string): string {
    return join(this.dir, 'files', `${createHash('sha256').update(absolute).digest('hex')}.json`);
  }

  private temporaryPath(): string {
    const folder = join(this.dir, 'tmp');
    mkdirSync(folder, { recursive: true });
    return join(folder, `${process.pid}-${Math.random().toString(36).slice(2)}`);
  }

  private publish(temporary: string, digest: Sha256Digest): void {
    const path = this.blobPath(digest);
    try {
      mkdirSync(join(this.dir, 'blobs', 'sha256'), { recursive: true });
      renameSync(temporary, path);
    } catch (cause) {
      rmSync(temporary, { force: true });
      throw cause;
    }
  }

  /** Writes `bytes` whole to a new temporary file of the store (mode 0644) and returns its path. */
  private writeTemporary(bytes: Buffer): string {
    const temporary = this.temporaryPath();
    const fd = openSync(temporary, 'w', 0o644);
    try {
      let at = 0;
      while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    } finally {
      closeSync(fd);
    }
    return temporary;
  }

  private writeJson(file: string, value: unknown): void {
    const temporary = this.writeTemporary(Buffer.from(JSON.stringify(value)));
    mkdirSync(join(file, '..'), { recursive: true });
    renameSync(temporary, file);
  }
}

/** A file's identity for the path record: a rewrite or replacement changes at least one field. */
function identityOf(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}`;
}
