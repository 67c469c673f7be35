/** The Node side of the sh client protocol, for `redo-ts` commands run inside a rule. */

import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { readRedoEnvironment } from '../env.js';

/**
 * True when `env` says we run inside a rule of a live build (REDO_RUN_DIR with its FIFO
 * and REDO_PARENT set): redo commands must then go to that engine, not start a new one.
 */
export function isInsideRule(env: NodeJS.ProcessEnv): boolean {
  const redo = readRedoEnvironment(env);
  return redo.runDir !== undefined && redo.parentToken !== undefined && fs.existsSync(path.join(redo.runDir, 'fifo'));
}

/**
 * Sends `command` with `payload` (NUL-terminated arguments, or redo-stamp data) to the
 * engine running the current rule, the same way libexec/redo-call.sh does, and blocks
 * until it answers. Returns the status the engine replied (0 ok, 1 failed, 2 misuse).
 */
export function callEngine(env: NodeJS.ProcessEnv, command: string, payload: Buffer): number {
  const redo = readRedoEnvironment(env);
  if (redo.runDir === undefined || redo.parentToken === undefined) return 2;
  const callId = String(process.pid);
  const requestFile = path.join(redo.runDir, `q.${callId}`);
  const replyFile = path.join(redo.runDir, `r.${callId}`);
  fs.writeFileSync(requestFile, payload);
  // Loaded here, not at start-up: every build checks isInsideRule(), few call this.
  const { execFileSync } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  execFileSync('mkfifo', ['-m', '600', replyFile]);
  const replyFd = fs.openSync(replyFile, fs.constants.O_RDWR);
  try {
    fs.appendFileSync(path.join(redo.runDir, 'fifo'), `${command} ${callId} ${redo.parentToken}\n`);
    const buffer = Buffer.alloc(64);
    let text = '';
    while (!text.includes('\n')) {
      const count = fs.readSync(replyFd, buffer, 0, buffer.length, null);
      if (count === 0) break;
      text += buffer.toString('utf8', 0, count);
    }
    const status = Number.parseInt(text, 10);
    return Number.isInteger(status) ? status : 2;
  } finally {
    fs.closeSync(replyFd);
    fs.rmSync(replyFile, { force: true });
  }
}

/** Encodes arguments as the NUL-terminated list the engine expects. Pure. */
export function encodeArguments(args: string[]): Buffer {
  return Buffer.from(args.map((arg) => `${arg}\0`).join(''), 'utf8');
}
