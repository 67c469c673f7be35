/** Starts sh rules through one long-lived sh process, because a Node spawn per rule is slow. */

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One sh rule to start: `sh -e [flags] RULE ARGS...` in `cwd`. */
export interface SpawnRequest {
  /** Absolute working directory. */
  cwd: string;
  /** Extra shell options, e.g. ['-x']. */
  shellFlags: string[];
  /** The rule path as $0 (relative to cwd or absolute). */
  rule: string;
  /** $1 $2 $3. */
  args: string[];
  /** Extra variables for this rule only (e.g. REDO_PARENT). */
  env: Record<string, string>;
  /** Variables of the spawner's environment this rule must not see. */
  unsetEnv?: string[];
  /** Octal umask for this rule (e.g. "0022"); default: the spawner's. */
  umask?: string;
  /** The interpreter from the rule's `#!` line (words), run instead of `sh -e`. */
  interpreter?: string[];
  /**
   * A plain rule (no interpreter, no shell flags) that needs no process of its own: sourced
   * by a subshell of the spawner (`$0` is then "sh", and `$$` the spawner's pid).
   */
  isSourced?: boolean;
  /**
   * A sourced rule that names neither `trap` nor `exec`: sourced by the spawner's background
   * job itself (one fork per rule, not two), whose EXIT trap reports its status.
   */
  isSourcedByJob?: boolean;
}

/** A started rule: where its output goes, and its exit status once it ends. */
export interface SpawnedRule {
  /** Absolute file receiving the rule's stdout. */
  stdoutFile: string;
  /** Absolute file receiving the rule's stderr. */
  stderrFile: string;
  /** Exit status (128 + signal number when killed by a signal, as sh reports it). */
  status: Promise<number>;
}

interface Pending {
  resolve(status: number): void;
  /** The job's pid until it is found gone. */
  pid: number | undefined;
  isFileJob: boolean;
}

/**
 * Runs `libexec/redo-spawner.sh` once. Each rule is started, in a background subshell
 * of the spawner, as
 *   cd -- DIR && sh -e [-x|-v] RULE $1 $2 $3; echo <id> $? >&9
 * (a plain rule: `(__redo_ts_enter;set -e -- $1 $2 $3;. RULE)`, sourced by a subshell of
 * the spawner; one that names $0, $$ or $PPID: `sh -e -c "$redo_rule_c" RULE $1 $2 $3`,
 * which sources libexec/redo-rule.sh and then the rule)
 * The subshell, not the rule, reports the status: a rule may set its own EXIT trap,
 * `exec` another program or be killed, and its status still arrives. A plain rule whose
 * text names neither `trap` nor `exec` is sourced by the background subshell itself, as
 *   trap 'command echo <id> $? >&9' EXIT;cd -- DIR && ... || exit;set -e -- $1 $2 $3;. RULE
 * (one fork per rule, not two). If a job ends without a status (killed, or its rule
 * exec'd or trapped EXIT in a file it sourced), a timer notices its pid is gone and
 * asks the spawner for the status sh kept (`wait <pid>`). If
 * this process dies (its input ends without an `exit` line), the spawner stops every
 * process of the build, as stopBuildProcesses does, and exits.
 */
export class RuleSpawner {
  private readonly child: ChildProcess;
  private readonly pending = new Map<string, Pending>();
  private counter = 0;
  private buffered = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly plainShell: string;

  /** Starts the spawner in `runDir` with the environment shared by every rule. */
  constructor(private readonly runDir: string, libexecDir: string, env: NodeJS.ProcessEnv) {
    // A plain sh rule is sourced by libexec/redo-rule.sh, which makes the redo-* calls in it
    // aliases of a shell function: a fork per call instead of a fork and a dash start.
    // The -c text is the spawner's $2 ($redo_rule_c), so each rule's line stays short: sh's
    // `read` takes a pipe one byte per system call.
    const ruleCommand = `__redo_ts_libexec=${quote(libexecDir)}; . "$__redo_ts_libexec/redo-rule.sh"`;
    this.plainShell = 'sh -e -c "$redo_rule_c"';
    // As `sh -c` with $0 "sh": dash starts its messages with $0, so an error in a rule its
    // subshells source reads "sh: LINE: RULE: ...", not the spawner's path.
    const script = `redo_spawner=${quote(path.join(libexecDir, 'redo-spawner.sh'))}; . "$redo_spawner"`;
    this.child = spawn('sh', ['-c', script, 'sh', runDir, ruleCommand], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (text: string) => this.receive(text));
    // A spawner killed with the build (a signal's sweep) makes writes to it fail with EPIPE.
    this.child.stdin?.on('error', () => undefined);
    this.child.on('error', () => this.failAll());
    this.child.on('exit', () => this.failAll());
  }

  /** Starts the rule described by `request`. */
  run(request: SpawnRequest): SpawnedRule {
    this.counter += 1;
    const id = String(this.counter);
    const isSourced = request.isSourced === true && request.interpreter === undefined && request.shellFlags.length === 0;
    const assignments = Object.entries(request.env).map(([name, value]) => `${name}=${quote(value)}`).join(' ');
    const unset = request.unsetEnv === undefined || request.unsetEnv.length === 0 ? '' : `unset ${request.unsetEnv.join(' ')} && `;
    const umask = request.umask === undefined ? '' : `umask ${request.umask} && `;
    let run: string;
    let commandLine: string | undefined;
    if (isSourced && request.isSourcedByJob === true) {
      // The job's shell is the rule's: the trap is set before anything can fail, and its
      // `command echo` is the builtin even if the rule defines an `echo` function.
      const exported = assignments === '' ? '' : `export ${assignments} && `;
      commandLine = `trap 'command echo ${id} $? >&9' EXIT;cd -- ${quote(request.cwd)} && ${unset}${umask}${exported}__redo_ts_enter || exit;set -e -- ${request.args.map(quote).join(' ')};. ${quote(request.rule)}`;
      run = '';
    } else if (isSourced) {
      // In the background subshell: the rule's variables exported, then a subshell of its
      // own, so its `exit`, `exec` and EXIT trap end only that one and its status arrives.
      const exported = assignments === '' ? '' : `export ${assignments} && `;
      run = `${exported}(__redo_ts_enter;set -e -- ${request.args.map(quote).join(' ')};. ${quote(request.rule)})`;
    } else {
      const program = request.interpreter === undefined
        ? (request.shellFlags.length === 0 ? this.plainShell : ['sh', '-e', ...request.shellFlags].join(' '))
        : [...request.interpreter, ...request.shellFlags].map(quote).join(' ');
      run = `${assignments === '' ? '' : `${assignments} `}${program} ${[request.rule, ...request.args].map(quote).join(' ')}`;
    }
    commandLine ??= `cd -- ${quote(request.cwd)} && ${unset}${umask}${run} 9>&-; echo ${id} $? >&9`;
    // In a file the spawner's background subshell sources (one read), not on its stdin,
    // which sh's `read` takes one byte per system call; short lines without a newline only.
    const isFileJob = commandLine.length > 48 || commandLine.includes('\n');
    if (isFileJob) fs.writeFileSync(path.join(this.runDir, `j.${id}`), `${commandLine}\n`);
    const status = new Promise<number>((resolve) => {
      this.pending.set(id, { resolve, pid: undefined, isFileJob });
      this.child.stdin?.write(isFileJob ? `${id}\n` : `${id} ${commandLine}\n`);
    });
    this.timer ??= setInterval(() => this.checkAlive(), 1000);
    return { stdoutFile: path.join(this.runDir, `o.${id}`), stderrFile: path.join(this.runDir, `e.${id}`), status };
  }

  private receive(text: string): void {
    this.buffered += text;
    for (let newline = this.buffered.indexOf('\n'); newline !== -1; newline = this.buffered.indexOf('\n')) {
      const [id = '', ...rest] = this.buffered.slice(0, newline).split(' ');
      this.buffered = this.buffered.slice(newline + 1);
      if (id === 'pids') {
        // "pids <id>:<pid>...": the jobs started since the last liveness check.
        for (const pair of rest) {
          const [jobId = '', pid = ''] = pair.split(':');
          const started = this.pending.get(jobId);
          if (started !== undefined) started.pid = Number.parseInt(pid, 10);
        }
        continue;
      }
      const entry = this.pending.get(id);
      if (entry !== undefined) this.finish(id, entry, Number.parseInt(rest[0] ?? '', 10));
    }
  }

  private finish(id: string, entry: Pending, status: number): void {
    this.pending.delete(id);
    if (entry.isFileJob) {
      try {
        fs.unlinkSync(path.join(this.runDir, `j.${id}`));
      } catch {
        // Gone with the run directory.
      }
    }
    if (this.pending.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    entry.resolve(Number.isInteger(status) ? status : 127);
  }

  /** Finds rules that died without reporting (killed by a signal). */
  private checkAlive(): void {
    // An empty line makes the spawner reap finished children, so dead pids disappear, and
    // tell the pids of the jobs it started since (checked from the next tick on).
    this.child.stdin?.write('\n');
    for (const [id, entry] of this.pending) {
      const pid = entry.pid;
      if (pid === undefined) continue;
      let isGone = false;
      try {
        process.kill(pid, 0);
      } catch {
        isGone = true;
      }
      if (!isGone) continue;
      // Gone (reaped by the spawner) without its status: a job killed, or whose rule exec'd
      // or trapped EXIT in a file it sourced. The spawner answers with the status sh kept
      // for `wait`; a status the job wrote itself came first through the same pipe.
      entry.pid = undefined;
      this.child.stdin?.write(`wait ${id} ${pid}\n`);
    }
  }

  private failAll(): void {
    for (const [id, entry] of [...this.pending]) this.finish(id, entry, 127);
  }

  /** The spawner's pid (undefined when it could not start). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Tells the spawner to exit (an end of input without this means the engine died). */
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.child.stdin?.end('exit\n');
    this.child.stdout?.destroy();
    this.child.unref();
  }
}

/** Quotes `value` for sh with single quotes. Pure. */
export function quote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * Stops every process of the build whose run directory is `runDir`, and every
 * descendant of this process: sends SIGTERM, waits up to `graceMs` for them to end,
 * then sends SIGKILL to the rest. A process belongs to the build when its environment
 * names the run directory (REDO_RUN_DIR: every rule, and what rules start, even after
 * it was re-parented). Linux /proc only; elsewhere, descendants cannot be found and
 * only the spawner's own clean-up applies. With `isOwnRun` false (a dead engine's run),
 * only the processes naming `runDir` are stopped, not this process's descendants.
 */
export async function stopBuildProcesses(runDir: string | undefined, graceMs: number, isOwnRun = true): Promise<void> {
  const marker = runDir === undefined ? undefined : `\0REDO_RUN_DIR=${runDir}\0`;
  const find = (): number[] => {
    const parents = new Map<number, number>();
    const found = new Set<number>();
    let names: string[];
    try {
      names = fs.readdirSync('/proc');
    } catch {
      return [];
    }
    for (const name of names) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      try {
        const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()?.split(' ') ?? [];
        // A zombie has ended already; it only waits for its parent to collect its status.
        if (fields[0] === 'Z') continue;
        parents.set(pid, Number(fields[1]));
        if (marker !== undefined && `\0${fs.readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(marker)) found.add(pid);
      } catch {
        // Gone meanwhile, or not ours to read.
      }
    }
    for (const pid of isOwnRun ? parents.keys() : []) {
      for (let up = parents.get(pid), depth = 0; up !== undefined && up > 1 && depth < 64; up = parents.get(up), depth += 1) {
        if (up === process.pid) found.add(pid);
      }
    }
    return [...found];
  };
  const signal = (pids: number[], name: NodeJS.Signals): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, name);
      } catch {
        // Already gone.
      }
    }
  };
  signal(find(), 'SIGTERM');
  const deadlineMs = Date.now() + graceMs;
  let remaining = find();
  while (remaining.length > 0 && Date.now() < deadlineMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    remaining = find();
  }
  signal(remaining, 'SIGKILL');
}
