// A lock between the test processes that run at once (vitest runs files in parallel): one
// of them builds a fixture of the shared test cache, the others wait for it, then reuse it.
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive } from '../../lib/processes.js';

/**
 * Runs `work` holding the lock `name` of the folder `home` (a folder `home/locks/NAME`,
 * made with mkdir, which fails for every process but one, holding `owner`, the holder's
 * PID). Waits while another live process holds it; breaks a lock whose holder died (or,
 * with no owner written, one older than a minute). Released when `work` settles.
 */
export async function withFolderLock<T>(home: string, name: string, work: () => Promise<T>): Promise<T> {
  const locks = join(home, 'locks');
  const lock = join(locks, name);
  mkdirSync(locks, { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let stale: boolean;
    try {
      const owner = Number(readFileSync(join(lock, 'owner'), 'utf8'));
      stale = Number.isInteger(owner) && owner > 0 ? !isProcessAlive(owner) : Date.now() - statSync(lock).mtimeMs > 60_000;
    } catch {
      // No owner yet (being written, or its holder died between mkdir and write).
      try {
        stale = Date.now() - statSync(lock).mtimeMs > 60_000;
      } catch {
        stale = false; // Released meanwhile: try again.
      }
    }
    if (stale) rmSync(lock, { recursive: true, force: true });
    else await new Promise((done) => setTimeout(done, 250));
  }
  try {
    writeFileSync(join(lock, 'owner'), String(process.pid));
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
