/** Whether a process runs, for the cache, store and sandbox code (the engine has its own in lib/engine/lock.ts, which may import nothing outside engine/). */

/** True when a process with `pid` exists on this machine (signal 0 probes without sending; EPERM: it runs as another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
