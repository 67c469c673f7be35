/** Per-target lock files shared by every redo-ts process on one tree. */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedoError } from '../errors.js';

/**
 * Locks are files `<sha256(target) prefix>.lock` in `/dev/shm/redo-ts-locks-<uid>-<sha256(root)
 * prefix>/` (tmpfs: creating a file there costs far less than on a disk) or, without
 * /dev/shm, in `.redo/locks/`. A lock file holds `<pid> <start time>\n`, the owner's
 * pid and its start time in clock ticks since boot (/proc/PID/stat field 22), and is
 * a hard link to the owner's draft `d.<pid>`, written complete once per process
 * (link(2) fails with EEXIST when the lock is taken), so a lock file is never empty or
 * half-written, and a full disk leaves nothing behind.
 *
 * A lock is stale, and is broken by the next process that wants it, when its owner is
 * dead, when the pid now belongs to another process (start time differs), or when the
 * file is not in this format (empty, garbage, an older redo-ts's bare pid). Node has no
 * flock(2); a lock held through an open descriptor would need a native addon or a
 * helper process per lock, while a pid plus start time identifies a live owner exactly
 * on one machine, which is where these locks live.
 *
 *   w.<pid>.<n>   a wait note, `{"wanted": T, "held": [...]}`, written while a process
 *                 waits for the lock of T holding the locks in `held`; other waiters read
 *                 them to find a cycle that runs through several processes.
 */
export class TargetLocks {
  private readonly lockDir: string;
  private readonly held = new Set<string>();
  private noteCounter = 0;
  private draft: string | undefined;

  /** `stateDir` is the absolute `.redo/` directory; `lockDir` overrides where locks go (tests). */
  constructor(stateDir: string, lockDir?: string) {
    this.lockDir = lockDir ?? chooseLockDirectory(stateDir);
  }

  private lockFile(target: string): string {
    return path.join(this.lockDir, `${crypto.createHash('sha256').update(target).digest('hex').slice(0, 32)}.lock`);
  }

  /** True when this process holds the lock of `target`. */
  isHeld(target: string): boolean {
    return this.held.has(target);
  }

  /**
   * Takes the lock of `target`, waiting while another live process holds it.
   * Resolves to true when it had to wait (the caller should re-check freshness).
   * `options.onAbandoned` is told the pid of a dead owner whose lock it broke;
   * `options.onWaiting` is told once, after `noticeMs`, who holds the lock.
   * While waiting, looks for a cycle through other processes' wait notes: `chain` is the
   * requesting build path (its locked members are this process's side of a cycle).
   * Throws ERR_CYCLE for such a cycle, ERR_WRITE_FAILED when the lock cannot be written.
   */
  async acquire(target: string, options: LockWaitOptions = {}): Promise<boolean> {
    const file = this.lockFile(target);
    let hasWaited = false;
    let note: string | undefined;
    const startMs = Date.now();
    let isNoticeGiven = false;
    try {
      for (let delayMs = 5; ; delayMs = Math.min(delayMs * 2, 100)) {
        if (this.tryLink(target, file)) return hasWaited;
        const text = readText(file);
        if (text === undefined) continue;
        const owner = parseOwner(text);
        // Our own identity on a lock we do not hold means a killed predecessor had our pid.
        const isStale = owner === undefined || (isSelf(owner) ? !this.held.has(target) : !isRunning(owner));
        if (isStale) {
          // Unlink only the very file we judged (same content), so a lock just re-taken survives.
          if (readText(file) === text) {
            removeFile(file);
            if (owner !== undefined) {
              fs.rmSync(path.join(this.lockDir, `d.${owner.pid}`), { force: true });
              options.onAbandoned?.(owner.pid);
            }
          }
          continue;
        }
        hasWaited = true;
        const waitedMs = Date.now() - startMs;
        if (waitedMs >= 200) {
          note ??= this.writeNote(target, options.chain ?? []);
          const cycle = this.findCycle(target, options.chain ?? []);
          if (cycle !== undefined) throw cycle;
        }
        if (!isNoticeGiven && waitedMs >= (options.noticeMs ?? 3000)) {
          isNoticeGiven = true;
          options.onWaiting?.(describeProcess(owner.pid));
        }
        await sleep(delayMs);
      }
    } finally {
      if (note !== undefined) removeFile(note);
    }
  }

  /**
   * Takes the lock of `target` only if nobody live holds it (stale locks are broken).
   * Returns false when another process holds it. Throws like acquire().
   */
  tryAcquire(target: string): boolean {
    const file = this.lockFile(target);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      if (this.tryLink(target, file)) return true;
      const text = readText(file);
      if (text === undefined) continue;
      const owner = parseOwner(text);
      if (owner !== undefined && (isSelf(owner) ? this.held.has(target) : isRunning(owner))) return false;
      if (readText(file) === text) removeFile(file);
    }
    return false;
  }

  /**
   * One attempt at creating the lock file complete; false if it exists. Every lock of
   * this process is a hard link to one draft `d.<pid>` holding its identity, written
   * once: a lock then costs one link(2), and needs no free space.
   */
  private tryLink(target: string, file: string): boolean {
    for (let attempt = 0; ; attempt += 1) {
      try {
        this.draft ??= this.writeDraft();
        fs.linkSync(this.draft, file);
        this.held.add(target);
        return true;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return false;
        // ENOENT: the lock folder (and our draft) is gone; make both again.
        if (code === 'ENOENT' && attempt < 3) {
          this.draft = undefined;
          fs.mkdirSync(this.lockDir, { recursive: true, mode: 0o700 });
          continue;
        }
        throw new RedoError('ERR_WRITE_FAILED', `redo: "${target}": cannot take its build lock`, {
          details: [`lock: ${file}`, `error: ${code ?? String(error)}`],
          hint: code === 'ENOSPC' || code === 'EDQUOT' ? 'the disk holding the lock folder is full; free some space' : 'check that the lock folder is writable',
          cause: error,
        });
      }
    }
  }

  /** Writes `d.<pid>` complete (aside, then renamed); a draft the disk had no room for is removed. */
  private writeDraft(): string {
    const draft = path.join(this.lockDir, `d.${process.pid}`);
    try {
      fs.writeFileSync(`${draft}.tmp`, selfText(), { mode: 0o644 });
      fs.renameSync(`${draft}.tmp`, draft);
    } catch (error) {
      fs.rmSync(`${draft}.tmp`, { force: true });
      throw error;
    }
    return draft;
  }

  private writeNote(target: string, chain: string[]): string | undefined {
    this.noteCounter += 1;
    const note = path.join(this.lockDir, `w.${process.pid}.${this.noteCounter}`);
    const held = chain.filter((name) => this.held.has(name));
    try {
      fs.writeFileSync(`${note}.tmp`, JSON.stringify({ wanted: target, held, chain }));
      fs.renameSync(`${note}.tmp`, note);
      return note;
    } catch {
      // Without a note, other processes cannot see this side of a cycle; this one still can.
      removeFile(`${note}.tmp`);
      return undefined;
    }
  }

  /**
   * Follows "process holding the lock of X waits for the lock of Y" through the wait
   * notes of other processes; an ERR_CYCLE when it comes back to a lock this process
   * holds, undefined otherwise.
   */
  private findCycle(wanted: string, chain: string[]): RedoError | undefined {
    const notes = this.readNotes();
    const trail: string[] = [];
    let current = wanted;
    for (let step = 0; step < 16; step += 1) {
      // Who holds `current` and is itself waiting? Its note lists `current` as held.
      const next = notes.find((candidate) => candidate.held.includes(current));
      if (next === undefined) return undefined;
      trail.push(`pid ${next.pid} builds ${next.chain.join(' → ')} and waits for "${next.wanted}"`);
      // Only a lock held on this build path closes a cycle: another of our builds ends on its own.
      if (this.held.has(next.wanted) && chain.includes(next.wanted)) {
        const ours = chain.length > 0 ? chain : [wanted];
        return new RedoError('ERR_CYCLE', `redo: "${wanted}": dependency cycle through another redo-ts process: "${next.wanted}" and "${wanted}" wait for each other`, {
          details: [`this process (pid ${process.pid}) builds ${ours.join(' → ')} and waits for "${wanted}"`, ...trail],
          hint: 'remove one of these dependencies',
        });
      }
      current = next.wanted;
    }
    return undefined;
  }

  private readNotes(): WaitNote[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.lockDir);
    } catch {
      return [];
    }
    const notes: WaitNote[] = [];
    for (const name of names.filter((n) => /^w\.\d+\.\d+$/.test(n)).sort()) {
      const pid = Number(name.split('.')[1]);
      if (pid === process.pid) continue;
      try {
        const parsed = JSON.parse(fs.readFileSync(path.join(this.lockDir, name), 'utf8')) as Partial<WaitNote>;
        if (typeof parsed.wanted !== 'string' || !Array.isArray(parsed.held) || !Array.isArray(parsed.chain)) continue;
        if (!isRunning({ pid, startTicks: undefined })) {
          removeFile(path.join(this.lockDir, name));
          continue;
        }
        notes.push({ pid, wanted: parsed.wanted, held: parsed.held.map(String), chain: parsed.chain.map(String) });
      } catch {
        // Gone meanwhile (its wait ended) or being written.
      }
    }
    return notes;
  }

  /** Releases the lock of `target` if this process holds it. */
  release(target: string): void {
    if (!this.held.delete(target)) return;
    removeFile(this.lockFile(target));
  }

  /** Releases every lock this process holds (on exit or interrupt) and removes the lock folder if empty. */
  releaseAll(): void {
    for (const target of [...this.held]) this.release(target);
    if (this.draft !== undefined) fs.rmSync(this.draft, { force: true });
    this.draft = undefined;
    try {
      fs.rmdirSync(this.lockDir);
    } catch {
      // Not empty (another process holds locks) or already gone.
    }
  }
}

/** How acquire() waits: see TargetLocks.acquire. */
export interface LockWaitOptions {
  chain?: string[];
  onAbandoned?: (deadPid: number) => void;
  onWaiting?: (holder: string) => void;
  noticeMs?: number;
}

interface WaitNote {
  pid: number;
  wanted: string;
  held: string[];
  chain: string[];
}

/** A process as a lock names it: pid and, when known, start time in clock ticks since boot. */
export interface ProcessIdentity {
  pid: number;
  startTicks: number | undefined;
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

/**
 * Removes what is at `file` (a folder with all it holds) if anything: for names that are
 * usually absent, where a failing unlink (an exception) costs more than one stat.
 */
export function removeIfPresent(file: string): void {
  const stats = fs.lstatSync(file, { throwIfNoEntry: false });
  if (stats === undefined) return;
  if (stats.isDirectory()) fs.rmSync(file, { recursive: true, force: true });
  else removeFile(file);
}

/** The content of `file`; undefined when it does not exist, '' (garbage) when it cannot be read. */
function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : '';
  }
}

/** `<pid> <start ticks>\n` → identity; anything else (empty, garbage, a bare pid) → undefined. */
function parseOwner(text: string): ProcessIdentity | undefined {
  const match = /^(\d+) (\d+)\n$/.exec(text);
  if (match === null) return undefined;
  return { pid: Number(match[1]), startTicks: Number(match[2]) };
}

/** Start time of process `pid` in clock ticks since boot, or undefined (no such process, no /proc). */
export function startTicksOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

let selfIdentity: ProcessIdentity | undefined;

/** This process's identity (computed once). */
export function selfProcess(): ProcessIdentity {
  selfIdentity ??= { pid: process.pid, startTicks: startTicksOf(process.pid) };
  return selfIdentity;
}

function selfText(): string {
  const self = selfProcess();
  return `${self.pid} ${self.startTicks ?? 0}\n`;
}

function isSelf(owner: ProcessIdentity): boolean {
  return owner.pid === process.pid && (owner.startTicks === undefined || owner.startTicks === (selfProcess().startTicks ?? 0));
}

/**
 * True when the process `identity` names is running: the pid exists and, when both are
 * known, has the recorded start time (so a reused pid does not count).
 */
export function isRunning(identity: ProcessIdentity): boolean {
  if (identity.pid === process.pid) return isSelf(identity);
  if (!isAlive(identity.pid)) return false;
  if (identity.startTicks === undefined || identity.startTicks === 0) return true;
  const ticks = startTicksOf(identity.pid);
  return ticks === undefined || ticks === identity.startTicks && !isZombie(identity.pid);
}

/** True when `pid` has ended and only waits for its parent to collect its status. */
function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
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

/** `pid 123 (node bin/redo-ts.js image.tar)`: a process as a person would recognise it. */
function describeProcess(pid: number): string {
  let command = '';
  try {
    command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((part) => part !== '').join(' ');
  } catch {
    // No /proc: the pid alone.
  }
  return command === '' ? `pid ${pid}` : `pid ${pid} (${command.length > 120 ? `${command.slice(0, 117)}...` : command})`;
}
