/** Real image clients for tests: podman with a private store, a loopback registry, skopeo/umoci runners. */

import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/** True when `name` is on PATH (tests skip, saying why, only when a tool cannot exist). */
export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}

/** Runs a command to completion; throws with its stderr when it exits non-zero. */
export function runTool(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    input: options.input,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}\n${result.stderr}`);
  }
  return result;
}

/**
 * A podman with its own storage under a temporary folder, flags that work on these
 * machines (runc by name, vfs, cgroupfs, file events). `podman(args)` runs it;
 * `runArgs` are the flags every `podman run` needs here; `remove()` deletes the store.
 */
export interface PrivatePodman {
  root: string;
  baseArgs: string[];
  runArgs: string[];
  podman(args: string[]): SpawnSyncReturns<string>;
  remove(): void;
}

/** Creates a PrivatePodman in a fresh folder under os.tmpdir(). */
export function createPrivatePodman(): PrivatePodman {
  const root = mkdtempSync(join(tmpdir(), 'redo-ts-podman-'));
  const baseArgs = [
    '--root', join(root, 'root'),
    '--runroot', join(root, 'runroot'),
    '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs',
    '--runtime', 'runc',
    '--events-backend', 'file',
    '--tmpdir', join(root, 'tmp'),
  ];
  mkdirSync(join(root, 'tmp'), { recursive: true });
  const runArgs = ['--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
  return {
    root,
    baseArgs,
    runArgs,
    podman: (args) => runTool('podman', [...baseArgs, ...args]),
    remove: () => {
      // vfs layers are plain folders; podman can remove them, then the tree goes.
      spawnSync('podman', [...baseArgs, 'system', 'reset', '--force'], { encoding: 'utf8' });
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Whether a server can listen on 127.0.0.1:`port` now (it is closed again before this resolves). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free TCP port on 127.0.0.1 (bound once, released, then handed out), for a server
 * to start on or for an address where nothing listens. Test files run in parallel, so
 * it is not one the kernel picks for port 0 (any process's next listen(0) or outgoing
 * connection may take that one meanwhile): it comes from below the kernel's ephemeral
 * range (32768 and up), from a block of 3,000 ports of its own for each vitest worker
 * (VITEST_POOL_ID), so no other file that runs at the same time is handed it.
 */
export async function freePort(): Promise<number> {
  const worker = Number(process.env.VITEST_POOL_ID ?? '1');
  const base = 20_000 + ((Number.isInteger(worker) && worker > 0 ? worker - 1 : 0) % 4) * 3_000;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = base + randomInt(3_000);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 between ${base} and ${base + 2_999}`);
}

/** A running loopback `docker-registry`; `address` is "127.0.0.1:PORT". */
export interface LoopbackRegistry {
  address: string;
  pid: number;
  /** The registry's storage folder (blobs under docker/registry/v2/blobs/sha256/). */
  storageDir: string;
  stop(): Promise<void>;
}

/**
 * Starts Debian's `docker-registry` (distribution v2) on 127.0.0.1 at a free port,
 * with a temporary config and storage folder (and Basic or token auth when asked);
 * waits until /v2/ answers. `stop()`
 * kills it by PID and removes the folder.
 */
export async function startRegistry(
  options: {
    htpasswd?: { user: string; password: string };
    token?: { realm: string; service: string; issuer: string; certPath: string };
    /** Serve this storage folder (another registry's, stopped) instead of a new one; it is not removed. */
    storageDir?: string;
    /** Maintenance read-only mode: reads work, every write is refused. */
    isReadOnly?: boolean;
  } = {},
): Promise<LoopbackRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'redo-ts-registry-'));
  const storageDir = options.storageDir ?? join(dir, 'storage');
  const auth: string[] = [];
  if (options.htpasswd !== undefined) {
    // Basic auth with a bcrypt htpasswd file (apache2-utils' htpasswd -B).
    const line = runTool('htpasswd', ['-nbB', options.htpasswd.user, options.htpasswd.password]).stdout.trim();
    writeFileSync(join(dir, 'htpasswd'), `${line}\n`);
    auth.push('auth:', '  htpasswd:', '    realm: redo-ts-test', `    path: ${join(dir, 'htpasswd')}`);
  }
  if (options.token !== undefined) {
    // Bearer tokens from a token server (helpers/token-server.ts) whose cert the registry trusts.
    const { realm, service, issuer, certPath } = options.token;
    auth.push('auth:', '  token:', `    realm: ${realm}`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${certPath}`);
  }
  // Test files run in parallel: the free port may be taken again before the registry
  // binds it (then it exits, and another port is tried), and only an answer carrying
  // this registry's own header proves /v2/ is ours, not another test's registry.
  const marker = basename(dir);
  let address = '';
  let child: ChildProcess | undefined;
  let stderr = '';
  for (let attempt = 1; child === undefined; attempt++) {
    address = `127.0.0.1:${await freePort()}`;
    const config = [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storageDir}`,
      ...(options.isReadOnly === true ? ['  maintenance:', '    readonly:', '      enabled: true'] : []),
      'http:',
      `  addr: ${address}`,
      '  headers:',
      `    X-Redo-Ts-Test-Registry: [${marker}]`,
      ...auth,
      '',
    ].join('\n');
    writeFileSync(join(dir, 'config.yml'), config);
    const started = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    stderr = '';
    started.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const response = await fetch(`http://${address}/v2/`);
        if ((response.status === 200 || response.status === 401) && response.headers.get('x-redo-ts-test-registry') === marker) {
          child = started;
          break;
        }
      } catch {
        // Not listening yet.
      }
      if (started.exitCode !== null || Date.now() > deadline) {
        const exited = started.exitCode !== null;
        started.kill('SIGKILL');
        if (exited && attempt < 5) break;
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`docker-registry did not start on ${address}\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const running: ChildProcess = child;
  return {
    address,
    pid: running.pid!,
    storageDir,
    stop: async () => {
      if (running.exitCode === null) {
        const exited = new Promise((r) => running.once('exit', r));
        process.kill(running.pid!, 'SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
