/** Settling what killed engines left: their processes, temporary files and outputs renamed into place without a record. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { isRedoError } from '../errors.js';
import type { AbandonedRun, BuildJournal } from './journal.js';
import { isRunning, type TargetLocks } from './lock.js';
import { isSameOutput } from './freshness.js';
import { readStamp } from './stamp.js';
import { isWriteError, type StateStore } from './state.js';

/**
 * Settles what engines killed earlier left (see journal.ts): for each target a dead
 * engine had started, its temporary files (named after that engine's pid) are removed,
 * and an output that does not match the target's record, i.e. renamed into place
 * before its record was saved, is deleted so the target is rebuilt, not mistaken for a
 * source or a hand edit. A target another live process is building is left for later.
 */
export async function reconcileAbandoned(root: string, state: StateStore, locks: TargetLocks, journalOf: BuildJournal): Promise<void> {
  for (const journal of journalOf.findAbandoned()) {
    // First end what is left of its run (rules, what they started, waiting clients), so
    // nothing renames an output into place while its target is settled.
    for (const run of journal.runs) await stopAbandonedRun(run);
    let isSettled = true;
    for (const target of journal.targets) {
      if (!locks.tryAcquire(target)) {
        isSettled = false;
        continue;
      }
      try {
        removeLeftovers(path.join(root, target), journal.owner.pid);
        const record = state.load(target);
        const absolute = path.join(root, target);
        const current = readStamp(absolute, record?.output ?? undefined);
        if (current !== undefined && (record?.output == null || !isSameOutput(current, record.output))) {
          fs.rmSync(absolute, { recursive: true, force: true });
        }
      } catch (error) {
        isSettled = false;
        if (!isWriteError(error) && !isRedoError(error)) throw error;
      } finally {
        locks.release(target);
      }
    }
    // Compiled TypeScript rules are written as `NAME.<hash>.mjs.<pid>.tmp` and renamed.
    removeLeftovers(path.join(state.stateDir, 'ts', '.mjs'), journal.owner.pid, 'compiled');
    if (isSettled) fs.rmSync(journal.file, { force: true });
  }
}

/**
 * Ends what is left of a dead engine's run: its rule spawner (by pid, when its start
 * time still matches) and every process whose environment names the run folder
 * (SIGTERM, then SIGKILL half a second later), then removes the run folder. Only
 * processes of that run are touched.
 */
export async function stopAbandonedRun(run: AbandonedRun): Promise<void> {
  if (run.spawner.startTicks !== undefined && run.spawner.startTicks !== 0 && isRunning(run.spawner)) {
    try {
      process.kill(run.spawner.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  // Even when the run folder is gone (another project's engine removes a dead engine's
  // run folder from /dev/shm), its processes may still run: look for them anyway.
  const { stopBuildProcesses } = await import('./spawner.js');
  await stopBuildProcesses(run.runDir, 500, false);
  fs.rmSync(run.runDir, { recursive: true, force: true });
}

/**
 * Removes the temporary files an engine with `pid` left for the target at the absolute
 * `file` (`NAME.redo.PID.tmp`, and what a rule made from that name beside it:
 * `NAME.redo.PID.tmp.1.tmp`, `.NAME.redo.PID.tmp.layers`), or, for `.redo/ts/.mjs`,
 * compiled rules (`*.mjs.PID.tmp`).
 */
export function removeLeftovers(file: string, pid: number, kind: 'output' | 'compiled' = 'output'): void {
  const base = path.basename(file);
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(file));
  } catch {
    return;
  }
  for (const name of names) {
    const isLeftover = kind === 'compiled'
      ? name.endsWith(`${base}.${pid}.tmp`)
      : (name.startsWith('.') ? name.slice(1) : name).startsWith(`${base}.redo.${pid}.tmp`);
    if (isLeftover) fs.rmSync(path.join(path.dirname(file), name), { recursive: true, force: true });
  }
}
