/** The build journal: which targets a running engine may be changing, so the next run can undo a killed one. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { isRunning, removeFile, selfProcess, type ProcessIdentity } from './lock.js';

/**
 * `.redo/journal/<pid>-<start ticks>` is opened by an engine when its first rule starts.
 * Before each rule runs, one line is appended: the target, as a JSON string. The
 * journal is removed when the engine ends with every record saved; it stays when the
 * engine is killed, interrupted or could not save a record. A journal whose owner no
 * longer runs is a list of targets whose output may have been renamed into place
 * without its record (and of temporary files named after the dead pid): see
 * reconcileAbandoned (reconcile.ts), which settles them before anything else is built.
 */
export class BuildJournal {
  private readonly folder: string;
  private fd: number | undefined;
  private file: string | undefined;

  /** `stateDir` is the absolute `.redo/` folder; nothing is created until the first note. */
  constructor(stateDir: string) {
    this.folder = path.join(stateDir, 'journal');
  }

  /** Appends `target` (its rule is about to run). Throws the file-system error if it cannot. */
  note(target: string): void {
    fs.writeSync(this.open(), `${JSON.stringify(target)}\n`);
  }

  /**
   * Appends the run folder and the rule spawner of this engine (one JSON object line),
   * so that if both are killed the next engine can end what is left of the run: the
   * spawner by pid and start time, every other process by the run folder its
   * environment names (REDO_RUN_DIR). Throws the file-system error if it cannot.
   */
  noteRun(run: AbandonedRun): void {
    fs.writeSync(this.open(), `${JSON.stringify(run)}\n`);
  }

  private open(): number {
    if (this.fd === undefined) {
      const self = selfProcess();
      fs.mkdirSync(this.folder, { recursive: true });
      this.file = path.join(this.folder, `${self.pid}-${self.startTicks ?? 0}`);
      this.fd = fs.openSync(this.file, 'a');
    }
    return this.fd;
  }

  /** Closes the journal; removes it when `isSettled` (every record written). */
  close(isSettled: boolean): void {
    if (this.fd === undefined || this.file === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
    if (isSettled) removeFile(this.file);
  }

  /** Journals left by engines that no longer run, oldest name first; each with its owner and targets. */
  findAbandoned(): AbandonedJournal[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.folder);
    } catch {
      return [];
    }
    const found: AbandonedJournal[] = [];
    for (const name of names.sort()) {
      const match = /^(\d+)-(\d+)$/.exec(name);
      if (match === null) continue;
      const owner: ProcessIdentity = { pid: Number(match[1]), startTicks: Number(match[2]) };
      if (isRunning(owner)) continue;
      const file = path.join(this.folder, name);
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      const targets = new Set<string>();
      const runs: AbandonedRun[] = [];
      for (const line of text.split('\n')) {
        try {
          const entry = JSON.parse(line) as unknown;
          if (typeof entry === 'string') targets.add(entry);
          else if (isRun(entry)) runs.push(entry);
        } catch {
          // The last line of a killed engine may be cut short; its rule had not started.
        }
      }
      found.push({ file, owner, targets: [...targets], runs });
    }
    return found;
  }
}

/** A journal of an engine that is gone. */
export interface AbandonedJournal {
  /** Absolute journal file; remove it once every target is settled. */
  file: string;
  owner: ProcessIdentity;
  /** Root-relative targets whose rules it started. */
  targets: string[];
  /** Its run folders and rule spawners, whose processes may still run. */
  runs: AbandonedRun[];
}

/** The run folder and rule spawner of an engine, as its journal names them. */
export interface AbandonedRun {
  runDir: string;
  spawner: ProcessIdentity;
}

function isRun(value: unknown): value is AbandonedRun {
  const run = value as AbandonedRun | null;
  return run !== null && typeof run === 'object' && typeof run.runDir === 'string' && run.runDir.startsWith('/')
    && typeof run.spawner === 'object' && run.spawner !== null && Number.isInteger(run.spawner.pid) && run.spawner.pid > 1;
}
