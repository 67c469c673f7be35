// BlobStore: each blob once by digest, a layer file hashed only when it is not the one
// last stored or written at its path, facts computed once per digest (and not kept when
// their computation throws), and repositories remembered per registry host.
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStore } from '../../../lib/image/blob-store.js';
import { digestBytes } from '../../../lib/image/digest.js';
import { RedoError } from '../../../lib/errors.js';

describe('BlobStore', () => {
  let dir: string;
  let store: BlobStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'redo-ts-store-'));
    store = new BlobStore(join(dir, 'store'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stores bytes once under their digest and reads them back', () => {
    const bytes = Buffer.from('{"a":1}');
    const first = store.putBytes(bytes);
    const again = store.putBytes(bytes);
    expect(first).toEqual({ digest: digestBytes(bytes), sizeBytes: bytes.length });
    expect(again).toEqual(first);
    expect(readFileSync(store.blobPath(first.digest))).toEqual(bytes);
    expect(store.hasSize(first.digest, bytes.length)).toBe(true);
    expect(store.hasSize(first.digest, bytes.length + 1)).toBe(false);
  });

  it('stores a file as a copy (not a link) and takes the digest of a file it stored before from its stat identity', () => {
    const file = join(dir, 'layer.tar');
    writeFileSync(file, 'one');
    // Whole seconds, so the same mtime can be set again exactly.
    const mtime = new Date(1_700_000_000_000);
    utimesSync(file, mtime, mtime);
    const stored = store.putFile(file);
    expect(stored.digest).toBe(digestBytes('one'));
    expect(statSync(file).nlink).toBe(1);
    expect(statSync(store.blobPath(stored.digest)).ino).not.toBe(statSync(file).ino);
    // Same identity: the digest comes from the record, even though the bytes differ now
    // (a rewrite in place that keeps size and mtime is what a stat cache cannot see).
    writeFileSync(file, 'two');
    utimesSync(file, mtime, mtime);
    expect(store.putFile(file).digest).toBe(digestBytes('one'));
    // A new mtime is a new identity: hashed again.
    utimesSync(file, new Date(mtime.getTime() + 5000), new Date(mtime.getTime() + 5000));
    expect(store.putFile(file).digest).toBe(digestBytes('two'));
  });

  it('takes a digest a writer reported for a $3 file that becomes the target by rename', () => {
    const output = join(dir, 'out.tmp');
    const target = join(dir, 'target.tar');
    writeFileSync(output, 'written');
    // The digest a writer hashed while writing; a wrong one shows it is not recomputed.
    const reported = digestBytes('as the writer hashed it');
    store.rememberWritten(output, target, reported);
    // The engine renames $3 over the target: device, inode, size and mtime stay.
    writeFileSync(target, 'old');
    rmSync(target);
    renameSync(output, target);
    expect(store.putFile(target).digest).toBe(reported);
  });

  it('computes facts once per digest, and keeps nothing when computing them throws', () => {
    const digest = store.putBytes(Buffer.from('layer')).digest;
    let calls = 0;
    const failing = (): never => {
      calls += 1;
      throw new RedoError('ERR_TAR_MALFORMED', 'redo: "x": not a tar archive');
    };
    expect(() => store.facts(digest, 'layer', failing)).toThrow('not a tar archive');
    expect(() => store.facts(digest, 'layer', failing)).toThrow('not a tar archive');
    expect(calls).toBe(2);
    expect(store.facts(digest, 'layer', () => ({ members: 3 }))).toEqual({ members: 3 });
    expect(store.facts(digest, 'layer', () => ({ members: 99 }))).toEqual({ members: 3 });
    expect(store.peekFacts(digest, 'other')).toBeUndefined();
  });

  it('names a missing or damaged blob, the store and the sizes', () => {
    const blob = store.putBytes(Buffer.from('abc'));
    expect(store.blobs([blob], '"image.tar"')).toEqual([store.blobPath(blob.digest)]);
    const missing = { digest: digestBytes('nope'), sizeBytes: 4 };
    expect(() => store.blobs([missing], '"image.tar"')).toThrow(`redo: "image.tar": blob ${missing.digest} is missing from the image store`);
    writeFileSync(store.blobPath(blob.digest), 'abcd');
    expect(() => store.blobs([blob], '"image.tar"')).toThrow(`redo: "image.tar": blob ${blob.digest} is damaged in the image store`);
  });

  it('remembers which repositories of a registry hold a blob, per host, sorted and without duplicates', () => {
    store.rememberRepositories('127.0.0.1:5000', 'team/b', ['sha256:1', 'sha256:2']);
    store.rememberRepositories('127.0.0.1:5000', 'team/a', ['sha256:1']);
    store.rememberRepositories('127.0.0.1:5000', 'team/a', ['sha256:1']);
    const known = store.knownRepositories('127.0.0.1:5000');
    expect(known.get('sha256:1')).toEqual(['team/a', 'team/b']);
    expect(known.get('sha256:2')).toEqual(['team/b']);
    expect(store.knownRepositories('127.0.0.1:5001').size).toBe(0);
  });
});
