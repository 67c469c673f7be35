/** A byte sink whose sha256 and file writes run on a worker thread, fed through a ring of shared 1 MiB slots, so a layer's reading and its hashing overlap as `tar | openssl dgst` do. */

import { Worker } from 'node:worker_threads';
import { toSha256Digest, type Sha256Digest } from './digest.js';

/** Bytes per slot of the ring: what the worker hashes and writes in one call. */
const SLOT_BYTES = 1 << 20;
/** Slots in the ring: how far the reading may run ahead of the hashing (8 MiB). */
const SLOT_COUNT = 8;
/** A slot published with this length ends the stream: the worker finishes the digest. */
const END_OF_STREAM = -1;
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
 * marks it consumed. A failed write is recorded (message, FAILED) and the rest is only
 * consumed, so the writer never waits forever; the writer throws it.
 */
const workerSource = `
const { workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { writeSync } = require('node:fs');
const { data, control, result } = workerData;
const ints = new Int32Array(control);
let fd = null;
let isRegularFile = false;
const bytes = Buffer.from(data);
const out = Buffer.from(result);
const zeros = Buffer.alloc(${SLOT_BYTES});
const hash = createHash('sha256');
let consumed = 0;
let position = 0;
let failed = false;
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
  const chunk = bytes.subarray(slot * ${SLOT_BYTES}, slot * ${SLOT_BYTES} + length);
  if (!failed) {
    try {
      hash.update(chunk);
      if (fd !== null && !(isRegularFile && length === ${SLOT_BYTES} && chunk.equals(zeros))) {
        let at = 0;
        while (at < length) at += writeSync(fd, chunk, at, length - at, isRegularFile ? position + at : null);
      }
    } catch (error) {
      failed = true;
      out.write(String(error && error.code ? error.code + ': ' + error.message : error).slice(0, ${MESSAGE_BYTES - 4}), ${DIGEST_BYTES});
      Atomics.store(ints, ${FAILED}, 1);
    }
  }
  position += length;
  Atomics.store(ints, ${CONSUMED}, ++consumed);
  Atomics.notify(ints, ${CONSUMED});
}
`;

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

  /** Takes `n` zero bytes (a member's padding). */
  writeZeros(n: number): void {
    let left = n;
    while (left > 0) {
      const at = this.freeOffset();
      const k = Math.min(left, this.freeBytes());
      this.bytes.fill(0, at, at + k);
      this.commit(k);
      left -= k;
    }
  }

  /** Takes the first `n` bytes written at `freeOffset()`. */
  commit(n: number): void {
    this.used += n;
    this.sizeBytes += n;
    if (this.used === SLOT_BYTES) this.publish(SLOT_BYTES);
  }

  /** Hands what is staged to the worker, ends the stream and waits for the digest. Throws the worker's write error. */
  finish(): SinkResult {
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

  private publish(length: number): void {
    if (!this.isAttached) throw new Error('OffThreadSink: attach() the output before writing');
    const slot = this.published % SLOT_COUNT;
    this.waitFor(this.published - SLOT_COUNT + 1);
    this.throwIfFailed();
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
    if (Atomics.load(this.control, FAILED) === 0) return;
    const text = Buffer.from(this.result, DIGEST_BYTES).toString('utf8').replace(/\0+$/, '');
    const code = /^(E[A-Z]+): /.exec(text)?.[1];
    throw Object.assign(new Error(text), code === undefined ? {} : { code });
  }
}
