/** Scratch folders and temporary files that never outlive their process: removed when the work ends, fails, or the process exits or is signalled. */

import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<string>();
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function removeLive(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
}

/**
 * On a signal: when some other listener handles it (the CLI's, which ends with
 * process.exit, so removeLive runs on 'exit'), stay out of its way; when we are the
 * only listener, Node would otherwise die without an 'exit' event, so clean up and
 * die of the same signal, as the default action would. This listener is prepended, so
 * it runs before any `once` listener has removed itself and the count is right.
 */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  removeLive();
  for (const name of signals) process.removeListener(name, onSignal);
  process.kill(process.pid, signal);
}

function track(dir: string): void {
  if (live.size === 0) {
    process.on('exit', removeLive);
    for (const name of signals) process.prependListener(name, onSignal);
  }
  live.add(dir);
}

function untrack(dir: string): void {
  live.delete(dir);
  if (live.size === 0) {
    process.removeListener('exit', removeLive);
    for (const name of signals) process.removeListener(name, onSignal);
  }
}

/**
 * Registers `path` (a temporary file or folder the caller creates and removes itself)
 * for removal if the process exits or is signalled first (see withScratchFolder).
 * Returns the function that unregisters it once the caller has renamed or removed it.
 */
export function holdTemporary(path: string): () => void {
  track(path);
  return () => untrack(path);
}

/**
 * Makes a fresh folder `<parentDir>/<prefix>XXXXXX` (parentDir: the OS temporary folder
 * unless given; rules pass their TMPDIR, the engine's per-build folder), runs `work` in it and removes it
 * whatever happens: on return, on a throw, on process.exit, and on SIGINT/SIGTERM/
 * SIGHUP (see onSignal). Only SIGKILL can leave it behind. Returns what `work` returns.
 */
export async function withScratchFolder<T>(prefix: string, work: (dir: string) => Promise<T>, parentDir: string = tmpdir()): Promise<T> {
  const dir = await mkdtemp(join(parentDir, prefix));
  track(dir);
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
    untrack(dir);
  }
}
