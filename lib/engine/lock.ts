/** Per-target lock files shared by every redo-ts process on one tree. */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Locks are files `<sha256(target) prefix>.lock` created with O_EXCL and holding the
 * owner's pid, in `/dev/shm/redo-ts-locks-<uid>-<sha256(root) prefix>/` (tmpfs: creating a
 * file there costs far less than on a disk) or, without /dev/shm, in `.redo/locks/`.
 * A lock whose pid is no longer alive (its process was killed) is stale and is broken
 * by the next process that wants it. Node has no flock(2), hence files plus a
 * liveness check. Pids only mean something on one machine, and so do these locks.
 */
export class TargetLocks {
  private readonly lockDir: string;
  private readonly held = new Set<string>();

  /** `stateDir` is the absolute `.redo/` directory. */
  constructor(stateDir: string) {
    this.lockDir = chooseLockDirectory(stateDir);
  }

  private lockFile(target: string): string {
    return path.join(this.lockDir, `${crypto.createHash('sha256').update(target).digest('hex').slice(0, 32)}.lock`);
  }

  /**
   * Takes the lock of `target`, waiting while another live process holds it.
   * Resolves to true when it had to wait (the caller should re-check freshness).
   * `onAbandoned` is told the pid of a dead owner whose lock it broke.
   */
  async acquire(target: string, onAbandoned?: (deadPid: number) => void): Promise<boolean> {
    const file = this.lockFile(target);
    let hasWaited = false;
    let isFolderMissing = false;
    for (let delayMs = 5; ; delayMs = Math.min(delayMs * 2, 100)) {
      try {
        if (isFolderMissing) fs.mkdirSync(this.lockDir, { recursive: true });
        const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
        fs.writeSync(fd, `${process.pid}\n`);
        fs.closeSync(fd);
        this.held.add(target);
        return hasWaited;
      } catch (error) {
        // ENOENT: the lock folder is gone (another process removed it when it became empty).
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          isFolderMissing = true;
          continue;
        }
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = readOwner(file);
      // Our own pid on a lock we do not hold means a killed predecessor had our pid.
      const isStale = owner !== undefined && (owner === process.pid ? !this.held.has(target) : !isAlive(owner));
      if (isStale) {
        // Re-read right before unlinking so a lock just re-taken by a live process survives.
        if (readOwner(file) === owner) {
          fs.rmSync(file, { force: true });
          onAbandoned?.(owner);
        }
        continue;
      }
      hasWaited = true;
      await sleep(delayMs);
    }
  }

  /** True when a lock file of `target` exists and its owner process is dead. */
  isAbandoned(target: string): boolean {
    const owner = readOwner(this.lockFile(target));
    if (owner === undefined) return false;
    return owner === process.pid ? !this.held.has(target) : !isAlive(owner);
  }

  /** Releases the lock of `target` if this process holds it. */
  release(target: string): void {
    if (!this.held.delete(target)) return;
    removeFile(this.lockFile(target));
  }

  /** Releases every lock this process holds (on exit or interrupt) and removes the lock folder if empty. */
  releaseAll(): void {
    for (const target of [...this.held]) this.release(target);
    try {
      fs.rmdirSync(this.lockDir);
    } catch {
      // Not empty (another process holds locks) or already gone.
    }
  }
}

function chooseLockDirectory(stateDir: string): string {
  const rootHash = crypto.createHash('sha256').update(path.dirname(stateDir)).digest('hex').slice(0, 24);
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const shared = path.join('/dev/shm', `redo-ts-locks-${uid}-${rootHash}`);
  try {
    fs.mkdirSync(shared, { recursive: true, mode: 0o700 });
    const stats = fs.statSync(shared);
    // Only a folder of our own that nobody else may write is trusted with our locks.
    if (stats.uid !== uid || (stats.mode & 0o022) !== 0) throw new Error('not ours');
    return shared;
  } catch {
    return path.join(stateDir, 'locks');
  }
}

/** Removes the file at `file` if it exists (cheaper than fs.rmSync, which stats first). */
export function removeFile(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function readOwner(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True when a process with `pid` exists (signal 0 probes without sending). */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
