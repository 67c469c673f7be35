/** A byte sink whose sha256 and file writes run on a worker thread, fed through a ring of shared 1 MiB slots, so a layer's reading and its hashing overlap as `tar | openssl dgst` do. */

import { Worker } from 'node:worker_threads';
import { toSha256Digest, type Sha256Digest } from './digest.js';

/** Bytes per slot of the ring: what the worker hashes and writes in one call. */
const SLOT_BYTES = 1 << 20;
/** Slots in the ring: how far the reading may run ahead of the hashing (8 MiB). */
const SLOT_COUNT = 8;
/** A slot published with this length ends the stream: the worker finishes the digest. */
const END_OF_STREAM = -1;
/**
 * A slot published with a length of SCRIPT - n holds a script of n bytes for the worker
 * to run (see writeFile): records, each an inline piece (byte 0, a u32 length, the
 * bytes) or a file to read there (byte 1, its size as a double, a u32 path length, the
 * path), whose bytes are taken in record order.
 */
const SCRIPT = -2;
/** Inline pieces up to this size go into an open script; a larger write closes it. */
const INLINE_RECORD_MAX_BYTES = 4096;
/** The longest path writeFile takes (Linux's PATH_MAX). */
export const FILE_RECORD_MAX_PATH_BYTES = 4096;
/** Room kept free at a script's end for one more record. */
const SCRIPT_RESERVE_BYTES = 13 + FILE_RECORD_MAX_PATH_BYTES + 5 + INLINE_RECORD_MAX_BYTES;
/** The largest file writeFile takes: what the worker reads in one call. */
export const FILE_RECORD_MAX_BYTES = 64 << 10;
/** How long the writer waits for the worker without progress before giving up. */
const STALL_MS = 120_000;

// Indexes into the control array shared with the worker.
const PUBLISHED = 0;
const CONSUMED = 1;
const FAILED = 2;
/** The output's file descriptor (-1: hash only), set by attach() before the first slot. */
const OUTPUT_FD = 3;
/** 1 when the output is a regular file (positioned writes, holes), set with OUTPUT_FD. */
const IS_REGULAR_FILE = 4;
const LENGTHS = 5;
const CONTROL_LENGTH = LENGTHS + SLOT_COUNT;
/** Shared bytes after the control words: the digest (32 bytes), then a failure message. */
const DIGEST_BYTES = 32;
const MESSAGE_BYTES = 1024;

/**
 * The worker: hashes each published slot in order, writes it to the output (the control
 * words OUTPUT_FD and IS_REGULAR_FILE, read at the first slot: positioned for a
 * regular file, skipping a whole slot of zeros to leave a hole; in order otherwise), and
 * marks it consumed. A script slot's records are gathered in a stage (a file record's
 * file read there in one read of its size plus a probe byte, as the main thread reads
 * a file: one that grew or shrank is a failure) and hashed and written a slot's worth
 * at a time. A failure is recorded (message, FAILED: 1 for a write, 2 for a file
 * record, whose message starts with its slot's index and its ordinal among the slot's
 * files) and the rest is only consumed, so the writer never waits forever; the writer
 * throws it.
 */
const workerSource = `
const { workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { writeSync, openSync, readSync, closeSync } = require('node:fs');
const { data, control, result } = workerData;
const ints = new Int32Array(control);
let fd = null;
let isRegularFile = false;
const bytes = Buffer.from(data);
const out = Buffer.from(result);
const zeros = Buffer.alloc(${SLOT_BYTES});
// A script's bytes are gathered here and hashed and written ${SLOT_BYTES} at a time.
const stage = Buffer.allocUnsafe(${SLOT_BYTES} + ${FILE_RECORD_MAX_BYTES} + 1);
let staged = 0;
const hash = createHash('sha256');
let consumed = 0;
let position = 0;
let failed = false;
const errorText = (error) => String(error && error.code ? error.code : error);
function fail(kind, text) {
  failed = true;
  out.write(text.slice(0, ${MESSAGE_BYTES - 4}), ${DIGEST_BYTES});
  Atomics.store(ints, ${FAILED}, kind);
}
// Hashes \`chunk\` and writes it at its place (a whole slot of zeros in a regular file is left as a hole).
function emit(chunk) {
  if (failed) return;
  try {
    hash.update(chunk);
    if (fd !== null && !(isRegularFile && chunk.length === ${SLOT_BYTES} && chunk.equals(zeros))) {
      let at = 0;
      while (at < chunk.length) at += writeSync(fd, chunk, at, chunk.length - at, isRegularFile ? position + at : null);
    }
  } catch (error) {
    fail(1, String(error && error.code ? error.code + ': ' + error.message : error));
  }
  position += chunk.length;
}
function flush() {
  if (staged > 0) emit(stage.subarray(0, staged));
  staged = 0;
}
// Reads the file record's file (size + 1 bytes asked: a file that grew shows) into the stage; false after recording why not.
function readRecord(size, path, ordinal) {
  if (staged + size + 1 > stage.length) flush();
  let file;
  try {
    file = openSync(path, 'r');
  } catch (error) {
    fail(2, consumed + ' ' + ordinal + ' open: ' + errorText(error));
    return false;
  }
  try {
    let got = 0;
    while (got < size + 1) {
      let n;
      try {
        n = readSync(file, stage, staged + got, size + 1 - got, got);
      } catch (error) {
        fail(2, consumed + ' ' + ordinal + ' read: ' + errorText(error));
        return false;
      }
      if (n === 0) break;
      got += n;
      if (got >= size) break;
    }
    if (got !== size) {
      fail(2, consumed + ' ' + ordinal + ' size: ' + (got > size ? 'more' : String(got)));
      return false;
    }
    staged += size;
    return true;
  } finally {
    closeSync(file);
  }
}
// Runs the script of \`length\` bytes at \`base\`: inline records (0, u32 length, bytes) and file records (1, f64 size, u32 path length, path).
function runScript(base, length) {
  let at = base;
  let ordinal = 0;
  while (at < base + length && !failed) {
    if (bytes[at] === 0) {
      const n = bytes.readUInt32LE(at + 1);
      if (staged + n > stage.length) flush();
      bytes.copy(stage, staged, at + 5, at + 5 + n);
      staged += n;
      at += 5 + n;
    } else {
      const size = bytes.readDoubleLE(at + 1);
      const pathLength = bytes.readUInt32LE(at + 9);
      const path = Buffer.from(bytes.subarray(at + 13, at + 13 + pathLength));
      if (!readRecord(size, path, ordinal++)) break;
      at += 13 + pathLength;
    }
    if (staged >= ${SLOT_BYTES}) flush();
  }
  flush();
}
for (;;) {
  while (Atomics.load(ints, ${PUBLISHED}) === consumed) Atomics.wait(ints, ${PUBLISHED}, consumed);
  if (consumed === 0) {
    const given = Atomics.load(ints, ${OUTPUT_FD});
    fd = given === -1 ? null : given;
    isRegularFile = Atomics.load(ints, ${IS_REGULAR_FILE}) === 1;
  }
  const slot = consumed % ${SLOT_COUNT};
  const length = Atomics.load(ints, ${LENGTHS} + slot);
  if (length === ${END_OF_STREAM}) {
    hash.digest().copy(out, 0);
    Atomics.store(ints, ${CONSUMED}, ++consumed);
    Atomics.notify(ints, ${CONSUMED});
    break;
  }
  if (failed) {
    // Only consumed, so the writer never waits forever.
  } else if (length <= ${SCRIPT}) runScript(slot * ${SLOT_BYTES}, ${SCRIPT} - length);
  else emit(bytes.subarray(slot * ${SLOT_BYTES}, slot * ${SLOT_BYTES} + length));
  Atomics.store(ints, ${CONSUMED}, ++consumed);
  Atomics.notify(ints, ${CONSUMED});
}
`;

/**
 * A file given to writeFile that the worker could not read as listed: `context` is what
 * the caller gave with it, `detail` what went wrong ("open: ENOENT", "read: EIO",
 * "size: more" for a file that grew, "size: N" for one that shrank to N bytes).
 */
export class FileRecordError extends Error {
  constructor(readonly context: unknown, readonly detail: string, readonly code: string | undefined) {
    super(detail);
  }
}

/** What an OffThreadSink wrote: the sha256 of every byte and how many there were. */
export interface SinkResult {
  digest: Sha256Digest;
  sizeBytes: number;
}

/**
 * Takes bytes in order, copies them into the shared ring and lets a worker thread hash
 * them and write them to the output given to `attach` (or only hash them when it is
 * given null). The worker starts when the sink is made, so its start-up (a V8 isolate)
 * overlaps whatever the caller does before its first byte. `write` returns
 * once the bytes are copied (it waits only when the ring is full); `finish` waits for
 * the worker and returns the digest; `abort` stops the worker after a failure. The bytes
 * written to `fd` are exactly those given, in order (a regular file gets positioned
 * writes from offset 0; the caller truncates it to its final length).
 */
export class OffThreadSink {
  private readonly data = new SharedArrayBuffer(SLOT_COUNT * SLOT_BYTES);
  private readonly bytes = Buffer.from(this.data);
  private readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_LENGTH * 4));
  private readonly result = new SharedArrayBuffer(DIGEST_BYTES + MESSAGE_BYTES);
  private readonly worker: Worker;
  private published = 0;
  private used = 0;
  private isFinished = false;
  /** Bytes taken so far. */
  sizeBytes = 0;

  private isAttached = false;
  /** The contexts given with a script's file records, by slot (a slot is reused only once its script was consumed). */
  private readonly contexts: unknown[][] = Array.from({ length: SLOT_COUNT }, () => []);
  /** The script being filled in the current slot (its bytes so far), or -1 when none is open. */
  private scriptBytes = -1;
  /** The content bytes the open script stands for. */
  private scriptContentBytes = 0;

  constructor() {
    this.worker = new Worker(workerSource, { eval: true, workerData: { data: this.data, control: this.control.buffer, result: this.result } });
    // The writer waits on shared memory, never on the worker's events; it must not keep
    // the process alive once it is done.
    this.worker.unref();
    this.worker.on('error', () => undefined);
  }

  /**
   * Names the output, once, before the first byte: `fd` (or null to only hash), a
   * regular file or not. The worker reads it with the first slot.
   */
  attach(fd: number | null, isRegularFile: boolean): void {
    if (this.isAttached || this.published > 0) throw new Error('OffThreadSink.attach: the output is given once, before any byte');
    Atomics.store(this.control, OUTPUT_FD, fd ?? -1);
    Atomics.store(this.control, IS_REGULAR_FILE, isRegularFile ? 1 : 0);
    this.isAttached = true;
  }

  /** Copies `chunk` into the ring (the caller may reuse it once this returns). */
  write(chunk: Buffer): void {
    if (this.scriptBytes !== -1) {
      if (chunk.length <= INLINE_RECORD_MAX_BYTES) {
        this.addInline(chunk.length, (into, at) => void chunk.copy(into, at));
        return;
      }
      this.closeScript();
    }
    let at = 0;
    while (at < chunk.length) {
      // A slot is filled again only once the worker consumed what it held.
      if (this.used === 0) this.waitFor(this.published - SLOT_COUNT + 1);
      const n = Math.min(chunk.length - at, SLOT_BYTES - this.used);
      const slot = this.published % SLOT_COUNT;
      chunk.copy(this.bytes, slot * SLOT_BYTES + this.used, at, at + n);
      this.used += n;
      at += n;
      if (this.used === SLOT_BYTES) this.publish(SLOT_BYTES);
    }
    this.sizeBytes += chunk.length;
  }

  /**
   * Where the free part of the slot being filled begins in `ring` (at least 1 byte is
   * free: `freeBytes()`), for the caller to read bytes into directly; `commit(n)` then
   * takes the first n of them. An offset, not a view, so a file read costs no new
   * Buffer. Valid until the next call of any other method.
   */
  freeOffset(): number {
    if (this.scriptBytes !== -1) this.closeScript();
    if (this.used === 0) this.waitFor(this.published - SLOT_COUNT + 1);
    return (this.published % SLOT_COUNT) * SLOT_BYTES + this.used;
  }

  /** How many bytes are free at `freeOffset()` (call that first). */
  freeBytes(): number {
    return SLOT_BYTES - this.used;
  }

  /** The shared ring `freeOffset()` points into. */
  get ring(): Buffer {
    return this.bytes;
  }

  /**
   * Takes the content of the file at `path` (a path of up to FILE_RECORD_MAX_PATH_BYTES;
   * up to FILE_RECORD_MAX_BYTES, listed as `sizeBytes`): a record in a script the worker runs, so the worker reads the file
   * while this thread goes on with the next members; the small pieces written until the
   * script closes (a slot's worth of content, a larger piece, a read into the ring, or
   * finish) join it, so the order is kept. When the file cannot be read or its size is
   * not `sizeBytes`, a later call (or finish, or earlierFailure) throws FileRecordError
   * with `context`.
   */
  writeFile(path: Buffer, sizeBytes: number, context: unknown): void {
    if (path.length > FILE_RECORD_MAX_PATH_BYTES || sizeBytes > FILE_RECORD_MAX_BYTES) throw new Error('OffThreadSink.writeFile: the path or the file is too long for a record');
    if (this.scriptBytes === -1) {
      if (this.used > 0) this.publish(this.used);
      this.freeOffset();
      // A failure of the script this slot held is thrown before its contexts go.
      this.throwIfFailed();
      this.scriptBytes = 0;
      this.scriptContentBytes = 0;
      this.contexts[this.published % SLOT_COUNT] = [];
    }
    const at = (this.published % SLOT_COUNT) * SLOT_BYTES + this.scriptBytes;
    this.bytes[at] = 1;
    this.bytes.writeDoubleLE(sizeBytes, at + 1);
    this.bytes.writeUInt32LE(path.length, at + 9);
    path.copy(this.bytes, at + 13);
    this.contexts[this.published % SLOT_COUNT]!.push(context);
    this.scriptBytes += 13 + path.length;
    this.scriptContentBytes += sizeBytes;
    this.sizeBytes += sizeBytes;
    this.closeScriptWhenFull();
  }

  private addInline(n: number, put: (into: Buffer, at: number) => void): void {
    const at = (this.published % SLOT_COUNT) * SLOT_BYTES + this.scriptBytes;
    this.bytes[at] = 0;
    this.bytes.writeUInt32LE(n, at + 1);
    put(this.bytes, at + 5);
    this.scriptBytes += 5 + n;
    this.scriptContentBytes += n;
    this.sizeBytes += n;
    this.closeScriptWhenFull();
  }

  private closeScriptWhenFull(): void {
    if (this.scriptContentBytes >= SLOT_BYTES || this.scriptBytes > SLOT_BYTES - SCRIPT_RESERVE_BYTES) this.closeScript();
  }

  private closeScript(): void {
    const length = this.scriptBytes;
    this.scriptBytes = -1;
    this.publish(SCRIPT - length, true);
  }

  /**
   * After this thread failed: the worker's own failure on an earlier slot (a file record
   * or a write), which came first in the stream, or null. Waits for the worker to take
   * what was published.
   */
  earlierFailure(): Error | null {
    if (this.isFinished) return null;
    try {
      // The open script holds members before the failed one: the worker runs it first.
      if (this.scriptBytes !== -1) this.closeScript();
      this.waitFor(this.published);
      this.throwIfFailed();
    } catch (error) {
      return error as Error;
    }
    return null;
  }

  /** Takes `n` zero bytes (a member's padding). */
  writeZeros(n: number): void {
    if (this.scriptBytes !== -1 && n <= INLINE_RECORD_MAX_BYTES) {
      this.addInline(n, (into, at) => void into.fill(0, at, at + n));
      return;
    }
    let left = n;
    while (left > 0) {
      const at = this.freeOffset();
      const k = Math.min(left, SLOT_BYTES - this.used);
      this.bytes.fill(0, at, at + k);
      this.commit(k);
      left -= k;
    }
  }

  /** Takes the first `n` bytes of the last `space()`. */
  commit(n: number): void {
    this.used += n;
    this.sizeBytes += n;
    if (this.used === SLOT_BYTES) this.publish(SLOT_BYTES);
  }

  /** Hands what is staged to the worker, ends the stream and waits for the digest. Throws the worker's write error. */
  finish(): SinkResult {
    if (this.scriptBytes !== -1) this.closeScript();
    if (this.used > 0) this.publish(this.used);
    this.publish(END_OF_STREAM);
    this.waitFor(this.published);
    this.isFinished = true;
    this.throwIfFailed();
    const digest = Buffer.from(this.result, 0, DIGEST_BYTES).toString('hex');
    return { digest: toSha256Digest(`sha256:${digest}`), sizeBytes: this.sizeBytes };
  }

  /** Stops the worker when the stream was not finished (a failure on the reading side). */
  abort(): void {
    if (!this.isFinished) void this.worker.terminate();
  }

  private publish(length: number, isScript = false): void {
    if (!this.isAttached) throw new Error('OffThreadSink: attach() the output before writing');
    const slot = this.published % SLOT_COUNT;
    this.waitFor(this.published - SLOT_COUNT + 1);
    this.throwIfFailed();
    if (!isScript) this.contexts[slot] = [];
    Atomics.store(this.control, LENGTHS + slot, length);
    Atomics.store(this.control, PUBLISHED, ++this.published);
    Atomics.notify(this.control, PUBLISHED);
    this.used = 0;
  }

  /** Waits until the worker consumed at least `count` slots. */
  private waitFor(count: number): void {
    let consumed = Atomics.load(this.control, CONSUMED);
    while (consumed < count) {
      if (Atomics.wait(this.control, CONSUMED, consumed, STALL_MS) === 'timed-out' && Atomics.load(this.control, CONSUMED) === consumed) {
        throw new Error(`the hashing worker made no progress in ${STALL_MS / 1000} s (slot ${consumed} of ${this.published})`);
      }
      consumed = Atomics.load(this.control, CONSUMED);
    }
  }

  private throwIfFailed(): void {
    const failed = Atomics.load(this.control, FAILED);
    if (failed === 0) return;
    const text = Buffer.from(this.result, DIGEST_BYTES).toString('utf8').replace(/\0+$/, '');
    if (failed === 2) {
      const [index, ordinal, ...rest] = text.split(' ');
      const detail = rest.join(' ');
      throw new FileRecordError(this.contexts[Number(index) % SLOT_COUNT]![Number(ordinal)], detail, /^(?:open|read): (E[A-Z]+)$/.exec(detail)?.[1]);
    }
    const code = /^(E[A-Z]+): /.exec(text)?.[1];
    throw Object.assign(new Error(text), code === undefined ? {} : { code });
  }
}
