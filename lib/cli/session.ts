/** Shared by the build commands: option parsing, engine set-up, event reporting, exit status. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { findProjectRoot } from '../engine/paths.js';
import { describeRequest, isVerifiedNoOp } from '../engine/no-op-memo.js';
import { readRedoEnvironment } from '../env.js';
import { RedoError } from '../errors.js';
import { callEngine, encodeArguments, isInsideRule } from './client.js';
import type { CommandIO } from './command.js';
import { libraryDir, packageRoot, packageVersion } from './package-files.js';
import { renderError } from './report.js';

/** Options accepted by the build commands (`redo-ts`, `redo`, `ifchange`). */
export interface BuildOptions {
  jobs: number;
  isForced: boolean;
  isKeepGoing: boolean;
  isXtrace: boolean;
  isVerbose: boolean;
  isShuffle: boolean;
  /** --strict: a target that is out of date and whose rule is gone is an error, not a warning. */
  isStrict?: boolean;
  isWhy: boolean;
  isHelp: boolean;
  isVersion: boolean;
  /** --remote-cache REF: the registry repository of the build cache. */
  remoteCache?: string;
  /** --remote-cache-readonly: look up, never upload. */
  isRemoteCacheReadOnly?: boolean;
  targets: string[];
}

/**
 * Parses `-j N`/`-jN`/`--jobs=N`, `-f`/`--force`, `-k`/`--keep-going`, `-x`, `-v`, `--shuffle`, `--strict`,
 * `--why`/`--explain`, `-h`/`--help`, `--version`, `--` and targets. Short flags combine
 * (`-kx`). Throws ERR_USAGE for unknown options or a bad job count.
 */
export function parseBuildOptions(args: string[]): BuildOptions {
  const options: BuildOptions = { jobs: 1, isForced: false, isKeepGoing: false, isXtrace: false, isVerbose: false, isShuffle: false, isWhy: false, isHelp: false, isVersion: false, targets: [] };
  const setJobs = (value: string | undefined): void => {
    const jobs = Number(value);
    if (value === undefined || !Number.isInteger(jobs) || jobs < 1) {
      throw new RedoError('ERR_USAGE', `redo: "-j": wants a whole number of jobs ≥ 1`, { details: [`found: ${JSON.stringify(value ?? '')}`] });
    }
    options.jobs = jobs;
  };
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    if (arg === '--') {
      options.targets.push(...args.slice(i + 1));
      break;
    }
    if (arg === '--force') options.isForced = true;
    else if (arg === '--keep-going') options.isKeepGoing = true;
    else if (arg === '--shuffle') options.isShuffle = true;
    else if (arg === '--strict') options.isStrict = true;
    else if (arg === '--why' || arg === '--explain') options.isWhy = true;
    else if (arg === '--help') options.isHelp = true;
    else if (arg === '--version') options.isVersion = true;
    else if (arg === '--jobs') setJobs(args[(i += 1)]);
    else if (arg.startsWith('--jobs=')) setJobs(arg.slice('--jobs='.length));
    else if (arg === '--remote-cache' || arg.startsWith('--remote-cache=')) {
      const value = arg === '--remote-cache' ? args[(i += 1)] : arg.slice('--remote-cache='.length);
      if (value === undefined || value === '') throw new RedoError('ERR_USAGE', 'redo: "--remote-cache": wants a registry repository, HOST[:PORT]/REPOSITORY');
      options.remoteCache = value;
    } else if (arg === '--remote-cache-readonly') options.isRemoteCacheReadOnly = true;
    else if (arg.startsWith('--')) throw new RedoError('ERR_USAGE', `redo: "${arg}": unknown option`, { hint: 'see redo-ts --help' });
    else if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j += 1) {
        const flag = arg[j];
        if (flag === 'f') options.isForced = true;
        else if (flag === 'k') options.isKeepGoing = true;
        else if (flag === 'x') options.isXtrace = true;
        else if (flag === 'v') options.isVerbose = true;
        else if (flag === 'h') options.isHelp = true;
        else if (flag === 'j') {
          setJobs(j + 1 < arg.length ? arg.slice(j + 1) : args[(i += 1)]);
          break;
        } else throw new RedoError('ERR_USAGE', `redo: "-${flag ?? ''}": unknown option`, { hint: 'see redo-ts --help' });
      }
    } else options.targets.push(arg);
  }
  return options;
}

/** Absolute directory of the sh client scripts (libexec/ at the package root). */
export function libexecDir(): string {
  return path.join(packageRoot, 'libexec');
}


/** The name terminator the listing command `name` prints: NUL with `-0`, else newline. Throws ERR_USAGE for other arguments. */
export function endOfName(args: string[], name: string): string {
  const unknown = args.filter((arg) => arg !== '-0');
  if (unknown.length > 0) throw new RedoError('ERR_USAGE', `redo: "${name}": unknown argument ${JSON.stringify(unknown[0])}`, { hint: `see redo-ts ${name} --help` });
  return args.includes('-0') ? '\0' : '\n';
}

/**
 * Splits the arguments of a query command that takes `--json` and positional names:
 * any other `-` option is ERR_USAGE naming `name` and quoting the first line of `usage`.
 */
export function parseJsonOption(args: string[], name: string, usage: string): { isJson: boolean; positional: string[] } {
  let isJson = false;
  const positional: string[] = [];
  for (const arg of args) {
    if (arg === '--json') isJson = true;
    else if (arg.startsWith('-')) throw new RedoError('ERR_USAGE', `redo: "${name}": unknown option ${arg}`, { hint: usage.split('\n')[0] });
    else positional.push(arg);
  }
  return { isJson, positional };
}

/** Absolute `rules/` folder of this redo-ts package: shared rules, searched after the project's own. */
export function sharedRulesDir(): string {
  return path.join(packageRoot, 'rules');
}

/** The project root for `io`: REDO_TS_ROOT, else (inside a rule) REDO_ROOT, else the nearest folder with .redo/, rules/, package.json or .git, else cwd. */
export function projectRoot(io: CommandIO): string {
  const redo = readRedoEnvironment(io.env);
  // Inside a rule, the project is the one being built, wherever the rule has cd'd to.
  const override = redo.rootOverride ?? (isInsideRule(io.env) ? redo.root : undefined);
  return findProjectRoot(io.cwd, override);
}

/**
 * Runs a build of `options.targets` (default `all`) with ifchange semantics, or redo
 * semantics when `options.isForced`. Inside a rule, forwards the request to the running
 * engine instead. Returns the exit status: 0, or the first root-cause error's code.
 */
export async function runBuild(options: BuildOptions, io: CommandIO): Promise<number> {
  const targets = options.targets.length === 0 ? ['all'] : options.targets;
  if (isInsideRule(io.env)) {
    // The engine resolves names against the folder sent first, as from the sh client.
    const flags = [
      ...(options.jobs === 1 ? [] : ['-j', String(options.jobs)]),
      ...(options.isKeepGoing ? ['-k'] : []),
      ...(options.isXtrace ? ['-x'] : []),
      ...(options.isVerbose ? ['-v'] : []),
      ...(options.isShuffle ? ['--shuffle'] : []),
    ];
    return callEngine(io.env, options.isForced ? 'redo' : 'ifchange', encodeArguments([io.cwd, ...flags, '--', ...targets]));
  }
  const root = projectRoot(io);
  // The same request as last time, and every stat its decision rested on unchanged: a
  // build would run nothing and print nothing (no-op-memo.ts). The engine is not loaded.
  if (!options.isForced && (await isVerifiedNoOp(root, describeRequest(root, io.cwd, targets, sharedRulesDir(), packageVersion()), io.env))) return 0;
  const [{ Engine }, { isWriteError, writeFailed }, { Reporter }, { createTypeScriptRuleSupport }] = await Promise.all([
    import('../engine/build.js'),
    import('../engine/state.js'),
    import('./report.js'),
    import('./ts-rules.js'),
  ]);
  const reporter = new Reporter(io.stderr, io.isTTY);
  const cache = await openRemoteCache(options, io, root);
  const engine = new Engine({
    root,
    jobs: options.jobs,
    isKeepGoing: options.isKeepGoing,
    isXtrace: options.isXtrace,
    isVerbose: options.isVerbose,
    isShuffle: options.isShuffle,
    isStrict: options.isStrict === true,
    version: packageVersion(),
    env: io.env,
    libexecDir: libexecDir(),
    nodePath: process.execPath,
    onEvent: (event) => reporter.onEvent(event),
    typeScript: createTypeScriptRuleSupport(root),
    ...(cache === undefined ? {} : { cache }),
    sharedRulesDir: sharedRulesDir(),
  });
  // A signal stops the rules (and what they started), removes their temporary outputs
  // and releases the locks before exiting 128 + the signal's number. A second signal
  // while that runs is ignored: the clean-up takes at most about a second.
  // Not SIGHUP: a listener would undo `nohup`, which leaves it ignored.
  const signalNumbers: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };
  let isInterrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (isInterrupted) return;
    isInterrupted = true;
    void engine.interrupt().finally(() => {
      reporter.finish();
      io.stderr.write(`redo: interrupted by ${signal}; rules stopped, temporary outputs removed\n`);
      process.exit(128 + (signalNumbers[signal] ?? 0));
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // An error no rule caught (a stream's 'error' event in a TypeScript rule, say) would
  // end the process with rules still running: stop the build as for a signal instead.
  const onCrash = (error: unknown): void => {
    if (isInterrupted) return;
    isInterrupted = true;
    const isWrite = isWriteError(error);
    const file = (error as NodeJS.ErrnoException).path;
    // A write to a descriptor names no file: the running rules are the suspects.
    const subject = file === undefined ? engine.runningTargets().join('", "') || '.' : path.relative(root, file).replace(/\.redo\.\d+\.tmp.*$/, '');
    void engine.interrupt().finally(() => {
      reporter.finish();
      io.stderr.write(`${isWrite ? writeFailed(subject, 'a write failed during the build; the build was stopped', error).render() : renderError(error, packageVersion())}\n`);
      process.exit(isWrite ? 1 : 70);
    });
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  try {
    const summary = await engine.build(targets, io.cwd, options.isForced);
    if (cache !== undefined) {
      await cache.finish();
      const { hits, stored, failedUploads } = cache.counts;
      if (hits + stored + failedUploads > 0) {
        reporter.finish();
        io.stderr.write(`redo-ts: remote cache ${cache.reference.host}/${cache.reference.repository}: ${hits} from cache, ${stored} stored${failedUploads > 0 ? `, ${failedUploads} not stored` : ''}\n`);
      }
    }
    return summary.firstError === undefined ? 0 : summary.firstError.exitCode;
  } finally {
    await cache?.finish();
    engine.close();
    reporter.finish();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('uncaughtException', onCrash);
    process.removeListener('unhandledRejection', onCrash);
  }
}

/** `os/architecture` of this machine in OCI terms (x64 → amd64), part of every remote cache key. Pure. */
export function hostPlatform(platform: string = process.platform, arch: string = process.arch): string {
  const architectures: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return `${platform}/${architectures[arch] ?? arch}`;
}

/**
 * redo-ts's version plus a hash of its compiled library: rules import the library, so
 * a changed library (even under the same version number) must not reuse cache entries.
 */
function toolVersion(createHash: typeof import('node:crypto').createHash): string {
  const libDir = libraryDir;
  // A checkout without package.json beside dist/ says "unknown": the library hash still tells builds apart.
  const version = packageVersion();
  const hash = createHash('sha256');
  const visit = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      if (fs.statSync(file).isDirectory()) visit(file);
      else if (name.endsWith('.js')) hash.update(`${path.relative(libDir, file)}\0`).update(fs.readFileSync(file));
    }
  };
  visit(libDir);
  return `${version}+${hash.digest('hex').slice(0, 16)}`;
}

/**
 * The remote build cache the options or REDO_TS_REMOTE_CACHE name, or undefined. Its
 * module (and the HTTP client) loads only then, so builds without one do not pay for it.
 */
async function openRemoteCache(options: BuildOptions, io: CommandIO, root: string): Promise<import('../registry/remote-cache.js').RemoteCache | undefined> {
  const fromEnv = readRedoEnvironment(io.env);
  const reference = options.remoteCache ?? fromEnv.remoteCache;
  if (reference === undefined) return undefined;
  const { RemoteCache } = await import('../registry/remote-cache.js');
  return new RemoteCache({
    reference,
    env: io.env,
    root,
    platform: hostPlatform(),
    toolVersion: toolVersion((await import('node:crypto')).createHash),
    isReadOnly: options.isRemoteCacheReadOnly === true || fromEnv.isRemoteCacheReadOnly,
    onWarning: (message) => io.stderr.write(`warning: ${message}\n`),
  });
}
