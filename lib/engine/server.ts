/** The request FIFO through which sh clients (libexec/redo-*) reach the running engine. */

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { isAlive, removeFile, removeIfPresent } from './lock.js';

/**
 * Protocol (all files in the run directory, `/dev/shm/redo-ts-<pid>-<random>/` when
 * /dev/shm is writable, else `.redo/run/<pid>/`; tmpfs makes its many small files cheap):
 *
 *   client                                      engine
 *   printf '%s\0' "$PWD" ARGS > q.<$$>         (redo-stamp: stdin; skipped when inline)
 *   { export -p; umask; } > v.<$$>              (redo, redo-ifchange: what rules it starts inherit)
 *   claim r.<job> (noclobber-create c.<job>)     r.<job> was made before the rule ran
 *     or, if taken, mkfifo r.<$$>
 *   exec 3<> r.<reply>
 *   "<command> <$$> <job> <reply>\n" > fifo      reads the line (< PIPE_BUF, so atomic),
 *     or inline: "<command> <$$> <job> <reply> inline\0ARG\0...\n\0"
 *                                               reads and deletes q.<$$>, does the work,
 *   exec 4< r.<job>; exec 3<&-                  (job FIFO: the engine holds r.<job> open
 *     or, for r.<$$>, a watchdog on the            for writing from openJob to closeJob)
 *     engine's pid writes "<$$> gone"
 *   read "<$$> status" <&4               <----  writes "<$$> <status>\n" to r.<reply>,
 *   exit $status                                then deletes c.<job> (or r.<$$>)
 *
 * Inline requests (arguments without newlines, under 3000 bytes, written by one printf,
 * hence one write) spare the request file. The per-job reply FIFO spares the client a mkfifo process per call; the claim file
 * keeps two concurrent clients of one rule (`redo-ifchange a & redo-ifchange b`) from
 * sharing it. The client opens its reply FIFO read-write before sending, so the
 * engine's non-blocking write always finds a reader; it then reads the job FIFO through
 * a read-only descriptor only, so a killed engine is an end of file within no time
 * (a private FIFO's client has a watchdog polling the engine's pid once a second).
 * Clients write to `fifo` through a read-write descriptor, so even a dead engine's
 * `fifo` never blocks them. Answers carry the caller's pid: one left in a job FIFO by a
 * killed earlier client of the same rule is skipped. The engine holds `fifo` open
 * read-write, so it never sees end-of-file, and reads it through a socket so no
 * thread blocks.
 */
/** Serves one request; `callId` is the client's pid (its `$$`). */
export type RequestHandler = (command: string, payload: Buffer, parentToken: string, callId: string) => Promise<number>;

/** Reply FIFOs made per mkfifo process (the first batch with the request FIFO). */
const poolBatch = 16;

/** A listening request FIFO; `close()` removes the run directory. */
export class RequestServer {
  readonly runDir: string;
  /** `runDir` with symlinks resolved, as /proc shows the files in it. */
  readonly realRunDir: string;
  private readonly socket: net.Socket;
  private buffered = '';
  private readonly sparePool: string[] = [];
  private poolCounter = 0;
  /** Reply FIFOs of running jobs, held open for writing (see openJob). */
  private readonly heldReplies = new Map<string, number>();

  private constructor(runDir: string, socket: net.Socket, private readonly handler: RequestHandler) {
    this.runDir = runDir;
    this.realRunDir = fs.realpathSync(runDir);
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.receive(text));
    socket.on('error', () => undefined);
  }

  /**
   * Makes `fifo` in the run directory (a fresh one by default) and starts serving requests
   * with `handler`. Spawns `mkfifo` once (Node has no mkfifo call), for `fifo` and the
   * first jobs' reply FIFOs together.
   */
  static open(stateDir: string, handler: RequestHandler, runDir = makeRunDirectory(stateDir)): RequestServer {
    const fifo = path.join(runDir, 'fifo');
    const firstPool = Array.from({ length: poolBatch }, (_, i) => path.join(runDir, `p.${i + 1}`));
    execFileSync('mkfifo', ['-m', '600', fifo, ...firstPool]);
    const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const socket = new net.Socket({ fd, readable: true, writable: false });
    const server = new RequestServer(runDir, socket, handler);
    server.sparePool.push(...firstPool.reverse());
    server.poolCounter = poolBatch;
    return server;
  }

  private receive(text: string): void {
    this.buffered += text;
    for (let newline = this.buffered.indexOf('\n'); newline !== -1; newline = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, newline);
      // An inline request ends with "\n\0" (printf's format repeats per argument).
      const skip = this.buffered[newline + 1] === '\0' ? 2 : 1;
      if (skip === 1 && line.includes('\0') && newline + 1 === this.buffered.length) break;
      this.buffered = this.buffered.slice(newline + skip);
      void this.serve(line);
    }
  }

  private async serve(line: string): Promise<void> {
    const inlineAt = line.indexOf('\0');
    const header = inlineAt === -1 ? line : line.slice(0, inlineAt);
    const [command = '', callId = '', parentToken = '', replyId = callId, mode = ''] = header.split(' ');
    if (!/^\d+$/.test(callId) || !/^\d+$/.test(replyId)) return;
    const isJobReply = replyId === parentToken && replyId !== callId;
    const requestFile = path.join(this.runDir, `q.${callId}`);
    const replyFile = path.join(this.runDir, `r.${replyId}`);
    let status: number;
    try {
      let payload: Buffer;
      if (mode === 'inline') {
        payload = Buffer.from(line.slice(inlineAt + 1), 'utf8');
      } else {
        payload = fs.readFileSync(requestFile);
        removeFile(requestFile);
      }
      status = await this.handler(command, payload, parentToken, callId);
    } catch {
      status = 2;
    }
    const answer = `${callId} ${status}\n`;
    try {
      const held = isJobReply ? this.heldReplies.get(replyId) : undefined;
      if (held !== undefined) fs.writeSync(held, answer);
      else {
        const fd = fs.openSync(replyFile, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
        fs.writeSync(fd, answer);
        fs.closeSync(fd);
      }
    } catch {
      // The client is gone (killed); nothing to tell it.
    }
    if (isJobReply) removeFile(path.join(this.runDir, `c.${replyId}`));
    else removeFile(replyFile);
  }

  /**
   * Gives job `token` its reply FIFO `r.<token>`, recycling FIFOs of finished jobs and
   * creating them 16 at a time (each batch is one mkfifo process).
   */
  openJob(token: string): void {
    if (this.sparePool.length === 0) {
      const names: string[] = [];
      for (let i = 0; i < poolBatch; i += 1) names.push(path.join(this.runDir, `p.${(this.poolCounter += 1)}`));
      execFileSync('mkfifo', ['-m', '600', ...names]);
      this.sparePool.push(...names);
    }
    const reply = path.join(this.runDir, `r.${token}`);
    fs.renameSync(this.sparePool.pop() as string, reply);
    // Held for writing while the job runs: its clients read through a read-only
    // descriptor, so when this process dies they see an end of file, not silence.
    this.heldReplies.set(token, fs.openSync(reply, fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
  }

  /** Returns job `token`'s reply FIFO to the pool once its rule has finished. */
  closeJob(token: string): void {
    const held = this.heldReplies.get(token);
    if (held !== undefined) {
      // Closing the last descriptor empties the FIFO: a recycled one starts clean.
      fs.closeSync(held);
      this.heldReplies.delete(token);
    }
    this.poolCounter += 1;
    const spare = path.join(this.runDir, `p.${this.poolCounter}`);
    try {
      fs.renameSync(path.join(this.runDir, `r.${token}`), spare);
      this.sparePool.push(spare);
    } catch {
      // Already gone; the pool refills itself.
    }
    // Removed already when the job's own FIFO carried a reply (the usual case).
    removeIfPresent(path.join(this.runDir, `c.${token}`));
  }

  /** Stops serving and removes the run directory. */
  close(): void {
    for (const fd of this.heldReplies.values()) fs.closeSync(fd);
    this.heldReplies.clear();
    this.socket.destroy();
    fs.rmSync(this.runDir, { recursive: true, force: true });
  }
}

/**
 * Makes a fresh run directory: on /dev/shm when writable (tmpfs), else under
 * `<stateDir>/run/`. Removes directories of dead engines found there first.
 */
export function makeRunDirectory(stateDir: string): string {
  const candidates = [
    { parent: '/dev/shm', prefix: 'redo-ts-' },
    { parent: path.join(stateDir, 'run'), prefix: '' },
  ];
  for (const { parent, prefix } of candidates) {
    try {
      fs.mkdirSync(parent, { recursive: true });
      for (const name of fs.readdirSync(parent)) {
        if (!name.startsWith(prefix)) continue;
        const pid = Number(name.slice(prefix.length).split('-')[0]);
        if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) fs.rmSync(path.join(parent, name), { recursive: true, force: true });
      }
      return fs.mkdtempSync(path.join(parent, `${prefix}${process.pid}-`));
    } catch {
      // Not writable here; try the next place.
    }
  }
  throw new Error(`cannot create a run directory under /dev/shm or ${stateDir}/run`);
}

/** Splits a NUL-terminated argument list (as written by `printf '%s\0' "$@"`). Pure. */
export function splitArguments(payload: Buffer): string[] {
  const text = payload.toString('utf8');
  if (text === '') return [];
  const parts = text.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/**
 * Makes the scratch folder (TMPDIR) of this engine's rules, `<parent>/redo-ts-tmp-<pid>-<random>/`,
 * after removing those of engines that no longer run (killed builds' scratch).
 */
export function makeScratchDirectory(parent: string): string {
  const prefix = 'redo-ts-tmp-';
  try {
    for (const name of fs.readdirSync(parent)) {
      if (!name.startsWith(prefix)) continue;
      const pid = Number(name.slice(prefix.length).split('-')[0]);
      if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) fs.rmSync(path.join(parent, name), { recursive: true, force: true });
    }
  } catch {
    // Unreadable, or another engine removed the same folder at the same time: not ours to fix.
  }
  return fs.mkdtempSync(path.join(parent, `${prefix}${process.pid}-`));
}
