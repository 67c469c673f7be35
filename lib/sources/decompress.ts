/** Decompressing archives by their magic bytes: gzip with node:zlib, xz, bzip2 and zstd with the system's decompressors (their output is fixed by their input). */

import { spawn } from 'node:child_process';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

/** A compression format recognised by its magic bytes; `none` is taken as plain data. */
export type Compression = 'gzip' | 'xz' | 'bzip2' | 'zstd' | 'none';

/** The command that decompresses each format to stdout (gzip is undone in-process). */
const decompressorCommands: Record<'xz' | 'bzip2' | 'zstd', readonly string[]> = {
  xz: ['xz', '--decompress', '--stdout'],
  bzip2: ['bzip2', '--decompress', '--stdout'],
  zstd: ['zstd', '--decompress', '--stdout', '--quiet'],
};

/** The compression of `head` (the first bytes of a file, 6 are enough): gzip 1f 8b, xz fd 37 7a 58 5a 00, bzip2 "BZh", zstd 28 b5 2f fd. */
export function compressionOf(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/**
 * The file at `path`, decompressed as its magic bytes say (compressionOf), as a stream.
 * A decompressor that fails (a damaged file, a missing xz/bzip2/zstd) destroys the
 * stream with `fail(problem)`. Destroying the stream stops the decompressor.
 */
export function openDecompressed(path: string, fail: (problem: string) => Error): Readable {
  const head = Buffer.alloc(6);
  const fd = openSync(path, 'r');
  let length: number;
  try {
    length = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const compression = compressionOf(head.subarray(0, length));
  return decompressStream(createReadStream(path), compression, fail);
}

/** `input` decompressed from `compression` (`none`: as it is); failures as for openDecompressed. */
export function decompressStream(input: Readable, compression: Compression, fail: (problem: string) => Error): Readable {
  if (compression === 'none') return input;
  if (compression === 'gzip') {
    const output = new PassThrough();
    const failOutput = failWhenObserved(output);
    pipeline(input, createGunzip(), output).catch((cause: unknown) => {
      failOutput(fail(`does not decompress (gzip): ${(cause as Error).message}`));
    });
    return output;
  }
  return spawnDecompressor(decompressorCommands[compression], input, fail);
}

/**
 * A way to fail `stream` once its consumer listens for errors: a decompressor that cannot
 * start fails before the caller, still awaiting something else, has attached its
 * consumer, and an 'error' nobody listens to ends the whole process. Call it when the
 * stream is wired up: the 'error' listeners it has then (pipe's, pipeline's) are not a consumer.
 */
export function failWhenObserved(stream: Readable): (error: Error) => void {
  const wiring = stream.listenerCount('error');
  let pending: Error | undefined;
  const onListener = (event: string | symbol): void => {
    if (event !== 'error' || pending === undefined) return;
    stream.off('newListener', onListener);
    const error = pending;
    process.nextTick(() => stream.destroy(error));
  };
  return (error) => {
    if (stream.destroyed || pending !== undefined) return;
    if (stream.listenerCount('error') > wiring) {
      stream.destroy(error);
      return;
    }
    pending = error;
    stream.on('newListener', onListener);
  };
}

/**
 * Pipes `input` through `command` (a decompressor writing to stdout). A non-zero exit
 * or a command that cannot run destroys the output with `fail(problem)`; a consumer that
 * stops early stops the child.
 */
export function spawnDecompressor(command: readonly string[], input: Readable, fail: (problem: string) => Error): Readable {
  const [program, ...args] = command as [string, ...string[]];
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  const output = new PassThrough();
  const stderr: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  let failOutput: ((error: Error) => void) | undefined;
  const destroy = (problem: string): void => {
    failOutput?.(fail(problem));
  };
  child.on('error', (cause) => destroy(`cannot run ${program}: ${cause.message}`));
  // A consumer that stops early (an unsafe path, say) closes stdin under us: not an error.
  child.stdin.on('error', () => undefined);
  input.on('error', (cause) => destroy(`cannot read: ${cause.message}`));
  input.pipe(child.stdin);
  child.stdout.pipe(output, { end: false });
  let isStdoutDone = false;
  let exitCode: number | null | undefined;
  const finish = (): void => {
    if (!isStdoutDone || exitCode === undefined) return;
    if (exitCode === 0) output.end();
    else destroy(`${program} exited with status ${exitCode}: ${Buffer.concat(stderr).toString('utf8').trim().split('\n').slice(-2).join(' / ')}`);
  };
  child.stdout.on('end', () => {
    isStdoutDone = true;
    finish();
  });
  child.on('close', (code) => {
    exitCode = code;
    finish();
  });
  output.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
    input.destroy();
  });
  failOutput = failWhenObserved(output);
  return output;
}
