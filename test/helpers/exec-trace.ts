// Runs the built redo-ts under `strace -f` and lists what it and its children started.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cliEnvironment, repoRoot } from './rig.js';

const bin = join(repoRoot, 'bin', 'redo-ts.js');

/** The file name this Node runs as (`node` on most machines, `nodejs` on some), as programsStarted lists it. */
export const node = basename(process.execPath);

/** True when strace runs here. */
export const hasStrace = spawnSync('strace', ['-V']).status === 0;

/** Runs redo-ts ARGS in `dir` under `strace -f -e trace=TRACE` (extra environment in `env`); returns its status, stderr and the trace lines. */
export function traced(dir: string, trace: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stderr: string; lines: string[] } {
  const log = join(dir, '..', `${basename(dir)}.strace`);
  const result = spawnSync('strace', ['-f', '-qq', '-e', `trace=${trace}`, '-o', log, process.execPath, bin, ...args], { cwd: dir, env: { ...cliEnvironment(), ...env }, encoding: 'utf8' });
  const lines = readFileSync(log, 'utf8').split('\n');
  rmSync(log, { force: true });
  return { status: result.status, stderr: result.stderr, lines };
}

/**
 * The programs started by exec (successful execve calls), by file name, in order. An
 * execve that another process's call interrupted in the trace is split in two lines
 * (`<unfinished ...>`, then `<... execve resumed>`): joined by pid.
 */
export function programsStarted(lines: string[]): string[] {
  const unfinished = new Map<string, string>();
  return lines.flatMap((line) => {
    const pid = /^(\d+) /.exec(line)?.[1] ?? '';
    if (/execve\(.*<unfinished \.\.\.>$/.test(line)) {
      unfinished.set(pid, line.replace(/ <unfinished \.\.\.>$/, ''));
      return [];
    }
    const resumed = /<\.\.\. execve resumed>(.*)$/.exec(line);
    const whole = resumed === null ? line : `${unfinished.get(pid) ?? ''}${resumed[1]}`;
    const match = /execve\("([^"]+)".* = 0$/.exec(whole);
    return match === null ? [] : [basename(match[1]!)];
  });
}
