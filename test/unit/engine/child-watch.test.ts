// child-watch.ts: every node:child_process launcher, in every argument shape, tells the
// watcher first and gives a child that inherits the environment REDO_RUN_DIR.
import * as childProcess from 'node:child_process';
import { exec, execFile, execFileSync, execSync, spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { unwatched, watchChildren } from '../../../lib/engine/child-watch.js';

const print = 'echo "${REDO_RUN_DIR:-none}"';

/** The stdout of `child` once it closes. */
function output(child: childProcess.ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('close', () => resolve(text));
  });
}

describe('watchChildren', () => {
  let stop: (() => void) | undefined;
  afterEach(() => {
    stop?.();
    stop = undefined;
  });

  it('calls the watcher before each child, in every argument shape, and adds REDO_RUN_DIR only where the environment is inherited', async () => {
    let calls = 0;
    stop = watchChildren({ beforeChild: () => ((calls += 1), '/run/x') });
    const seen: string[] = [];
    seen.push(execFileSync('sh', ['-c', print], { encoding: 'utf8' }));
    seen.push(execSync(print, { encoding: 'utf8' }));
    seen.push(spawnSync('sh', ['-c', print], { encoding: 'utf8' }).stdout);
    seen.push(await output(spawn('sh', ['-c', print])));
    // Callback in the options' place; no argument list.
    seen.push(await new Promise<string>((resolve) => execFile('sh', ['-c', print], (_error, stdout) => resolve(String(stdout)))));
    seen.push(await new Promise<string>((resolve) => exec(print, (_error, stdout) => resolve(String(stdout)))));
    seen.push(await new Promise<string>((resolve) => execFile('/usr/bin/env', (_error, stdout) => resolve(/^REDO_RUN_DIR=(.*)$/m.exec(String(stdout))?.[1] ?? 'none'))).then((text) => `${text}\n`));
    // The promisified forms, and the module object as require() gives it.
    seen.push((await promisify(execFile)('sh', ['-c', print])).stdout);
    seen.push((await promisify(exec)(print)).stdout);
    seen.push((createRequire(import.meta.url)('node:child_process') as typeof childProcess).execFileSync('sh', ['-c', print], { encoding: 'utf8' }));
    expect(seen).toEqual(Array.from({ length: 10 }, () => '/run/x\n'));
    // exec calls the module's execFile, so it is seen twice (the second finds its env set).
    expect(calls).toBe(12);
    // An explicit environment is passed as given, and the watcher is shown it.
    stop();
    const given: Array<NodeJS.ProcessEnv | undefined> = [];
    stop = watchChildren({ beforeChild: (env) => ((calls += 1), given.push(env), '/run/x') });
    expect(execFileSync('sh', ['-c', print], { encoding: 'utf8', env: { PATH: process.env.PATH, REDO_PARENT: '7' } })).toBe('none\n');
    execFileSync('true');
    expect(given).toEqual([{ PATH: process.env.PATH, REDO_PARENT: '7' }, undefined]);
    expect(calls).toBe(14);
    // Children a watcher starts itself tell no watcher.
    expect(unwatched(() => execFileSync('sh', ['-c', print], { encoding: 'utf8' }))).toBe('none\n');
    expect(calls).toBe(14);
  });

  it('passes children through untouched once no watcher is left', () => {
    let calls = 0;
    watchChildren({ beforeChild: () => ((calls += 1), '/run/y') })();
    expect(execFileSync('sh', ['-c', print], { encoding: 'utf8' })).toBe('none\n');
    expect(calls).toBe(0);
  });

  it('a watcher that throws stops the child from starting', () => {
    stop = watchChildren({
      beforeChild: () => {
        throw new Error('no spawner');
      },
    });
    expect(() => execFileSync('sh', ['-c', 'exit 0'])).toThrow('no spawner');
  });
});
