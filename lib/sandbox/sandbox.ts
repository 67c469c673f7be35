/** Running one command in a sandbox over a build environment's root: the one module that wraps bubblewrap (or util-linux unshare). */

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { RedoError } from '../errors.js';

/**
 * A build environment: a root folder assembled from locked packages and fragments
 * (assembleBuildEnvironment), used read-only as the sandbox's `/`.
 */
export interface BuildEnvironment {
  /** Absolute host path of the root folder (kept in the cache by content; never written to). */
  rootPath: string;
  /** sha256 hex of what the environment was assembled from: its identity. */
  key: string;
  /** Where the environment's packages are declared, for messages (`targets/build-environment.spec.yaml`, ...). */
  declaredIn: string[];
}

/** A host folder made visible inside the sandbox. */
export interface SandboxBind {
  /** Absolute host path (a folder). */
  hostPath: string;
  /** Absolute path inside the sandbox, below `/build` (`/build/src`). */
  sandboxPath: string;
  /** Writable from inside (false: read-only). */
  isWritable: boolean;
}

/** One command to run: argv inside the sandbox, resolved on the sandbox's PATH. */
export interface SandboxStep {
  /** What the step is called in messages: `build[0]`, `pip install`. */
  label: string;
  /** Command and arguments, e.g. `['/bin/sh', '-eu', '-c', text]`. */
  argv: string[];
}

/** Options of runInSandbox. */
export interface SandboxRunOptions {
  /** Folders bound below `/build` (sources, DESTDIR, HOME, caches). */
  binds: SandboxBind[];
  /** Working directory inside the sandbox (default `/build`). */
  cwd?: string;
  /** Variables added over the fixed ones (PATH, HOME, TZ, LC_ALL, ...), e.g. DESTDIR, SRCDIR. */
  env?: Record<string, string>;
  /** SOURCE_DATE_EPOCH inside (default 0). */
  sourceDateEpoch?: number;
  /** The caller's environment: where bwrap/unshare are looked up, REDO_TS_SANDBOX, REDO_RUN_DIR. Never passed inside. */
  hostEnv?: NodeJS.ProcessEnv;
  /** The subject of messages, e.g. `"targets/app.spec.yaml"`. */
  subject: string;
  /** Where a missing tool should be added, for the hint (e.g. `targets/build-environment.spec.yaml or this spec's build-requires`). */
  packageListHint?: string;
  /** Every chunk of stdout and stderr (default: kept only for messages). */
  onOutput?: (chunk: Buffer) => void;
  /** Stdout alone, instead of onOutput, e.g. to capture a listing. */
  onStdout?: (chunk: Buffer) => void;
}

/** The sandbox tools redo-ts can use: `bwrap` (bubblewrap) first, else util-linux `unshare`. */
export type SandboxTool = 'bwrap' | 'unshare';

/** The fixed paths and identity inside every sandbox (docs/specs.md, "The build sandbox"). */
export const sandboxFacts = {
  hostname: 'redo-ts',
  uid: 0,
  gid: 0,
  home: '/build/home',
  path: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  /** Folders an environment root must hold as mount points. */
  mountPoints: ['build', 'dev', 'proc', 'tmp'],
} as const;

/**
 * Runs `step.argv` in a sandbox whose `/` is `environment.rootPath`, read-only:
 * private user (uid/gid 0 inside, the caller outside), mount, pid, ipc, uts (hostname
 * `redo-ts`) and network namespaces (loopback only: no route out); a fresh /proc, a
 * minimal /dev, an empty /tmp and /build (tmpfs) with `binds` mounted below it;
 * umask 022 and a clean environment: PATH (the environment's folders only), HOME
 * `/build/home`, TZ=UTC, LC_ALL=C.UTF-8, SOURCE_DATE_EPOCH, then `options.env`.
 * No host folder is visible but the binds.
 *
 * The tool is bubblewrap when `bwrap` is on the caller's PATH (or /usr/bin), else
 * util-linux's `unshare` (with mount and chroot-like --root); REDO_TS_SANDBOX=bwrap or
 * =unshare forces one. Resolves when the command exits 0. Throws RedoError:
 * ERR_SANDBOX_UNAVAILABLE (no tool, or the kernel refuses user namespaces: how to fix),
 * ERR_BUILD_TOOL_MISSING (the command or one the step runs is not in the environment:
 * names it and where to add it), ERR_BUILD_NETWORK (the step failed reaching for the
 * network), ERR_SPEC_BUILD_FAILED (any other non-zero exit: status and last lines).
 */
export function runInSandbox(environment: BuildEnvironment, step: SandboxStep, options: SandboxRunOptions): Promise<void> {
  const hostEnv = options.hostEnv ?? process.env;
  const tool = chooseSandboxTool(hostEnv, options.subject);
  const inside: Record<string, string> = {
    PATH: sandboxFacts.path,
    HOME: sandboxFacts.home,
    TZ: 'UTC',
    LC_ALL: 'C.UTF-8',
    LANG: 'C.UTF-8',
    USER: 'root',
    LOGNAME: 'root',
    TMPDIR: '/tmp',
    SOURCE_DATE_EPOCH: String(options.sourceDateEpoch ?? 0),
    ...(options.env ?? {}),
  };
  const cwd = options.cwd ?? '/build';
  const command = tool.kind === 'bwrap'
    ? bwrapCommand(tool.path, environment, step, options.binds, cwd, inside)
    : unshareCommand(tool.path, environment, step, options.binds, cwd, inside);
  // Only REDO_RUN_DIR reaches the sandbox tool's own environment: it is the marker the
  // engine uses to find (and stop) what an abandoned build left running.
  const outerEnv: NodeJS.ProcessEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };
  if (hostEnv.REDO_RUN_DIR !== undefined) outerEnv.REDO_RUN_DIR = hostEnv.REDO_RUN_DIR;
  return new Promise((resolvePromise, reject) => {
    // The child inherits the umask at spawn time; set it for that instant only.
    const previousUmask = process.umask(0o022);
    let child;
    try {
      child = spawn(command[0]!, command.slice(1), { env: outerEnv, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    } finally {
      process.umask(previousUmask);
    }
    const tail: string[] = [];
    const keep = (chunk: Buffer): void => {
      options.onOutput?.(chunk);
      tail.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      tail.splice(0, Math.max(0, tail.length - 8));
    };
    child.stdout.on('data', options.onStdout ?? keep);
    child.stderr.on('data', keep);
    child.on('error', (cause) => reject(unavailable(options.subject, `could not start ${tool.path}: ${cause.message}`, cause)));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(stepFailure(tool.kind, step, options, code, signal, tail));
    });
  });
}

/**
 * Which sandbox tool runs steps here: REDO_TS_SANDBOX (`bwrap` or `unshare`) if set,
 * else bwrap when found, else unshare. Throws ERR_SANDBOX_UNAVAILABLE when neither is
 * installed (there is never a fall-back to running steps on the host).
 */
export function chooseSandboxTool(hostEnv: NodeJS.ProcessEnv, subject: string): { kind: SandboxTool; path: string } {
  const forced = hostEnv.REDO_TS_SANDBOX;
  if (forced !== undefined && forced !== '' && forced !== 'bwrap' && forced !== 'unshare') {
    throw new RedoError('ERR_SANDBOX_UNAVAILABLE', `redo: ${subject}: REDO_TS_SANDBOX="${forced}" names no sandbox tool`, {
      hint: 'set REDO_TS_SANDBOX to bwrap or unshare, or unset it to let redo-ts choose',
    });
  }
  const wanted: SandboxTool[] = forced === 'bwrap' || forced === 'unshare' ? [forced] : ['bwrap', 'unshare'];
  for (const kind of wanted) {
    const path = findProgram(kind, hostEnv);
    if (path !== undefined) return { kind, path };
  }
  throw unavailable(subject, `no sandbox tool: ${wanted.map((kind) => (kind === 'bwrap' ? 'bwrap (bubblewrap)' : 'unshare (util-linux)')).join(' nor ')} is installed`);
}

function findProgram(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of `${env.PATH ?? ''}:/usr/bin:/bin:/usr/sbin:/sbin`.split(':').filter((entry) => entry.startsWith('/'))) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

function bwrapCommand(bwrap: string, environment: BuildEnvironment, step: SandboxStep, binds: SandboxBind[], cwd: string, inside: Record<string, string>): string[] {
  const args = [
    bwrap, '--unshare-all', '--die-with-parent', '--new-session',
    '--uid', String(sandboxFacts.uid), '--gid', String(sandboxFacts.gid), '--hostname', sandboxFacts.hostname,
    '--ro-bind', environment.rootPath, '/',
    '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--tmpfs', '/build',
  ];
  for (const bind of binds) args.push(bind.isWritable ? '--bind' : '--ro-bind', bind.hostPath, bind.sandboxPath);
  // /build itself read-only once its mount points exist: only the binds are writable.
  args.push('--remount-ro', '/build', '--chdir', cwd, '--clearenv');
  for (const [name, value] of Object.entries(inside)) args.push('--setenv', name, value);
  args.push('--', ...step.argv);
  return args;
}

/**
 * The fall-back where bubblewrap is missing: util-linux `unshare` makes the same
 * namespaces, then a host sh (setup only: it never runs a step) mounts the root
 * read-only, /proc, a tmpfs /dev with the usual devices bound from the host, tmpfs /tmp
 * and /build with the binds, and `unshare --root --wd` enters it with a clean environment.
 */
function unshareCommand(unshare: string, environment: BuildEnvironment, step: SandboxStep, binds: SandboxBind[], cwd: string, inside: Record<string, string>): string[] {
  const q = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;
  // The root is bound onto itself: every mount below is private to this mount
  // namespace (unshare makes propagation private), so nothing shows on the host.
  const lines = [
    'fail() { echo "redo-ts sandbox: $1 failed" >&2; exit 125; }',
    `R=${q(environment.rootPath)}`,
    'mount --bind "$R" "$R" || fail "bind of the environment root"',
    'mount -o remount,bind,ro "$R" || fail "read-only remount of the root"',
    'mount -t proc proc "$R/proc" || fail "mount of /proc"',
    'mount -t tmpfs -o mode=1777 tmpfs "$R/tmp" || fail "mount of /tmp"',
    'mount -t tmpfs -o mode=755 tmpfs "$R/dev" || fail "mount of /dev"',
    'for d in null zero full random urandom tty; do : > "$R/dev/$d" && mount --bind "/dev/$d" "$R/dev/$d" || fail "bind of /dev/$d"; done',
    'ln -s /proc/self/fd "$R/dev/fd"; ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"',
    'mkdir "$R/dev/shm" "$R/dev/pts"',
    'mount -t tmpfs -o mode=755 tmpfs "$R/build" || fail "mount of /build"',
  ];
  for (const bind of binds) {
    lines.push(`mkdir -p "$R"${q(bind.sandboxPath)} && mount --bind ${q(bind.hostPath)} "$R"${q(bind.sandboxPath)} || fail ${q(`bind of ${bind.sandboxPath}`)}`);
    if (!bind.isWritable) lines.push(`mount -o remount,bind,ro "$R"${q(bind.sandboxPath)} || fail ${q(`read-only remount of ${bind.sandboxPath}`)}`);
  }
  lines.push(
    'mount -o remount,ro "$R/build" || fail "read-only remount of /build"',
    // Loopback up, as bubblewrap does; without `ip` it stays down (no network at all).
    'ip link set lo up 2>/dev/null || true',
    `hostname ${q(sandboxFacts.hostname)} 2>/dev/null || true`,
    `exec env -i ${Object.entries(inside).map(([name, value]) => q(`${name}=${value}`)).join(' ')} ${q(unshare)} --root="$R" --wd=${q(cwd)} -- "$@"`,
  );
  return [unshare, '--user', '--map-root-user', '--mount', '--net', '--uts', '--ipc', '--pid', '--fork', '--kill-child', '/bin/sh', '-c', lines.join('\n'), 'sandbox', ...step.argv];
}

function unavailable(subject: string, what: string, cause?: unknown): RedoError {
  return new RedoError('ERR_SANDBOX_UNAVAILABLE', `redo: ${subject}: build steps cannot be sandboxed: ${what}`, {
    details: [
      'build steps run only in a sandbox (docs/specs.md, "The build sandbox"); redo-ts never falls back to the host\'s tools',
    ],
    hint: 'install bubblewrap (apt-get install bubblewrap) or util-linux; if the kernel refuses user namespaces, enable them: sysctl -w kernel.unprivileged_userns_clone=1 (Debian, Ubuntu) or user.max_user_namespaces=15000, and on Ubuntu 24.04+ kernel.apparmor_restrict_unprivileged_userns=0',
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Refusals of the sandbox tool itself, before the step runs. */
const setupFailure = /^(bwrap: |unshare: |redo-ts sandbox: )/;
/** Lines shells and exec print for a command that does not exist. */
const missingTool = [
  /^(?:[^:\n]*: )?(?:line \d+: )?([^\s:'"]+): (?:command )?not found$/,
  /^bwrap: execvp ([^:\s]+): No such file or directory$/,
  /^unshare: failed to execute ([^:\s]+): No such file or directory$/,
  /can't execute '([^']+)': No such file or directory/,
];
/** What a step prints when it reaches for the network that is not there. */
const networkFailure = /Network is unreachable|can't connect to remote host|Temporary failure in name resolution|Name or service not known|Could not resolve host|No address associated with hostname|bad address '|ENETUNREACH|EAI_AGAIN|ENOTFOUND|Connection refused|ECONNREFUSED|getaddrinfo failed|nodename nor servname/i;

function stepFailure(tool: SandboxTool, step: SandboxStep, options: SandboxRunOptions, code: number | null, signal: NodeJS.Signals | null, tail: string[]): RedoError {
  const how = signal !== null ? `killed by signal ${signal}` : `exited with status ${code}`;
  const output = tail.length > 0 ? [`output (last ${tail.length} lines):`, ...tail.map((line) => `  ${line}`)] : [];
  const setup = tail.find((line) => setupFailure.test(line));
  const isExecFailure = setup !== undefined && /execvp|failed to execute/.test(setup);
  if (setup !== undefined && !isExecFailure && (code === 1 || code === 125)) {
    return unavailable(options.subject, `${tool} refused to start (${setup})`);
  }
  if (code === 127 || isExecFailure) {
    for (const line of [...tail].reverse()) {
      const tool = missingTool.map((pattern) => pattern.exec(line)?.[1]).find((name) => name !== undefined);
      if (tool === undefined) continue;
      return new RedoError('ERR_BUILD_TOOL_MISSING', `redo: ${options.subject}: ${step.label} ran "${tool}", which its build environment does not have`, {
        details: [...output, 'build steps see only the build environment\'s tools, never the host\'s PATH'],
        hint: `add the Debian package that provides "${tool}" to ${options.packageListHint ?? 'the build environment\'s package list'} (then redo-ts lock)`,
      });
    }
  }
  if (tail.some((line) => networkFailure.test(line))) {
    return new RedoError('ERR_BUILD_NETWORK', `redo: ${options.subject}: ${step.label} ${how} reaching for the network, which build steps do not have`, {
      details: [...output, 'the sandbox has its own network namespace with loopback only: nothing outside it can be reached'],
      hint: 'make what the step downloads a pinned source of the spec (sources: url + integrity), so it is fetched, checked and cached before the build',
    });
  }
  return new RedoError('ERR_SPEC_BUILD_FAILED', `redo: ${options.subject}: ${step.label} ${how}`, {
    details: output,
    hint: 'nothing was written; fix the step and build again',
  });
}

/**
 * Whether a sandbox can start here: makes the namespaces and runs the host's
 * /bin/true in them. Returns undefined when it can, else the reason. For
 * diagnostics and tests; a few milliseconds.
 */
export function probeSandbox(hostEnv: NodeJS.ProcessEnv = process.env): string | undefined {
  let tool;
  try {
    tool = chooseSandboxTool(hostEnv, 'probe');
  } catch (error) {
    return (error as Error).message;
  }
  const args = tool.kind === 'bwrap'
      ? ['--unshare-all', '--uid', '0', '--gid', '0', '--ro-bind', '/', '/', '--', '/bin/true']
      : ['--user', '--map-root-user', '--mount', '--net', '--pid', '--fork', '/bin/true'];
  const result = spawnSync(tool.path, args, { encoding: 'utf8' });
  return result.status === 0 ? undefined : `${tool.kind}: ${(result.stderr ?? '').trim() || `exit ${result.status}`}`;
}
