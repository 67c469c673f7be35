// TargetLocks on a full disk: taking a lock fails with a clear error and leaves no lock
// file behind, so the next attempt, once there is space, succeeds at once.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TargetLocks } from '../../../lib/engine/lock.js';
import { isRedoError } from '../../../lib/errors.js';

describe('TargetLocks', () => {
  let mountPoint: string | undefined;
  afterEach(() => {
    if (mountPoint === undefined) return;
    execFileSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
    mountPoint = undefined;
  });

  it('ENOSPC while taking a lock: ERR_WRITE_FAILED naming the target, no lock left, works once space is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'redo-ts-lock-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      console.log(`skipped: cannot mount a tmpfs here (${String(error).split('\n')[0]})`);
      return;
    }
    mountPoint = dir;
    const lockDir = join(dir, 'locks');
    mkdirSync(lockDir);
    try {
      execFileSync('sh', ['-c', `cat /dev/zero > ${join(dir, 'filler')}`], { stdio: 'pipe' });
    } catch {
      // Full, as intended.
    }
    const locks = new TargetLocks(join(dir, '.redo'), lockDir);
    let caught: unknown;
    try {
      await locks.acquire('image.tar');
    } catch (error) {
      caught = error;
    }
    expect(isRedoError(caught, 'ERR_WRITE_FAILED')).toBe(true);
    expect((caught as Error).message).toBe('redo: "image.tar": cannot take its build lock');
    expect(readdirSync(lockDir)).toEqual([]);
    rmSync(join(dir, 'filler'));
    expect(await locks.acquire('image.tar')).toBe(false);
    expect(readdirSync(lockDir).filter((name) => name.endsWith('.lock')).length).toBe(1);
    locks.releaseAll();
    // The draft went with the last lock, and the emptied lock folder with it.
    expect(existsSync(lockDir)).toBe(false);
  });

  it('a held lock cannot be taken again until released', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'redo-ts-lock-'));
    try {
      const first = new TargetLocks(join(dir, '.redo'), join(dir, 'locks'));
      mkdirSync(join(dir, 'locks'));
      expect(await first.acquire('a')).toBe(false);
      expect(first.tryAcquire('a')).toBe(false);
      first.release('a');
      expect(first.tryAcquire('a')).toBe(true);
      first.releaseAll();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
