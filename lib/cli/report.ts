/** Renders build events and errors for a terminal: one line per rebuilt target, a live status line on a TTY. */

import type { Writable } from 'node:stream';
import { describeReason, type BuildEvent } from '../engine/events.js';
import { RedoError, isRedoError } from '../errors.js';

/**
 * Prints build events to `stderr`:
 *   redo  app.layer  (changed: app/greet.sh)
 * Failures print the error (headline, chain, stderr tail, hint); warnings likewise.
 * Rule stderr passes through. On a TTY a status line
 *   [2 running, 10 done, 14 seen] app.layer base.layer
 * is redrawn below the output and erased at the end.
 */
export class Reporter {
  private readonly running = new Set<string>();
  private done = 0;
  private seen = new Set<string>();
  private hasStatusLine = false;
  private lastDrawMs = 0;

  constructor(private readonly stderr: Writable, private readonly isTTY: boolean) {}

  /** Handles one engine event; never throws. */
  onEvent(event: BuildEvent): void {
    switch (event.kind) {
      case 'started':
        this.seen.add(event.target);
        this.running.add(event.target);
        break;
      case 'built':
        this.running.delete(event.target);
        this.done += 1;
        this.print(`redo  ${event.target}  (${describeReason(event.reason)})${event.hasOutput ? '' : ' [no output]'}${event.isFromCache === true ? ' from cache' : ''}\n`);
        break;
      case 'fresh':
        this.seen.add(event.target);
        this.done += 1;
        break;
      case 'failed':
        this.seen.add(event.target);
        this.running.delete(event.target);
        if (event.isRootCause) this.print(`${event.error.render()}\n`);
        break;
      case 'warning':
        this.print(`warning: ${event.error.render()}\n`);
        break;
      case 'rule-stderr':
        this.print(event.text);
        break;
      default: {
        const impossible: never = event;
        void impossible;
      }
    }
    this.drawStatus(false);
  }

  /** Erases the status line (call before exiting). */
  finish(): void {
    this.clearStatus();
  }

  private print(text: string): void {
    this.clearStatus();
    this.stderr.write(text);
  }

  private clearStatus(): void {
    if (!this.hasStatusLine) return;
    this.stderr.write('\r\x1b[K');
    this.hasStatusLine = false;
  }

  private drawStatus(isForced: boolean): void {
    if (!this.isTTY || this.running.size === 0) {
      this.clearStatus();
      return;
    }
    const now = Date.now();
    if (!isForced && this.hasStatusLine && now - this.lastDrawMs < 100) return;
    this.lastDrawMs = now;
    const names = [...this.running].slice(0, 4).join(' ');
    const reported = (this.stderr as { columns?: number }).columns;
    const columns = reported !== undefined && reported >= 20 ? reported : 80;
    const line = `[${this.running.size} running, ${this.done} done, ${this.seen.size} seen] ${names}`.slice(0, columns - 1);
    this.stderr.write(`\r\x1b[K${line}`);
    this.hasStatusLine = true;
  }
}

/**
 * The user-facing text of any error: a RedoError renders itself; anything else is a
 * bug in redo-ts and is printed with its stack, the version and a request to report it.
 */
export function renderError(error: unknown, version: string): string {
  if (isRedoError(error) && error.code !== 'ERR_INTERNAL') return error.render();
  const stack = error instanceof Error ? error.stack ?? error.message : String(error);
  return [
    `redo: internal error in redo-ts ${version} (a bug; please report it with this text)`,
    ...stack.split('\n').map((line) => `  ${line}`),
  ].join('\n');
}
