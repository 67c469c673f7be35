/** redo / ifchange / ifcreate semantics: decides what is out of date and builds it. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError, isRedoError } from '../errors.js';
import { describeReason, type BuildEventListener, type RebuildReason } from './events.js';
import { openCallerStderr, parseCallOptions, startOrder, type CallerContext } from './caller.js';
import { BuildJournal } from './journal.js';
import { TargetLocks } from './lock.js';
import { compareOutput, decideFreshness, envIdentity, isSameStamp, isSourceDependency } from './freshness.js';
import { FolderListings } from './folder-listing.js';
import { reconcileAbandoned, removeLeftovers } from './reconcile.js';
import { RuleProcesses } from './rule-processes.js';
import { WaitGraph } from './wait-graph.js';
import { findRule, type RuleLookup } from './lookup.js';
import { NoOpRecorder, describeRequest, forgetNoOp } from './no-op-memo.js';
import { toDependencyPath, toTargetPath } from './paths.js';
import { runRule, temporaryOutputPath, type TypeScriptRuleSupport } from './runner.js';
import { JobSlots } from './scheduler.js';
import { MISSING, identityOf, readStamp, sha256Hex, type FileStamp, type Identity } from './stamp.js';
import type { TargetCache } from './target-cache.js';
import { StateStore, isWriteError, writeFailed, type DependencyRecord, type TargetRecord } from './state.js';

/** How an engine builds: everything but the targets. */
export interface EngineOptions {
  /** Absolute project root. */
  root: string;
  /** Job slots shared by all rules (-j). */
  jobs: number;
  /** -k: keep building other targets after a failure. */
  isKeepGoing: boolean;
  /** -x: run sh rules with `sh -x`. */
  isXtrace: boolean;
  /** -v: run sh rules with `sh -v`. */
  isVerbose: boolean;
  /** --shuffle: start independent targets in random order (finds undeclared dependencies). */
  isShuffle?: boolean;
  /** --strict: a target that is out of date and whose rule is gone fails instead of being used with a warning. */
  isStrict?: boolean;
  /** The redo-ts version, part of the key of `.redo/no-op.json`. */
  version?: string;
  /** Base environment for rules. */
  env: NodeJS.ProcessEnv;
  /** Absolute directory holding the sh client scripts (redo-ifchange, ...). */
  libexecDir: string;
  /** Absolute path of the node binary (for client fallbacks). */
  nodePath: string;
  onEvent: BuildEventListener;
  /** Loader for `.do.ts` rules; without it TypeScript rules fail. */
  typeScript?: TypeScriptRuleSupport;
  /** A shared build cache consulted before a rule runs and offered what it built (--remote-cache). */
  cache?: TargetCache;
  /** Absolute `rules/` folder of the installed redo-ts package, searched after the project's own `rules/`. */
  sharedRulesDir?: string;
}

/** The result of ensuring one target or source is up to date. */
type Outcome =
  | { status: 'ok'; identity: Identity; stamp?: FileStamp }
  | { status: 'missing'; lookup: RuleLookup }
  | { status: 'failed'; error: RedoError };

/** The verdict of the freshness check of a target that has a record. */
type Verdict =
  | { status: 'fresh'; identity: Identity; stamp?: FileStamp }
  | { status: 'stale'; reason: RebuildReason }
  | { status: 'failed'; error: RedoError };

/** A rule being run: collects its dependencies, reached by clients through its token. */
interface Job {
  token: string;
  target: string;
  chain: string[];
  /** Root-relative folder the rule runs in. */
  cwd: string;
  deps: DependencyRecord[];
  isAlways: boolean;
  stampSha256Hex: string | null;
  hasSlot: boolean;
  /** The budget the rule's slot comes from: the engine's, or a nested `redo -jN`'s. */
  slots: JobSlots;
  /** True while the rule's latest redo/redo-ifchange call failed: its own failure then is that one's. */
  isLastRequestFailed: boolean;
  /** Exit status of the sh rule, once it ended. */
  exitStatus?: number;
  /** Where the rule's stderr goes when its caller redirected it (a descriptor of the caller's call), else undefined. */
  stderrFd?: number | undefined;
  /** What the rule inherited (environment, umask); passed on by its TypeScript ctx.ifchange(). */
  caller: CallerContext | undefined;
  writeStderr(text: string): void;
}

/** Summary of a top-level build. */
export interface BuildSummary {
  /** Root-relative targets that failed, in order of failure. */
  failed: string[];
  /** The first root-cause error, or undefined if all succeeded. */
  firstError: RedoError | undefined;
}

/**
 * One build run over one project. Each target is checked or built at most once per
 * engine; independent requests run concurrently up to `jobs` rules at a time.
 * Call `close()` when done (stops the request FIFO, releases locks).
 */
export class Engine {
  readonly root: string;
  readonly state: StateStore;
  private readonly options: EngineOptions;
  private readonly locks: TargetLocks;
  private readonly journal: BuildJournal;
  private readonly slots: JobSlots;
  private readonly outcomes = new Map<string, Promise<Outcome>>();
  /** Waits-for edges between targets, for cycle detection across concurrent requests. */
  private readonly waits = new WaitGraph();
  private readonly jobs = new Map<string, Job>();
  private readonly sourceStamps = new Map<string, FileStamp | undefined>();
  /** The request FIFO, the sh spawner and the rule environment, started with the first rule. */
  private readonly processes: RuleProcesses;
  private jobCounter = 0;
  private isStopping = false;
  private hasFailure = false;
  private isReconciled = false;
  private isInterrupted = false;
  /** The first record that could not be saved: the run fails with it. */
  private saveFailure: { target: string; error: RedoError } | undefined;
  /** The facts of this engine's decisions, for `.redo/no-op.json` (no-op-memo.ts). */
  private readonly noOp = new NoOpRecorder();
  /** Existence answers from folder listings, used until the first rule starts. */
  private readonly listings = new FolderListings(
    (folder, stats) => (stats === undefined ? this.noOp.addFile(folder, undefined) : this.noOp.addFolder(folder, stats)),
    () => this.noOp.markUnsure(),
  );
  private hasWarned = false;
  private hasSaved = false;

  constructor(options: EngineOptions) {
    this.options = options;
    this.root = options.root;
    this.state = new StateStore(options.root);
    this.locks = new TargetLocks(this.state.stateDir);
    this.journal = new BuildJournal(this.state.stateDir);
    this.slots = new JobSlots(options.jobs);
    this.processes = new RuleProcesses({
      root: options.root,
      stateDir: this.state.stateDir,
      env: options.env,
      libexecDir: options.libexecDir,
      nodePath: options.nodePath,
      journal: this.journal,
      onRequest: (command, payload, token, callId) => this.serveClient(command, payload, token, callId),
    });
  }

  /**
   * Brings `names` (relative to the absolute `fromDir`) up to date: ifchange semantics,
   * or redo semantics (always rebuild the named targets) when `isForced`.
   * Never throws for build failures: they are in the summary and were emitted as events.
   * Throws ERR_TARGET_OUTSIDE / ERR_STATE_* before building anything.
   */
  async build(names: string[], fromDir: string, isForced: boolean): Promise<BuildSummary> {
    this.state.checkVersion();
    const targets = [...new Set(names.map((name) => {
      const target = toDependencyPath(this.root, fromDir, name);
      // A top-level name outside the project is fine only as an existing source.
      return path.isAbsolute(target) && !fs.existsSync(target) ? toTargetPath(this.root, fromDir, name) : target;
    }))];
    if (!this.isReconciled) {
      this.isReconciled = true;
      await this.reconcile();
    }
    const summary: BuildSummary = { failed: [], firstError: undefined };
    const order = startOrder(targets.length, this.options.isShuffle === true);
    const results = await Promise.all(
      order.map((index) => targets[index] as string).map(async (target) => {
        const outcome = this.requireBuilt(target, [target], await this.ensure(target, [target], undefined, isForced));
        // Only a failure that reaches a top-level target stops the run (redo's rule): one
        // a rule tolerated (`redo-ifchange x || true`) does not.
        if (outcome.status === 'failed' && !this.options.isKeepGoing) this.isStopping = true;
        return { target, outcome };
      }),
    );
    await this.flush();
    this.saveNoOp(names, fromDir, isForced, results.every((result) => result.outcome.status === 'ok'));
    for (const { target, outcome } of results) {
      if (outcome.status !== 'failed') continue;
      summary.failed.push(target);
      if (summary.firstError === undefined && outcome.error.code !== 'ERR_DEPENDENCY_FAILED') summary.firstError = outcome.error;
    }
    if (summary.firstError === undefined && summary.failed.length > 0) {
      const first = results.find((r) => r.outcome.status === 'failed');
      if (first !== undefined && first.outcome.status === 'failed') summary.firstError = first.outcome.error;
    }
    if (this.saveFailure !== undefined) {
      // The output is in place but not its record: the build did not succeed (the journal
      // makes the next run rebuild the target).
      summary.failed.push(this.saveFailure.target);
      summary.firstError ??= this.saveFailure.error;
    }
    return summary;
  }

  /**
   * Writes `.redo/no-op.json` after a request that ran no rule, saved nothing, warned of
   * nothing and succeeded, so the same request next time is answered by stats alone
   * (no-op-memo.ts); removes it after any other.
   */
  private saveNoOp(names: string[], fromDir: string, isForced: boolean, isSuccess: boolean): void {
    const isNoOp = isSuccess && !isForced && this.jobCounter === 0 && !this.hasWarned && !this.hasSaved && this.saveFailure === undefined && !this.hasFailure;
    if (!isNoOp) {
      forgetNoOp(this.root);
      return;
    }
    for (const [target, stamp] of this.sourceStamps) this.noOp.addFile(absolutePath(this.root, target), stamp);
    for (const [folder, stats] of this.state.recordFolderStats()) this.noOp.addFolder(folder, stats);
    const versionFile = path.join(this.state.stateDir, 'VERSION');
    const versionStats = fs.statSync(versionFile, { throwIfNoEntry: false });
    this.noOp.addFile(versionFile, versionStats === undefined ? undefined : { ino: versionStats.ino, sizeBytes: versionStats.size, mtimeMs: versionStats.mtimeMs, ctimeMs: versionStats.ctimeMs });
    this.noOp.write(this.root, describeRequest(this.root, fromDir, names, this.options.sharedRulesDir, this.options.version ?? 'unknown'));
  }

  /** Settles what engines killed earlier left (reconcile.ts). */
  private async reconcile(): Promise<void> {
    await reconcileAbandoned(this.root, this.state, this.locks, this.journal);
  }

  /** Root-relative targets whose rules are running now, in start order. */
  runningTargets(): string[] {
    return [...this.jobs.values()].map((job) => job.target);
  }

  /**
   * Stops a build on SIGINT/SIGTERM: no new rule starts, every process of the build
   * (rules, their children, waiting redo-ifchange clients) is sent SIGTERM, then SIGKILL
   * after `graceMs`; temporary outputs of running rules are removed; locks are
   * released. Events after this point are not reported. The journal stays, so the next
   * run settles anything half-done.
   */
  async interrupt(graceMs = 1000): Promise<void> {
    this.isStopping = true;
    this.isInterrupted = true;
    const { stopBuildProcesses } = await import('./spawner.js');
    await stopBuildProcesses(this.processes.server?.runDir, graceMs);
    // Records of targets already built are being saved: let them land (they are small).
    await Promise.race([this.flush(), new Promise((resolve) => setTimeout(resolve, graceMs))]);
    for (const job of this.jobs.values()) {
      removeLeftovers(path.join(this.root, job.target), process.pid);
    }
    this.processes.close();
    this.locks.releaseAll();
  }

  private readonly backgroundWork = new Set<Promise<void>>();

  /** Remembers background work (record saves) that `flush()` must wait for; failures are reported. */
  private track(work: Promise<void>, target: string): void {
    const tracked = work.catch((error: unknown) => {
      const saveError = writeFailed(path.relative(this.root, this.state.recordPath(target)), `could not save the record of "${target}"`, error);
      this.saveFailure ??= { target, error: saveError };
      this.fail(target, saveError, true);
    });
    this.backgroundWork.add(tracked);
    void tracked.finally(() => this.backgroundWork.delete(tracked));
  }

  /** Waits until every record save started so far is on disk. */
  async flush(): Promise<void> {
    while (this.backgroundWork.size > 0) await Promise.all([...this.backgroundWork]);
  }

  /** Stops the request FIFO and releases every lock this engine holds (call flush() first). */
  close(): void {
    this.processes.close();
    // A read cache of the records, so the next no-op reads one file, not one per target.
    this.state.writeSnapshot();
    this.journal.close(this.saveFailure === undefined && !this.isInterrupted);
    this.locks.releaseAll();
  }

  /** Turns a "missing" outcome (no file, no rule) into an ERR_NO_RULE failure and reports it. */
  private requireBuilt(target: string, chain: string[], outcome: Outcome, stderrFd?: number): Outcome {
    if (outcome.status !== 'missing') return outcome;
    if (path.isAbsolute(target)) {
      const error = new RedoError('ERR_NO_RULE', `redo: "${target}": no such file (outside the project, where only sources live)`, {
        details: chain.length > 1 ? [`chain: ${chain.join(' → ')}`] : [],
        hint: 'create the file, or stop depending on it',
      });
      this.fail(target, error, true, stderrFd);
      return { status: 'failed', error };
    }
    const error = new RedoError('ERR_NO_RULE', `redo: "${target}": no rule to build it and no such file`, {
      details: [
        ...(chain.length > 1 ? [`chain: ${chain.join(' → ')}`] : []),
        'looked for:',
        ...outcome.lookup.misses.filter((miss) => miss.endsWith('.do') && !path.isAbsolute(miss)).map((miss) => `  ${miss}[.ts]`),
      ],
      hint: 'create one of those rules, or the source file itself',
    });
    this.fail(target, error, true, stderrFd);
    return { status: 'failed', error };
  }

  private fail(target: string, error: RedoError, isRootCause: boolean, stderrFd?: number): void {
    this.hasFailure = true;
    this.failedTargets.add(target);
    if (this.isInterrupted) return;
    // A nested call whose caller redirected its stderr (`redo-ifchange x 2>/dev/null`)
    // gets the message there, as a redo process's own stderr would.
    if (isRootCause && stderrFd !== undefined && writeTo(stderrFd, `${error.render()}\n`)) isRootCause = false;
    this.options.onEvent({ kind: 'failed', target, error, isRootCause });
  }

  /** Reports a warning, to the redirected stderr of the call it concerns when there is one. */
  private warn(target: string, error: RedoError, stderrFd: number | undefined): void {
    this.hasWarned = true;
    if (stderrFd !== undefined && writeTo(stderrFd, `warning: ${error.render()}\n`)) return;
    this.options.onEvent({ kind: 'warning', target, error });
  }

  /**
   * Ensures `target` is up to date (once per engine), recording that `requester` waits
   * for it. Returns ERR_CYCLE as a failure if `target` already waits on `requester`.
   */
  private async ensure(target: string, chain: string[], requester: string | undefined, isForced: boolean, caller?: CallerContext): Promise<Outcome> {
    if (requester !== undefined) {
      const cycle = target === requester ? [target] : this.waits.findPath(target, requester);
      if (cycle !== undefined) {
        const trail = [...chain.slice(0, -1), target];
        const error = new RedoError('ERR_CYCLE', `redo: "${target}": dependency cycle`, {
          details: [`chain: ${trail.join(' → ')}`, `cycle: ${[requester, ...cycle].join(' → ')}`],
          hint: 'remove one of these dependencies',
        });
        this.fail(requester, error, true, caller?.stderrFd);
        return { status: 'failed', error };
      }
    }
    let outcome = this.outcomes.get(target);
    if (outcome === undefined) {
      outcome = this.update(target, chain, isForced, caller);
      this.outcomes.set(target, outcome);
    } else {
      outcome = this.revisit(target, chain, isForced, caller, outcome);
    }
    if (requester === undefined) return outcome;
    this.waits.add(requester, target);
    try {
      return await outcome;
    } finally {
      this.waits.remove(requester, target);
    }
  }

  /**
   * A second request for `target` in this run: the earlier outcome, unless redo's rules
   * say to look again. (Kept out of ensure() so that stays small on the no-op path.)
   */
  private revisit(target: string, chain: string[], isForced: boolean, caller: CallerContext | undefined, earlier: Promise<Outcome>): Promise<Outcome> {
    let outcome = earlier;
    if (isForced) {
      // `redo X` always runs X's rule, even when this run already built X (redo.md):
      // after any build of X in progress, run it again.
      outcome = earlier.then(() => this.update(target, chain, true, caller));
    } else if (this.failedTargets.has(target) && !path.isAbsolute(target) && fs.existsSync(absolutePath(this.root, target)) && this.state.load(target) === undefined) {
      // It failed earlier in this run and has since been made by hand: now it is a source.
      this.failedTargets.delete(target);
      this.sourceStamps.delete(target);
      outcome = Promise.resolve(this.sourceOutcome(target));
    } else if (this.builtOutputs.has(target) && !fs.existsSync(absolutePath(this.root, target))) {
      // Built earlier in this run, then deleted (by a rule): check it again, as redo does.
      this.builtOutputs.delete(target);
      outcome = this.update(target, chain, false, caller);
    } else {
      return earlier;
    }
    this.outcomes.set(target, outcome);
    return outcome;
  }

  private async update(target: string, chain: string[], isForced: boolean, caller: CallerContext | undefined): Promise<Outcome> {
    try {
      // Outside the project only sources live (system headers named by gcc -MD output).
      const record = path.isAbsolute(target) ? undefined : this.state.load(target);
      if (isForced && record === undefined) {
        const refusal = this.refuseSource(target, chain, caller?.stderrFd);
        if (refusal !== undefined) return refusal;
      }
      if (path.isAbsolute(target)) return this.sourceOutcome(target);
      let reason: RebuildReason;
      if (isForced) {
        reason = { kind: 'forced' };
      } else {
        const verdict = await this.check(target, record, chain, caller);
        if (verdict === undefined) {
          this.warnIfBuildable(target, caller?.stderrFd);
          return this.sourceOutcome(target);
        }
        if (verdict.status === 'failed') return verdict;
        if (verdict.status === 'fresh') {
          if (record !== undefined) this.options.onEvent({ kind: 'fresh', target });
          return { status: 'ok', identity: verdict.identity, ...(verdict.stamp === undefined ? {} : { stamp: verdict.stamp }) };
        }
        reason = verdict.reason;
      }
      return await this.rebuild(target, chain, reason, record, isForced, caller);
    } catch (error) {
      const redoError = isRedoError(error)
        ? error
        : isWriteError(error)
        ? writeFailed(target, `cannot write ${(error as NodeJS.ErrnoException).path === undefined ? 'its output or state' : `"${path.relative(this.root, (error as NodeJS.ErrnoException).path as string)}"`}`, error)
        : new RedoError('ERR_INTERNAL', `redo: "${target}": internal error: ${error instanceof Error ? error.message : String(error)}`, {
            details: [error instanceof Error && error.stack !== undefined ? error.stack : ''],
            hint: 'this is a bug in redo-ts; please report it with this message',
            cause: error,
          });
      this.fail(target, redoError, true, caller?.stderrFd);
      return { status: 'failed', error: redoError };
    }
  }

  /**
   * `redo X` / `-f X` for an X without a record: a failure when X exists (redo-ts never
   * overwrites or deletes a file it did not make, a source), else undefined (build it).
   */
  private refuseSource(target: string, chain: string[], stderrFd: number | undefined): Outcome | undefined {
    // A target this run built may not have its record saved yet (saves run in the background).
    if (this.builtTargets.has(target) || !fs.existsSync(absolutePath(this.root, target))) return undefined;
    const rule = path.isAbsolute(target) ? undefined : findRule(this.root, target, this.options.sharedRulesDir).found;
    const error = new RedoError('ERR_SOURCE_FORCED', `redo: "${target}": exists and was not built by redo-ts; not rebuilding a source`, {
      details: [
        ...(chain.length > 1 ? [`chain: ${chain.join(' → ')}`] : []),
        rule === undefined ? 'no rule builds it' : `rule that would build it: ${rule.rule}`,
      ],
      hint: rule === undefined
        ? 'redo (-f) rebuilds only targets redo-ts built; a source needs no building'
        : `to make it a target, delete it (or move it aside), then run \`redo-ts ${target}\``,
    });
    this.fail(target, error, true, stderrFd);
    return { status: 'failed', error };
  }

  /**
   * Says once per run that a file a rule could build, but that redo-ts never built, is
   * used as a source (redo's rule): outputs copied in with a project must not pass
   * silently for fresh. Rule files, files only a catch-all `default.do` matches (every
   * source would) and files only a default rule of a `rules/` folder matches (every
   * `X.tar` would match the image rule, a vendored `file:src/X.tar` included) are left
   * alone.
   */
  private warnIfBuildable(target: string, stderrFd: number | undefined): void {
    if (this.warnedSources.has(target) || target.endsWith('.do') || target.endsWith('.do.ts')) return;
    this.warnedSources.add(target);
    let found;
    try {
      found = findRule(this.root, target, this.options.sharedRulesDir).found;
    } catch {
      return;
    }
    const rule = found?.rule;
    if (rule === undefined || /(^|\/)default\.do(\.ts)?$/.test(rule) || found!.isFromRulesFolder || path.isAbsolute(rule)) return;
    this.warn(target, new RedoError('ERR_SOURCE_HAS_RULE', `redo: "${target}": exists and was not built by redo-ts; treating it as a source`, {
      details: [`rule that could build it: ${rule}`],
      hint: `delete it (or move it aside), then run \`redo-ts ${target}\`, to build it from its rule`,
    }), stderrFd);
  }

  private readonly warnedSources = new Set<string>();
  /** Targets whose rule this engine ran (their records may still be being saved). */
  private readonly builtTargets = new Set<string>();
  /** Targets whose (latest) outcome in this run is a failure. */
  private readonly failedTargets = new Set<string>();
  /** Targets this engine built that have an output file in place. */
  private readonly builtOutputs = new Set<string>();

  /** Stamp of a source file, hashed at most once per engine (stat fast path against `hint`). */
  private stampSource(target: string, hint?: FileStamp): FileStamp | undefined {
    if (this.sourceStamps.has(target)) return this.sourceStamps.get(target);
    const stamp = readStamp(absolutePath(this.root, target), hint);
    this.sourceStamps.set(target, stamp);
    return stamp;
  }

  private sourceOutcome(target: string, hint?: FileStamp): Outcome {
    const stamp = this.stampSource(target, hint);
    if (stamp === undefined) return { status: 'missing', lookup: path.isAbsolute(target) ? { found: undefined, misses: [] } : findRule(this.root, target, this.options.sharedRulesDir) };
    return { status: 'ok', identity: identityOf(stamp), stamp };
  }

  /**
   * Decides whether `target` is fresh. Undefined means "not a target" (a source, or a
   * file that exists but redo-ts never built). Brings target dependencies up to date
   * first, in recorded order, stopping at the first change (later ones may be obsolete).
   */
  private async check(target: string, record: TargetRecord | undefined, chain: string[], caller?: CallerContext): Promise<Verdict | undefined> {
    const absolute = absolutePath(this.root, target);
    if (record === undefined) {
      return fs.existsSync(absolute) ? undefined : { status: 'stale', reason: { kind: 'no-previous-build' } };
    }
    let isDirty = false;
    const current = readStamp(absolute, record.output ?? undefined);
    const outputState = compareOutput(record, current);
    if (outputState === 'missing') return { status: 'stale', reason: { kind: 'output-missing' } };
    if (outputState === 'edited' && current !== undefined) {
      // Another process may be between renaming a new output and saving its record: then
      // rebuild() waits for its lock and checks again. (A killed one's were settled by reconcile().)
      if (!this.locks.isHeld(target)) {
        if (!this.locks.tryAcquire(target)) return { status: 'stale', reason: { kind: 'interrupted' } };
        this.locks.release(target);
      }
      this.warn(target, new RedoError('ERR_TARGET_EDITED', `redo: "${target}": modified since redo-ts built it; not rebuilding`, {
        details: [`built: ${record.output === null ? 'no output' : `sha256:${record.output.sha256Hex}`}`, `found: ${identityOf(current)}`],
        hint: `delete "${target}" or run \`redo-ts -f ${target}\` to rebuild it`,
      }), caller?.stderrFd);
      return { status: 'fresh', identity: identityOf(current), stamp: current };
    }
    if (current !== undefined && record.output !== null && !isSameStamp(record.output, current)) {
      record.output = current;
      isDirty = true;
    }
    // Until a rule runs, nothing but this engine changes the tree: folder listings answer.
    const exists = (depPath: string): boolean => (this.jobCounter === 0 ? this.listings.exists(absolutePath(this.root, depPath)) : fs.existsSync(absolutePath(this.root, depPath)));
    const walk = decideFreshness(record, this.options.env, exists);
    let step = walk.next();
    while (step.done !== true) {
      const dep = step.value;
      const pending = this.ensureDependency(dep, [...chain, dep.path], target, caller);
      const outcome = pending instanceof Promise ? await pending : pending;
      step = walk.next(outcome.status === 'missing' ? { status: 'missing' } : outcome);
    }
    const verdict = step.value;
    if (verdict.status === 'failed') return { status: 'failed', error: dependencyFailed(target, verdict.dependency, chain) };
    if (verdict.status === 'stale') return verdict;
    if (verdict.status === 'stale-dependency') throw new Error(`"${target}": a build cannot predict a rebuild`);
    this.noOp.addFile(absolute, current);
    for (const dep of record.deps) if (dep.mode === 'env') this.noOp.addEnv(dep.path, dep.identity ?? MISSING);
    if (isDirty || verdict.isRestamped) {
      this.hasSaved = true;
      try {
        this.state.save(record);
      } catch (error) {
        // Only a faster next check is lost (a read-only or full disk must not fail a no-op).
        if (!isWriteError(error)) throw error;
      }
    }
    return { status: 'fresh', identity: record.identity };
  }

  /**
   * Like ensure(), but a dependency recorded as a source (it has a stat) that is still
   * one (no record: redo-ts has not built it since) is stamped directly, with the
   * recorded stat as its fast path. One that became a target is checked as a target.
   */
  private ensureDependency(dep: DependencyRecord, chain: string[], requester: string, caller: CallerContext | undefined): Promise<Outcome> | Outcome {
    if (!this.outcomes.has(dep.path) && isSourceDependency(dep, !path.isAbsolute(dep.path) && this.state.has(dep.path))) {
      const outcome = this.sourceOutcome(dep.path, dep.stamp);
      if (outcome.status === 'ok') return outcome;
    }
    return this.ensure(dep.path, chain, requester, false, caller);
  }

  private async rebuild(
    target: string,
    chain: string[],
    reason: RebuildReason,
    record: TargetRecord | undefined,
    isForced: boolean,
    caller: CallerContext | undefined,
  ): Promise<Outcome> {
    // A killed engine may have left its temporary output; its pid names it.
    let isLockHandedOver = false;
    const hasWaited = await this.locks.acquire(target, {
      chain,
      onAbandoned: (deadPid) => removeLeftovers(absolutePath(this.root, target), deadPid),
      onWaiting: (holder) => this.warn(target, new RedoError('ERR_LOCK_HELD', `redo: "${target}": waiting for another redo-ts process that is building it`, {
        details: [`held by: ${holder}`],
        hint: 'wait, or stop that process; a lock of a dead process is broken at once',
      }), caller?.stderrFd),
    });
    try {
      // Another build (or this one's record save) held the lock: read what it left.
      if (hasWaited) record = this.state.load(target);
      if (hasWaited && !isForced) {
        // Another process probably just built this target.
        const verdict = await this.check(target, record, chain, caller);
        if (verdict === undefined) return this.sourceOutcome(target);
        if (verdict.status === 'failed') return verdict;
        if (verdict.status === 'fresh') return { status: 'ok', identity: verdict.identity };
        reason = verdict.reason;
      }
      const lookup = findRule(this.root, target, this.options.sharedRulesDir);
      if (lookup.found === undefined) {
        if (fs.existsSync(absolutePath(this.root, target))) {
          // Its rule is gone but the file stays: used as a source for now, with a warning
          // (an error under --strict), since it is out of date. The record is kept, so when
          // the rule comes back (a branch switch), the changed rule dependency rebuilds it.
          if (record !== undefined) {
            const error = new RedoError('ERR_RULE_MISSING', `redo: "${target}": out of date, but no rule builds it any more; ${this.options.isStrict === true ? 'not using' : 'using'} its old output`, {
              details: [
                ...(chain.length > 1 ? [`chain: ${chain.join(' → ')}`] : []),
                `rule last used: ${record.rule}`,
                `out of date: ${describeReason(reason)}`,
              ],
              hint: `restore "${record.rule}" (or add another rule for it), or delete "${target}" to stop building it`,
            });
            if (this.options.isStrict === true) {
              this.fail(target, error, true, caller?.stderrFd);
              return { status: 'failed', error };
            }
            this.warn(target, error, caller?.stderrFd);
          }
          return this.sourceOutcome(target);
        }
        // Still missing: any rule candidate appearing would change that.
        for (const miss of lookup.misses) this.noOp.addFile(absolutePath(this.root, miss), undefined);
        return { status: 'missing', lookup };
      }
      const found = lookup.found;
      const deps: DependencyRecord[] = lookup.misses.map((miss) => ({ path: miss, mode: 'ifcreate' }));
      const ruleOutcome = await this.ensure(found.rule, [...chain, found.rule], target, false, caller);
      if (ruleOutcome.status !== 'ok') return { status: 'failed', error: dependencyFailed(target, found.rule, chain) };
      deps.push(dependencyRecord(found.rule, ruleOutcome));

      // A nested `redo -jN` gave this subtree its own budget of N slots.
      const slots = caller?.slots ?? this.slots;
      await slots.acquire(chain.length);
      const job = this.createJob(target, chain, found.cwd, deps, caller, slots);
      try {
        if (this.isStopping || caller?.batch?.isStopped === true) {
          // Not a failure of its own: a later request may still build it.
          if (!this.isStopping) this.outcomes.delete(target);
          return { status: 'failed', error: new RedoError('ERR_DEPENDENCY_FAILED', `redo: "${target}": not built after an earlier failure`) };
        }
        try {
          this.journal.note(target);
        } catch (error) {
          throw writeFailed(path.relative(this.root, this.state.stateDir), `cannot note "${target}" in the build journal`, error);
        }
        this.options.onEvent({ kind: 'started', target, chain, reason });
        const startMs = performance.now();
        const previous = record;
        const { server, spawner } = await this.processes.start();
        server.openJob(job.token);
        // Like a Unix child, the rule inherits its caller's environment, umask and stderr.
        const changes = this.processes.changesFor(spawner.env, caller?.env);
        const env = { ...(caller?.env ?? spawner.env), REDO_PARENT: job.token };
        // The caller's redirected stderr (its own, or the one its caller's call inherited).
        const stderrFd = caller?.stderrFd;
        job.stderrFd = stderrFd;
        const showStderr = (text: string): void => {
          if (stderrFd === undefined || !writeTo(stderrFd, text)) this.options.onEvent({ kind: 'rule-stderr', target, text });
        };
        job.writeStderr = showStderr;
        const fromCache = await this.fetchFromCache(job, found.rule, reason, previous?.deps);
        let result = fromCache;
        try {
          result ??= await runRule({
            root: this.root,
            target,
            found,
            env,
            isXtrace: this.options.isXtrace || caller?.isXtrace === true,
            isVerbose: this.options.isVerbose || caller?.isVerbose === true,
            logFile: this.state.logPath(target),
            scratchDir: server.runDir,
            onStderr: showStderr,
            typeScript: this.options.typeScript,
            spawner: spawner.spawner,
            ruleEnv: { ...changes.set, REDO_PARENT: job.token },
            unsetEnv: changes.unset,
            ...(caller?.umask === undefined ? {} : { umask: caller.umask }),
            operations: {
              ifchange: (paths) => this.throwOnFailure(job, 'ifchange', paths),
              ifcreate: (paths) => this.throwOnFailure(job, 'ifcreate', paths),
              always: () => void (job.isAlways = true),
              stamp: (data) => void (job.stampSha256Hex = sha256Hex(data)),
              ifchangeEnv: (names) => this.recordEnv(job, names),
            },
            chain,
            onExit: (status) => void (job.exitStatus = status),
            ruleIdentity: ruleOutcome.identity,
          });
        } catch (error) {
          // The dependency's own failure was reported; a sh rule then exits with the
          // client's status 1 (sh -e) and a TypeScript rule's ifchange() throws: neither is
          // news. Any other status is the rule's own failure, even after one it tolerated.
          const isConsequence = job.exitStatus === undefined || job.exitStatus === 1;
          if (job.isLastRequestFailed && isConsequence && (isRedoError(error, 'ERR_RULE_FAILED') || isRedoError(error, 'ERR_DEPENDENCY_FAILED'))) {
            return { status: 'failed', error: new RedoError('ERR_DEPENDENCY_FAILED', `redo: "${target}": a dependency failed`, { cause: error }) };
          }
          throw error;
        }
        if (fromCache === undefined) this.offerToCache(job, found.rule, result);
        const builds = (previous?.builds ?? 0) + 1;
        const identity = job.stampSha256Hex !== null
          ? `stamp:${job.stampSha256Hex}`
          : result.treeSha256Hex !== undefined ? `dir:${result.treeSha256Hex}`
          : result.output !== null ? identityOf(result.output) : `none:${builds}`;
        // Dependents may go on at once; the lock is kept until the record is saved.
        const saving = this.state.saveInBackground({
          version: 1,
          target,
          rule: found.rule,
          output: result.output,
          identity,
          builds,
          isAlways: job.isAlways,
          stampSha256Hex: job.stampSha256Hex,
          deps: job.deps,
        });
        isLockHandedOver = true;
        this.builtTargets.add(target);
        if (result.output !== null) this.builtOutputs.add(target);
        this.track(saving.finally(() => this.locks.release(target)), target);
        this.options.onEvent({
          kind: 'built',
          target,
          reason,
          hasOutput: result.output !== null,
          isOutputChanged: identity !== previous?.identity,
          durationMs: performance.now() - startMs,
          ...(fromCache === undefined ? {} : { isFromCache: true }),
        });
        return { status: 'ok', identity };
      } finally {
        this.processes.server?.closeJob(job.token);
        this.jobs.delete(job.token);
        if (job.hasSlot) job.slots.release();
      }
    } finally {
      if (!isLockHandedOver) this.locks.release(target);
    }
  }

  /**
   * Asks the cache for the target's output before its rule runs. On a hit the output is
   * renamed into place and the entry's dependencies become the job's, as if the rule had
   * run; a miss (or no cache, or -f: the user asked for the rule to run) gives
   * undefined. Errors from the cache fail the target.
   */
  private async fetchFromCache(job: Job, rule: string, reason: RebuildReason, recorded: readonly DependencyRecord[] | undefined): Promise<{ output: FileStamp | null; treeSha256Hex?: string } | undefined> {
    const cache = this.options.cache;
    if (cache === undefined || reason.kind === 'forced') return undefined;
    const targetAbsolute = path.join(this.root, job.target);
    const outputPath = temporaryOutputPath(targetAbsolute, process.pid);
    fs.mkdirSync(path.dirname(targetAbsolute), { recursive: true });
    let hit;
    try {
      hit = await cache.lookUp({
        target: job.target,
        rule,
        outputPath,
        // What this machine recorded, in the order it was recorded (environment ones as $NAME).
        ...(recorded === undefined ? {} : {
          recordedDeps: recorded.map((dep) => (dep.mode === 'env' ? { path: `$${dep.path}`, mode: 'ifchange' as const } : { path: dep.path, mode: dep.mode })),
        }),
        ruleFor: (dependency) => {
          try {
            const target = toDependencyPath(this.root, this.root, dependency);
            // A file redo-ts never built is a source: bringing it up to date runs no rule.
            if (fs.existsSync(path.join(this.root, target)) && this.state.load(target) === undefined) return undefined;
            return findRule(this.root, target, this.options.sharedRulesDir).found?.rule;
          } catch {
            return undefined;
          }
        },
        identify: (deps) => this.identifyForCache(job, deps),
      });
    } finally {
      if (hit === undefined) fs.rmSync(outputPath, { force: true });
    }
    if (hit === undefined) return undefined;
    for (const dep of hit.deps) {
      if (dep.path.startsWith('$')) addDependency(job.deps, { path: dep.path.slice(1), mode: 'env', identity: dep.identity ?? MISSING });
      else addDependency(job.deps, dep.identity === null ? { path: dep.path, mode: 'ifcreate' } : { path: dep.path, mode: 'ifchange', identity: dep.identity });
    }
    fs.renameSync(outputPath, targetAbsolute);
    return { output: readStamp(targetAbsolute) ?? null };
  }

  /** Current identities of a cache entry's dependencies, building them first (the job's slot is lent meanwhile). */
  private async identifyForCache(job: Job, deps: readonly { path: string; mode: 'ifchange' | 'ifcreate' }[]): Promise<(string | null)[] | undefined> {
    // An entry names environment dependencies `$NAME` (see offerToCache).
    let targets: string[];
    try {
      targets = deps.map((dep) => (dep.path.startsWith('$') ? dep.path : toDependencyPath(this.root, this.root, dep.path)));
    } catch {
      return undefined;
    }
    job.hasSlot = false;
    job.slots.release();
    try {
      const identities = await Promise.all(
        targets.map(async (target, i): Promise<string | null | undefined> => {
          if (target.startsWith('$')) return envIdentity(this.options.env[target.slice(1)]);
          if (deps[i]!.mode === 'ifcreate') return fs.existsSync(path.resolve(this.root, target)) ? 'present' : null;
          const outcome = await this.ensure(target, [...job.chain, target], job.target, false);
          return outcome.status === 'ok' ? outcome.identity : outcome.status === 'missing' ? null : undefined;
        }),
      );
      return identities.includes(undefined) ? undefined : (identities as (string | null)[]);
    } finally {
      await job.slots.acquire(JobSlots.RESUMING);
      job.hasSlot = true;
    }
  }

  /** Offers a rule's fresh output to the cache (not for always-rebuilt, stamped or output-less targets). */
  private offerToCache(job: Job, rule: string, result: { output: FileStamp | null }): void {
    const cache = this.options.cache;
    if (cache === undefined || result.output === null || job.isAlways || job.stampSha256Hex !== null) return;
    cache.offer({
      target: job.target,
      rule,
      outputPath: path.join(this.root, job.target),
      outputSha256Hex: result.output.sha256Hex,
      deps: job.deps.map((dep) =>
        dep.mode === 'env'
          ? { path: `$${dep.path}`, identity: dep.identity ?? MISSING }
          : { path: dep.path, identity: dep.mode === 'ifcreate' ? null : dep.identity ?? null },
      ),
    });
  }

  private createJob(target: string, chain: string[], cwd: string, deps: DependencyRecord[], caller: CallerContext | undefined, slots: JobSlots): Job {
    this.jobCounter += 1;
    const job: Job = {
      token: String(this.jobCounter),
      target,
      chain,
      cwd,
      deps,
      isAlways: false,
      stampSha256Hex: null,
      hasSlot: true,
      isLastRequestFailed: false,
      slots,
      caller: caller === undefined ? undefined : {
        env: caller.env,
        umask: caller.umask,
        clientPid: undefined,
        isXtrace: caller.isXtrace === true,
        isVerbose: caller.isVerbose === true,
        ...(caller.slots === undefined ? {} : { slots: caller.slots }),
      },
      writeStderr: (text) => this.options.onEvent({ kind: 'rule-stderr', target, text }),
    };
    this.jobs.set(job.token, job);
    return job;
  }

  /** Handles one sh client call; returns the client's exit status. */
  private async serveClient(command: string, payload: Buffer, token: string, callId: string): Promise<number> {
    const job = this.jobs.get(token);
    const splitArguments = this.processes.splitArguments;
    if (job === undefined || splitArguments === undefined) return 2;
    switch (command) {
      case 'ifchange':
      case 'redo':
      case 'ifcreate': {
        // The client sends its own folder first: names are relative to where it runs.
        const [fromDir = '', ...names] = splitArguments(payload);
        const inherited = this.processes.readCaller(callId) ?? { env: job.caller?.env, umask: job.caller?.umask, clientPid: undefined };
        const caller: CallerContext = {
          ...inherited,
          isXtrace: job.caller?.isXtrace === true,
          isVerbose: job.caller?.isVerbose === true,
          ...(job.caller?.slots === undefined ? {} : { slots: job.caller.slots }),
        };
        return this.request(job, command, names, path.isAbsolute(fromDir) ? fromDir : path.resolve(this.root, job.cwd), caller);
      }
      case 'always':
        job.isAlways = true;
        return 0;
      case 'ifchange-env':
        // Sent after the client's folder, like every call but stamp.
        return this.recordEnv(job, splitArguments(payload).slice(1));
      case 'stamp':
        job.stampSha256Hex = sha256Hex(payload);
        return 0;
      default:
        job.writeStderr(`redo: unknown client command ${JSON.stringify(command)}\n`);
        return 2;
    }
  }

  /** redo-ifchange-env / ctx.ifchangeEnv: records environment variables as dependencies. */
  private recordEnv(job: Job, names: string[]): number {
    for (const name of names) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        job.writeStderr(`redo-ifchange-env: "${name}" is not a variable name\n`);
        return 2;
      }
      addDependency(job.deps, { path: name, mode: 'env', identity: envIdentity(this.options.env[name]) });
    }
    return 0;
  }

  private async throwOnFailure(job: Job, command: 'ifchange' | 'ifcreate', names: string[]): Promise<void> {
    const status = await this.request(job, command, names, path.resolve(this.root, job.cwd), job.caller);
    if (status !== 0) {
      throw new RedoError(command === 'ifcreate' ? 'ERR_IFCREATE_EXISTS' : 'ERR_DEPENDENCY_FAILED', `redo: "${job.target}": ${command} ${names.join(' ')} failed`, {
        details: [`chain: ${job.chain.join(' → ')}`],
      });
    }
  }

  /** A message about a rule's redo call: to the call's redirected stderr, else shown as the rule's. */
  private writeCallStderr(job: Job, stderrFd: number | undefined, text: string): void {
    if (stderrFd === undefined || !writeTo(stderrFd, text)) job.writeStderr(text);
  }

  /**
   * A running rule's redo-ifchange / redo / redo-ifcreate call, with `names` relative to
   * the caller's absolute folder `fromDir`. The job gives its slot back while it waits,
   * so nested builds share the one budget without deadlock.
   */
  private async request(
    job: Job,
    command: 'ifchange' | 'redo' | 'ifcreate',
    names: string[],
    fromDir: string,
    caller: CallerContext | undefined,
  ): Promise<number> {
    // The client's own stderr when it redirected it (`redo x 2>log`, `$(redo x 2>&1)`);
    // otherwise (it is the calling rule's captured stderr) wherever that rule's goes.
    const server = this.processes.server;
    const ownStderrFd = caller?.clientPid === undefined || server === undefined ? undefined : openCallerStderr(caller.clientPid, server.realRunDir);
    const stderrFd = ownStderrFd ?? job.stderrFd;
    try {
      return await this.requestWith(job, command, names, fromDir, caller, stderrFd);
    } finally {
      if (ownStderrFd !== undefined) fs.closeSync(ownStderrFd);
    }
  }

  private async requestWith(
    job: Job,
    command: 'ifchange' | 'redo' | 'ifcreate',
    names: string[],
    fromDir: string,
    caller: CallerContext | undefined,
    stderrFd: number | undefined,
  ): Promise<number> {
    const options = command === 'ifcreate' ? parseCallOptions(['--', ...names]) : parseCallOptions(names);
    if ('problem' in options) {
      this.writeCallStderr(job, stderrFd, `redo: ${options.problem}\n  hint: redo and redo-ifchange take -j N, -k, -x, -v, --shuffle\n`);
      return 2;
    }
    // The call's own options apply to everything it builds, as redo's do to its subtree.
    const context: CallerContext = {
      env: caller?.env,
      umask: caller?.umask,
      clientPid: caller?.clientPid,
      isXtrace: caller?.isXtrace === true || options.isXtrace,
      isVerbose: caller?.isVerbose === true || options.isVerbose,
      ...(options.isKeepGoing || this.options.isKeepGoing ? {} : { batch: { isStopped: false } }),
    };
    // A nested -jN gives everything below this call its own budget of N slots (redo's
    // sub-jobserver): `redo -j1 x` serialises x's subtree, `redo -j10 y` runs 10 at once.
    const slots = options.jobs !== undefined ? new JobSlots(options.jobs) : caller?.slots;
    if (slots !== undefined) context.slots = slots;
    if (stderrFd !== undefined) context.stderrFd = stderrFd;
    let targets: string[];
    try {
      targets = options.names.map((name) => toDependencyPath(this.root, fromDir, name));
    } catch (error) {
      this.writeCallStderr(job, stderrFd, `${isRedoError(error) ? error.render() : String(error)}\n`);
      return 2;
    }
    if (command === 'ifcreate') {
      for (const target of targets) {
        if (fs.existsSync(absolutePath(this.root, target))) {
          this.writeCallStderr(job, stderrFd, `redo-ifcreate: "${target}" already exists\n`);
          return 1;
        }
        addDependency(job.deps, { path: target, mode: 'ifcreate' });
      }
      return 0;
    }
    job.hasSlot = false;
    job.slots.release();
    const outcomes: Outcome[] = new Array<Outcome>(targets.length);
    try {
      await Promise.all(
        startOrder(targets.length, options.isShuffle || this.options.isShuffle === true).map(async (index) => {
          const target = targets[index] as string;
          const chain = [...job.chain, target];
          const outcome = this.requireBuilt(target, chain, await this.ensure(target, chain, job.target, command === 'redo', context), context.stderrFd);
          if (outcome.status === 'failed' && context.batch !== undefined) context.batch.isStopped = true;
          outcomes[index] = outcome;
        }),
      );
    } finally {
      await job.slots.acquire(JobSlots.RESUMING);
      job.hasSlot = true;
    }
    let status = 0;
    outcomes.forEach((outcome, index) => {
      const target = targets[index] as string;
      if (outcome.status === 'ok') addDependency(job.deps, dependencyRecord(target, outcome));
      else status = 1;
    });
    job.isLastRequestFailed = status !== 0;
    return status;
  }
}

/**
 * Absolute path of a root-relative target or dependency path, or of an absolute one
 * (outside the project) as is. path.join, not path.resolve: measurably cheaper on the
 * no-op path, which calls this thousands of times.
 */
function absolutePath(root: string, targetPath: string): string {
  return targetPath.startsWith('/') ? targetPath : path.join(root, targetPath);
}

function dependencyRecord(target: string, outcome: Outcome): DependencyRecord {
  if (outcome.status !== 'ok') return { path: target, mode: 'ifchange', identity: MISSING };
  return { path: target, mode: 'ifchange', identity: outcome.identity, ...(outcome.stamp === undefined ? {} : { stamp: outcome.stamp }) };
}

/** Writes `text` to the descriptor `fd`; false when it cannot (closed, a broken pipe). */
function writeTo(fd: number, text: string): boolean {
  try {
    fs.writeSync(fd, text);
    return true;
  } catch {
    return false;
  }
}

function addDependency(deps: DependencyRecord[], dep: DependencyRecord): void {
  const index = deps.findIndex((d) => d.path === dep.path && d.mode === dep.mode);
  if (index === -1) deps.push(dep);
  else deps[index] = dep;
}

function dependencyFailed(target: string, dependency: string, chain: string[]): RedoError {
  return new RedoError('ERR_DEPENDENCY_FAILED', `redo: "${target}": dependency "${dependency}" failed`, {
    details: [`chain: ${[...chain, dependency].join(' → ')}`],
  });
}

export { describeReason };
