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
 * Engine.reconcile, which settles them before anything else is built.
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
    if (this.fd === undefined) {
      const self = selfProcess();
      fs.mkdirSync(this.folder, { recursive: true });
      this.file = path.join(this.folder, `${self.pid}-${self.startTicks ?? 0}`);
      this.fd = fs.openSync(this.file, 'a');
    }
    fs.writeSync(this.fd, `${JSON.stringify(target)}\n`);
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
      for (const line of text.split('\n')) {
        try {
          const target = JSON.parse(line) as unknown;
          if (typeof target === 'string') targets.add(target);
        } catch {
          // The last line of a killed engine may be cut short; its rule had not started.
        }
      }
      found.push({ file, owner, targets: [...targets] });
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
}
