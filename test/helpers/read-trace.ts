/** Counts the bytes a run of the built CLI reads from each file, with strace (read calls and kernel copies, by file descriptor path). */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnvironment, repoRoot } from './rig.js';

/** What tracedRedo saw: the exit status, stderr, and the bytes read from each path. */
export interface TracedRun {
  status: number | null;
  stderr: string;
  bytesByPath: Map<string, number>;
}

/**
 * Runs `redo-ts ARGS` in `dir` with `env` under `strace -ff -y` and sums, per file path,
 * what read, pread64, readv, preadv returned and what copy_file_range and sendfile
 * moved out of it (a kernel copy reads the source file too). The trace file is removed.
 */
export function tracedRedo(dir: string, args: string[], env: NodeJS.ProcessEnv): TracedRun {
  const folder = mkdtempSync(join(tmpdir(), 'redo-ts-trace-'));
  const trace = join(folder, 'trace');
  try {
    const result = spawnSync('strace', ['-ff', '-qq', '-y', '-e', 'trace=read,pread64,readv,preadv,copy_file_range,sendfile', '-o', trace, process.execPath, join(repoRoot, 'bin', 'redo-ts.js'), ...args], {
      cwd: dir,
      env: cliEnvironment(env),
      encoding: 'utf8',
    });
    const bytesByPath = new Map<string, number>();
    // One file per thread (-ff), so no call is split into "unfinished" and "resumed" halves.
    const lines = readdirSync(folder).sort().flatMap((name) => readFileSync(join(folder, name), 'utf8').split('\n'));
    for (const line of lines) {
      // read(FD<PATH>, ...) = N; copy_file_range(IN<PATH>, ...) = N; sendfile(OUT<...>, IN<PATH>, ...) = N
      const match = /(?:read|pread64|readv|preadv|copy_file_range)\(\d+<([^>]*)>.*\) = (\d+)$/.exec(line) ?? /sendfile\(\d+<[^>]*>, \d+<([^>]*)>.*\) = (\d+)$/.exec(line);
      if (match === null) continue;
      bytesByPath.set(match[1]!, (bytesByPath.get(match[1]!) ?? 0) + Number(match[2]));
    }
    return { status: result.status, stderr: result.stderr, bytesByPath };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
