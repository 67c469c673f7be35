/** An engine: one build run over one project, its public face (build, interrupt, flush, close); its parts are in the files EngineRun (engine-run.ts) names. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RedoError } from '../errors.js';
import { startOrder, type CallerContext } from './caller.js';
import { serveClient } from './client-requests.js';
import type { EngineOptions } from './engine-options.js';
import type { EngineRun } from './engine-run.js';
import { describeReason } from './events.js';
import { FolderListings } from './folder-listing.js';
import type { Job } from './job.js';
import { BuildJournal } from './journal.js';
import { TargetLocks } from './lock.js';
import { NoOpRecorder, describeRequest, forgetNoOp } from './no-op-memo.js';
import type { Outcome } from './outcome.js';
import { absolutePath, toDependencyPath, toTargetPath } from './paths.js';
import { reconcileAbandoned, removeLeftovers } from './reconcile.js';
import { reportFailure, requireBuilt } from './report.js';
import { RuleProcesses } from './rule-processes.js';
import { JobSlots } from './scheduler.js';
import type { FileStamp } from './stamp.js';
import { COMPACTION_LOCK, StateStore, writeFailed } from './state.js';
import { ensureTarget } from './target-update.js';
import { WaitGraph } from './wait-graph.js';

export type { EngineOptions } from './engine-options.js';

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
export class Engine implements EngineRun {
  readonly root: string;
  readonly state: StateStore;
  readonly options: EngineOptions;
  readonly locks: TargetLocks;
  readonly journal: BuildJournal;
  readonly slots: JobSlots;
  readonly outcomes = new Map<string, Promise<Outcome>>();
  /** Waits-for edges between targets, for cycle detection across concurrent requests. */
  readonly waits = new WaitGraph();
  readonly jobs = new Map<string, Job>();
  readonly sourceStamps = new Map<string, FileStamp | undefined>();
  /** The request FIFO, the sh spawner and the rule environment, started with the first rule. */
  readonly processes: RuleProcesses;
  jobCounter = 0;
  isStopping = false;
  hasFailure = false;
  private isReconciled = false;
  isInterrupted = false;
  /** The first record that could not be saved: the run fails with it. */
  private saveFailure: { target: string; error: RedoError } | undefined;
  /** The facts of this engine's decisions, for `.redo/no-op.json` (no-op-memo.ts). */
  readonly noOp = new NoOpRecorder();
  /** Existence answers from folder listings, used until the first rule starts. */
  readonly listings = new FolderListings(
    (folder, stats) => (stats === undefined ? this.noOp.addFile(folder, undefined) : this.noOp.addFolder(folder, stats)),
    () => this.noOp.markUnsure(),
  );
  hasWarned = false;
  hasSaved = false;
  /** Listings of the folders outside the project where rules are looked for, kept for the run. */
  private readonly outsideRuleFolders = new FolderListings(() => undefined, () => undefined);
  readonly isRuleFileOutside = (absolute: string): boolean => this.outsideRuleFolders.isFile(absolute);
  readonly warnedSources = new Set<string>();
  /** Targets whose rule this engine ran (their records may still be being saved). */
  readonly builtTargets = new Set<string>();
  /** Targets whose (latest) outcome in this run is a failure. */
  readonly failedTargets = new Set<string>();
  /** Targets this engine built that have an output file in place. */
  readonly builtOutputs = new Set<string>();


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
      onRequest: (command, payload, token, callId) => serveClient(this, command, payload, token, callId),
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
        const outcome = requireBuilt(this, target, [target], await this.ensure(target, [target], undefined, isForced));
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
    const store = this.state.readFacts();
    if (store.folder !== undefined) this.noOp.addFolder(this.state.storePath(), store.folder);
    for (const [file, stats] of store.files) this.noOp.addFile(file, stats);
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
  track(work: Promise<void>, target: string): void {
    const tracked = work.catch((error: unknown) => {
      const saveError = writeFailed(path.relative(this.root, this.state.storePath()), `could not save the record of "${target}"`, error);
      this.saveFailure ??= { target, error: saveError };
      reportFailure(this, target, saveError, true);
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
    // Merges this run's saves into the base, so the next run reads one file.
    this.state.compact(() => this.locks.tryAcquire(COMPACTION_LOCK), () => this.locks.release(COMPACTION_LOCK));
    this.journal.close(this.saveFailure === undefined && !this.isInterrupted);
    this.locks.releaseAll();
  }

  /** Ensures `target` is up to date once per run (target-update.ts). */
  ensure(target: string, chain: string[], requester: string | undefined, isForced: boolean, caller?: CallerContext): Promise<Outcome> {
    return ensureTarget(this, target, chain, requester, isForced, caller);
  }
}

export { describeReason };
