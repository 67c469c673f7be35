/** Starts sh rules through one long-lived sh process, because a Node spawn per rule is slow. */

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One sh rule to start: argv[0] is the interpreter (`sh`), run in `cwd`. */
export interface SpawnRequest {
  /** Absolute working directory. */
  cwd: string;
  argv: string[];
  /** Extra variables for this rule only (e.g. REDO_PARENT). */
  env: Record<string, string>;
  /** Absolute file receiving the rule's stdout. */
  stdoutFile: string;
  /** Absolute file receiving the rule's stderr. */
  stderrFile: string;
}

/**
 * Runs `libexec/redo-spawner.sh` once; each request is written to its stdin as
 * "<id> <quoted command line>" (or just "<id>" with the command in the file `j.<id>`
 * of the run directory when it contains a newline). The spawner answers "<id> <exit status>" on its stdout.
 * If this process dies, the spawner's stdin closes and it exits.
 */
export class RuleSpawner {
  private readonly child: ChildProcess;
  private readonly pending = new Map<string, (status: number) => void>();
  private counter = 0;
  private buffered = '';

  /** Starts the spawner with the environment shared by every rule. */
  constructor(private readonly runDir: string, libexecDir: string, env: NodeJS.ProcessEnv) {
    this.child = spawn('sh', [path.join(libexecDir, 'redo-spawner.sh'), runDir], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (text: string) => this.receive(text));
    this.child.on('error', () => this.failAll());
    this.child.on('exit', () => this.failAll());
  }

  /** Starts the rule; resolves to its exit status (127 if it could not start). */
  run(request: SpawnRequest): Promise<number> {
    this.counter += 1;
    const id = String(this.counter);
    const assignments = Object.entries(request.env).map(([name, value]) => `${name}=${quote(value)} `).join('');
    const commandLine = `cd -- ${quote(request.cwd)} && ${assignments}${request.argv.map(quote).join(' ')} </dev/null >${quote(request.stdoutFile)} 2>${quote(request.stderrFile)}`;
    // One line per job on the spawner's stdin; a command with a newline goes in a file.
    const isInline = !commandLine.includes('\n');
    const jobFile = path.join(this.runDir, `j.${id}`);
    if (!isInline) fs.writeFileSync(jobFile, `${commandLine}\n`);
    return new Promise((resolve) => {
      this.pending.set(id, (status) => {
        if (!isInline) fs.rmSync(jobFile, { force: true });
        resolve(status);
      });
      this.child.stdin?.write(isInline ? `${id} ${commandLine}\n` : `${id}\n`);
    });
  }

  private receive(text: string): void {
    this.buffered += text;
    for (let newline = this.buffered.indexOf('\n'); newline !== -1; newline = this.buffered.indexOf('\n')) {
      const [id = '', status = ''] = this.buffered.slice(0, newline).split(' ');
      this.buffered = this.buffered.slice(newline + 1);
      const resolve = this.pending.get(id);
      this.pending.delete(id);
      resolve?.(Number.parseInt(status, 10));
    }
  }

  private failAll(): void {
    for (const resolve of this.pending.values()) resolve(127);
    this.pending.clear();
  }

  /** Closes the spawner's stdin so it exits once idle. */
  close(): void {
    this.child.stdin?.end();
    this.child.stdout?.destroy();
    this.child.unref();
  }
}

/** Quotes `value` for sh with single quotes. Pure. */
export function quote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}
