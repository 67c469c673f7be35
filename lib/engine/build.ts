/** redo / ifchange / ifcreate semantics: decides what is out of date and builds it. */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RedoError, isRedoError } from '../errors.js';
import { makeRuleEnvironment } from '../env.js';
import { describeReason, type BuildEventListener, type RebuildReason } from './events.js';
import { BuildJournal } from './journal.js';
import { TargetLocks } from './lock.js';
import { findRule, type RuleLookup } from './lookup.js';
import { toTargetPath } from './paths.js';
import { runRule, type TypeScriptRuleSupport } from './runner.js';
import { JobSlots } from './scheduler.js';
import type { RequestServer } from './server.js';
import type { RuleSpawner } from './spawner.js';
import { MISSING, identityOf, readStamp, sha256Hex, type FileStamp, type Identity } from './stamp.js';
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
  /** Base environment for rules. */
  env: NodeJS.ProcessEnv;
  /** Absolute directory holding the sh client scripts (redo-ifchange, ...). */
  libexecDir: string;
  /** Absolute path of the node binary (for client fallbacks). */
  nodePath: string;
  onEvent: BuildEventListener;
  /** Loader for `.do.ts` rules; without it TypeScript rules fail. */
  typeScript?: TypeScriptRuleSupport;
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
  hasFailedDependency: boolean;
  writeStderr(text: string): void;
}

/** The modules that run rules' processes, loaded on the first rule run. */
interface ProcessModules {
  server: typeof import('./server.js');
  spawner: typeof import('./spawner.js');
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
  private readonly waits = new Map<string, Map<string, number>>();
  private readonly jobs = new Map<string, Job>();
  private readonly sourceStamps = new Map<string, FileStamp | undefined>();
  private server: RequestServer | undefined;
  private spawner: RuleSpawner | undefined;
  private jobCounter = 0;
  private isStopping = false;
  private hasFailure = false;
  private isReconciled = false;
  private isInterrupted = false;
  /** The first record that could not be saved: the run fails with it. */
  private saveFailure: { target: string; error: RedoError } | undefined;
  /** Per-engine TMPDIR of rules (removed at close; a killed engine's is collected by the next). */
  private scratchDir: string | undefined;

  constructor(options: EngineOptions) {
    this.options = options;
    this.root = options.root;
    this.state = new StateStore(options.root);
    this.locks = new TargetLocks(this.state.stateDir);
    this.journal = new BuildJournal(this.state.stateDir);
    this.slots = new JobSlots(options.jobs);
  }

  /**
   * Brings `names` (relative to the absolute `fromDir`) up to date: ifchange semantics,
   * or redo semantics (always rebuild the named targets) when `isForced`.
   * Never throws for build failures: they are in the summary and were emitted as events.
   * Throws ERR_TARGET_OUTSIDE / ERR_STATE_* before building anything.
   */
  async build(names: string[], fromDir: string, isForced: boolean): Promise<BuildSummary> {
    this.state.checkVersion();
    const targets = names.map((name) => toTargetPath(this.root, fromDir, name));
    if (!this.isReconciled) {
      this.isReconciled = true;
      this.reconcile();
    }
    const summary: BuildSummary = { failed: [], firstError: undefined };
    const results = await Promise.all(
      targets.map(async (target) => {
        const outcome = await this.ensure(target, [target], undefined, isForced);
        return { target, outcome: this.requireBuilt(target, [target], outcome) };
      }),
    );
    await this.flush();
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
   * Settles what engines killed earlier left (see journal.ts): for each target a dead
   * engine had started, its temporary files (named after that engine's pid) are removed,
   * and an output that does not match the target's record, i.e. renamed into place
   * before its record was saved, is deleted so the target is rebuilt, not mistaken for a
   * source or a hand edit. A target another live process is building is left for later.
   */
  private reconcile(): void {
    for (const journal of this.journal.findAbandoned()) {
      let isSettled = true;
      for (const target of journal.targets) {
        if (!this.locks.tryAcquire(target)) {
          isSettled = false;
          continue;
        }
        try {
          removeLeftovers(path.join(this.root, target), journal.owner.pid);
          removeLeftovers(this.state.recordPath(target), journal.owner.pid, 'record');
          const record = this.state.load(target);
          const absolute = path.join(this.root, target);
          const current = readStamp(absolute, record?.output ?? undefined);
          if (current !== undefined && (record?.output == null || current.sha256Hex !== record.output.sha256Hex)) {
            fs.rmSync(absolute, { recursive: true, force: true });
          }
        } catch (error) {
          isSettled = false;
          if (!isWriteError(error) && !isRedoError(error)) throw error;
        } finally {
          this.locks.release(target);
        }
      }
      // Compiled TypeScript rules are written as `NAME.<hash>.mjs.<pid>.tmp` and renamed.
      removeLeftovers(path.join(this.state.stateDir, 'ts', '.mjs'), journal.owner.pid, 'compiled');
      if (isSettled) fs.rmSync(journal.file, { force: true });
    }
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
    await stopBuildProcesses(this.server?.runDir, graceMs);
    // Records of targets already built are being saved: let them land (they are small).
    await Promise.race([this.flush(), new Promise((resolve) => setTimeout(resolve, graceMs))]);
    for (const job of this.jobs.values()) {
      removeLeftovers(path.join(this.root, job.target), process.pid);
    }
    this.spawner?.close();
    this.spawner = undefined;
    this.server?.close();
    this.server = undefined;
    this.removeScratch();
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
    this.spawner?.close();
    this.spawner = undefined;
    this.server?.close();
    this.server = undefined;
    this.removeScratch();
    this.journal.close(this.saveFailure === undefined && !this.isInterrupted);
    this.locks.releaseAll();
  }

  private removeScratch(): void {
    if (this.scratchDir !== undefined) fs.rmSync(this.scratchDir, { recursive: true, force: true });
    this.scratchDir = undefined;
  }

  /** Turns a "missing" outcome (no file, no rule) into an ERR_NO_RULE failure and reports it. */
  private requireBuilt(target: string, chain: string[], outcome: Outcome): Outcome {
    if (outcome.status !== 'missing') return outcome;
    const error = new RedoError('ERR_NO_RULE', `redo: "${target}": no rule to build it and no such file`, {
      details: [
        ...(chain.length > 1 ? [`chain: ${chain.join(' → ')}`] : []),
        'looked for:',
        ...outcome.lookup.misses.filter((miss) => !miss.endsWith('.ts')).map((miss) => `  ${miss}[.ts]`),
      ],
      hint: 'create one of those rules, or the source file itself',
    });
    this.fail(target, error, true);
    return { status: 'failed', error };
  }

  private fail(target: string, error: RedoError, isRootCause: boolean): void {
    this.hasFailure = true;
    if (!this.options.isKeepGoing) this.isStopping = true;
    if (this.isInterrupted) return;
    this.options.onEvent({ kind: 'failed', target, error, isRootCause });
  }

  /**
   * Ensures `target` is up to date (once per engine), recording that `requester` waits
   * for it. Returns ERR_CYCLE as a failure if `target` already waits on `requester`.
   */
  private async ensure(target: string, chain: string[], requester: string | undefined, isForced: boolean): Promise<Outcome> {
    if (requester !== undefined) {
      const cycle = target === requester ? [target] : this.findWaitPath(target, requester);
      if (cycle !== undefined) {
        const trail = [...chain.slice(0, -1), target];
        const error = new RedoError('ERR_CYCLE', `redo: "${target}": dependency cycle`, {
          details: [`chain: ${trail.join(' → ')}`, `cycle: ${[requester, ...cycle].join(' → ')}`],
          hint: 'remove one of these dependencies',
        });
        this.fail(requester, error, true);
        return { status: 'failed', error };
      }
    }
    let outcome = this.outcomes.get(target);
    if (outcome === undefined) {
      outcome = this.update(target, chain, isForced);
      this.outcomes.set(target, outcome);
    }
    if (requester === undefined) return outcome;
    this.addWait(requester, target);
    try {
      return await outcome;
    } finally {
      this.removeWait(requester, target);
    }
  }

  private addWait(from: string, to: string): void {
    let edges = this.waits.get(from);
    if (edges === undefined) this.waits.set(from, (edges = new Map()));
    edges.set(to, (edges.get(to) ?? 0) + 1);
  }

  private removeWait(from: string, to: string): void {
    const edges = this.waits.get(from);
    if (edges === undefined) return;
    const count = (edges.get(to) ?? 1) - 1;
    if (count <= 0) edges.delete(to);
    else edges.set(to, count);
  }

  /** A path of waits-for edges from `from` to `to` (both included), or undefined. */
  private findWaitPath(from: string, to: string): string[] | undefined {
    const seen = new Set<string>();
    const visit = (node: string): string[] | undefined => {
      if (node === to) return [node];
      if (seen.has(node)) return undefined;
      seen.add(node);
      for (const next of [...(this.waits.get(node)?.keys() ?? [])].sort()) {
        const rest = visit(next);
        if (rest !== undefined) return [node, ...rest];
      }
      return undefined;
    };
    return visit(from);
  }

  private async update(target: string, chain: string[], isForced: boolean): Promise<Outcome> {
    try {
      const record = this.state.load(target);
      let reason: RebuildReason;
      if (isForced) {
        reason = { kind: 'forced' };
      } else {
        const verdict = await this.check(target, record, chain);
        if (verdict === undefined) return this.sourceOutcome(target);
        if (verdict.status === 'failed') return verdict;
        if (verdict.status === 'fresh') {
          if (record !== undefined) this.options.onEvent({ kind: 'fresh', target });
          return { status: 'ok', identity: verdict.identity, ...(verdict.stamp === undefined ? {} : { stamp: verdict.stamp }) };
        }
        reason = verdict.reason;
      }
      return await this.rebuild(target, chain, reason, record, isForced);
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
      this.fail(target, redoError, true);
      return { status: 'failed', error: redoError };
    }
  }

  /** Stamp of a source file, hashed at most once per engine (stat fast path against `hint`). */
  private stampSource(target: string, hint?: FileStamp): FileStamp | undefined {
    if (this.sourceStamps.has(target)) return this.sourceStamps.get(target);
    const stamp = readStamp(path.join(this.root, target), hint);
    this.sourceStamps.set(target, stamp);
    return stamp;
  }

  private sourceOutcome(target: string, hint?: FileStamp): Outcome {
    const stamp = this.stampSource(target, hint);
    if (stamp === undefined) return { status: 'missing', lookup: findRule(this.root, target) };
    return { status: 'ok', identity: identityOf(stamp), stamp };
  }

  /**
   * Decides whether `target` is fresh. Undefined means "not a target" (a source, or a
   * file that exists but redo-ts never built). Brings target dependencies up to date
   * first, in recorded order, stopping at the first change (later ones may be obsolete).
   */
  private async check(target: string, record: TargetRecord | undefined, chain: string[]): Promise<Verdict | undefined> {
    const absolute = path.join(this.root, target);
    if (record === undefined) {
      return fs.existsSync(absolute) ? undefined : { status: 'stale', reason: { kind: 'no-previous-build' } };
    }
    let isDirty = false;
    const current = readStamp(absolute, record.output ?? undefined);
    if (record.output !== null && current === undefined) return { status: 'stale', reason: { kind: 'output-missing' } };
    if (current !== undefined && (record.output === null || current.sha256Hex !== record.output.sha256Hex)) {
      // Another process may be between renaming a new output and saving its record: then
      // rebuild() waits for its lock and checks again. (A killed one's were settled by reconcile().)
      if (!this.locks.isHeld(target)) {
        if (!this.locks.tryAcquire(target)) return { status: 'stale', reason: { kind: 'interrupted' } };
        this.locks.release(target);
      }
      this.options.onEvent({
        kind: 'warning',
        target,
        error: new RedoError('ERR_TARGET_EDITED', `redo: "${target}": modified since redo-ts built it; not rebuilding`, {
          details: [`built: ${record.output === null ? 'no output' : `sha256:${record.output.sha256Hex}`}`, `found: ${identityOf(current)}`],
          hint: `delete "${target}" or run \`redo-ts -f ${target}\` to rebuild it`,
        }),
      });
      return { status: 'fresh', identity: identityOf(current), stamp: current };
    }
    if (current !== undefined && record.output !== null && !sameStamp(record.output, current)) {
      record.output = current;
      isDirty = true;
    }
    if (record.isAlways) return { status: 'stale', reason: { kind: 'always' } };
    for (const dep of record.deps) {
      if (dep.mode === 'env') {
        const identity = envIdentity(this.options.env[dep.path]);
        if (identity !== dep.identity) {
          return { status: 'stale', reason: { kind: 'changed', path: `$${dep.path}`, oldIdentity: dep.identity ?? MISSING, newIdentity: identity } };
        }
        continue;
      }
      if (dep.mode === 'ifcreate') {
        if (fs.existsSync(path.join(this.root, dep.path))) {
          const isRule = dep.path.endsWith('.do') || dep.path.endsWith('.do.ts');
          return { status: 'stale', reason: { kind: isRule ? 'rule-appeared' : 'created', path: dep.path } };
        }
        continue;
      }
      const pending = this.ensureDependency(dep, [...chain, dep.path], target);
      const outcome = pending instanceof Promise ? await pending : pending;
      if (outcome.status === 'failed') {
        return { status: 'failed', error: dependencyFailed(target, dep.path, chain) };
      }
      const identity = outcome.status === 'missing' ? MISSING : outcome.identity;
      if (identity !== dep.identity) {
        return { status: 'stale', reason: { kind: 'changed', path: dep.path, oldIdentity: dep.identity ?? MISSING, newIdentity: identity } };
      }
      if (outcome.status === 'ok' && outcome.stamp !== undefined && dep.stamp !== undefined && !sameStamp(dep.stamp, outcome.stamp)) {
        dep.stamp = outcome.stamp;
        isDirty = true;
      }
    }
    if (isDirty) {
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
   * Like ensure(), but a dependency recorded as a source (it has a stat) is stamped
   * directly, with the recorded stat as its fast path. Should it have become a target
   * since, its content hash is still what dependents compare, so the answer is the same.
   */
  private ensureDependency(dep: DependencyRecord, chain: string[], requester: string): Promise<Outcome> | Outcome {
    if (dep.stamp !== undefined && !this.outcomes.has(dep.path)) {
      const outcome = this.sourceOutcome(dep.path, dep.stamp);
      if (outcome.status === 'ok') return outcome;
    }
    return this.ensure(dep.path, chain, requester, false);
  }

  private async rebuild(target: string, chain: string[], reason: RebuildReason, record: TargetRecord | undefined, isForced: boolean): Promise<Outcome> {
    // A killed engine may have left its temporary output; its pid names it.
    let isLockHandedOver = false;
    const hasWaited = await this.locks.acquire(target, {
      chain,
      onAbandoned: (deadPid) => removeLeftovers(path.join(this.root, target), deadPid),
      onWaiting: (holder) => this.options.onEvent({
        kind: 'warning',
        target,
        error: new RedoError('ERR_LOCK_HELD', `redo: "${target}": waiting for another redo-ts process that is building it`, {
          details: [`held by: ${holder}`],
          hint: 'wait, or stop that process; a lock of a dead process is broken at once',
        }),
      }),
    });
    try {
      if (hasWaited && !isForced) {
        // Another process held the lock: it probably just built this target.
        record = this.state.load(target);
        const verdict = await this.check(target, record, chain);
        if (verdict === undefined) return this.sourceOutcome(target);
        if (verdict.status === 'failed') return verdict;
        if (verdict.status === 'fresh') return { status: 'ok', identity: verdict.identity };
        reason = verdict.reason;
      }
      const lookup = findRule(this.root, target);
      if (lookup.found === undefined) {
        if (fs.existsSync(path.join(this.root, target))) {
          // Its rule is gone but the file stays: a source for now. The record is kept, so
          // when the rule comes back (a branch switch), the changed rule dependency rebuilds it.
          return this.sourceOutcome(target);
        }
        return { status: 'missing', lookup };
      }
      const found = lookup.found;
      const deps: DependencyRecord[] = lookup.misses.map((miss) => ({ path: miss, mode: 'ifcreate' }));
      const ruleOutcome = await this.ensure(found.rule, [...chain, found.rule], target, false);
      if (ruleOutcome.status !== 'ok') return { status: 'failed', error: dependencyFailed(target, found.rule, chain) };
      deps.push(dependencyRecord(found.rule, ruleOutcome));

      await this.slots.acquire(chain.length);
      const job = this.createJob(target, chain, found.cwd, deps);
      try {
        if (this.isStopping) {
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
        const { server, spawner } = await this.startServer();
        server.openJob(job.token);
        const env = { ...spawner.env, REDO_PARENT: job.token };
        let result;
        try {
          result = await runRule({
            root: this.root,
            target,
            found,
            env,
            isXtrace: this.options.isXtrace,
            isVerbose: this.options.isVerbose,
            logFile: this.state.logPath(target),
            scratchDir: server.runDir,
            onStderr: (text) => this.options.onEvent({ kind: 'rule-stderr', target, text }),
            typeScript: this.options.typeScript,
            spawner: spawner.spawner,
            ruleEnv: { REDO_PARENT: job.token },
            operations: {
              ifchange: (paths) => this.throwOnFailure(job, 'ifchange', paths),
              ifcreate: (paths) => this.throwOnFailure(job, 'ifcreate', paths),
              always: () => void (job.isAlways = true),
              stamp: (data) => void (job.stampSha256Hex = sha256Hex(data)),
              ifchangeEnv: (names) => this.recordEnv(job, names),
            },
            chain,
          });
        } catch (error) {
          // The dependency's own failure was reported; a sh rule then exits non-zero and a
          // TypeScript rule's ifchange() throws: neither is news.
          if (job.hasFailedDependency && (isRedoError(error, 'ERR_RULE_FAILED') || isRedoError(error, 'ERR_DEPENDENCY_FAILED'))) {
            return { status: 'failed', error: new RedoError('ERR_DEPENDENCY_FAILED', `redo: "${target}": a dependency failed`, { cause: error }) };
          }
          throw error;
        }
        const builds = (previous?.builds ?? 0) + 1;
        const identity = job.stampSha256Hex !== null
          ? `stamp:${job.stampSha256Hex}`
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
        this.track(saving.finally(() => this.locks.release(target)), target);
        this.options.onEvent({
          kind: 'built',
          target,
          reason,
          hasOutput: result.output !== null,
          isOutputChanged: identity !== previous?.identity,
          durationMs: performance.now() - startMs,
        });
        return { status: 'ok', identity };
      } finally {
        this.server?.closeJob(job.token);
        this.jobs.delete(job.token);
        if (job.hasSlot) this.slots.release();
      }
    } finally {
      if (!isLockHandedOver) this.locks.release(target);
    }
  }

  private createJob(target: string, chain: string[], cwd: string, deps: DependencyRecord[]): Job {
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
      hasFailedDependency: false,
      writeStderr: (text) => this.options.onEvent({ kind: 'rule-stderr', target, text }),
    };
    this.jobs.set(job.token, job);
    return job;
  }

  private ruleEnv: NodeJS.ProcessEnv | undefined;
  /** server.ts and spawner.ts (with node:net and node:child_process), loaded when the first rule runs. */
  private processModules: Promise<ProcessModules> | undefined;
  private serverModule: typeof import('./server.js') | undefined;

  /**
   * Starts the request FIFO and the sh spawner on the first rule run. Their modules are
   * imported only then, so a build that runs no rule (a no-op) never loads them.
   */
  private async startServer(): Promise<{ server: RequestServer; spawner: { spawner: RuleSpawner; env: NodeJS.ProcessEnv } }> {
    if (this.server === undefined || this.spawner === undefined || this.ruleEnv === undefined) {
      this.processModules ??= Promise.all([import('./server.js'), import('./spawner.js')]).then(([server, spawner]) => ({ server, spawner }));
      const { server: serverModule, spawner: spawnerModule } = await this.processModules;
      this.serverModule = serverModule;
      const { RequestServer } = serverModule;
      const { RuleSpawner } = spawnerModule;
      // Another rule may have started them while this one waited for the modules.
      if (this.server !== undefined && this.spawner !== undefined && this.ruleEnv !== undefined) {
        return { server: this.server, spawner: { spawner: this.spawner, env: this.ruleEnv } };
      }
      this.server = RequestServer.open(this.state.stateDir, (command, payload, token) => this.serveClient(command, payload, token));
      try {
        this.scratchDir = serverModule.makeScratchDirectory(this.options.env.TMPDIR || os.tmpdir());
      } catch {
        // TMPDIR names no writable folder: the project's state folder will do.
        fs.mkdirSync(path.join(this.state.stateDir, 'tmp'), { recursive: true });
        this.scratchDir = serverModule.makeScratchDirectory(path.join(this.state.stateDir, 'tmp'));
      }
      this.ruleEnv = {
        ...makeRuleEnvironment(this.options.env, {
          root: this.root,
          runDir: this.server.runDir,
          parentToken: '',
          libexecDir: this.options.libexecDir,
          nodePath: this.options.nodePath,
        }),
        // Rules' scratch files go to a folder of this engine, collected if it is killed.
        TMPDIR: this.scratchDir,
      };
      this.spawner = new RuleSpawner(this.server.runDir, this.options.libexecDir, this.ruleEnv);
    }
    return { server: this.server, spawner: { spawner: this.spawner, env: this.ruleEnv } };
  }

  /** Handles one sh client call; returns the client's exit status. */
  private async serveClient(command: string, payload: Buffer, token: string): Promise<number> {
    const job = this.jobs.get(token);
    const splitArguments = this.serverModule?.splitArguments;
    if (job === undefined || splitArguments === undefined) return 2;
    switch (command) {
      case 'ifchange':
      case 'redo':
      case 'ifcreate':
        return this.request(job, command, splitArguments(payload));
      case 'always':
        job.isAlways = true;
        return 0;
      case 'ifchange-env':
        return this.recordEnv(job, splitArguments(payload));
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
    const status = await this.request(job, command, names);
    if (status !== 0) {
      throw new RedoError(command === 'ifcreate' ? 'ERR_IFCREATE_EXISTS' : 'ERR_DEPENDENCY_FAILED', `redo: "${job.target}": ${command} ${names.join(' ')} failed`, {
        details: [`chain: ${job.chain.join(' → ')}`],
      });
    }
  }

  /**
   * A running rule's redo-ifchange / redo / redo-ifcreate call. The job gives its slot
   * back while it waits, so nested builds share the one budget without deadlock.
   */
  private async request(job: Job, command: 'ifchange' | 'redo' | 'ifcreate', names: string[]): Promise<number> {
    let targets: string[];
    try {
      targets = names.map((name) => toTargetPath(this.root, path.join(this.root, job.cwd), name));
    } catch (error) {
      job.writeStderr(`${isRedoError(error) ? error.render() : String(error)}\n`);
      return 2;
    }
    if (command === 'ifcreate') {
      for (const target of targets) {
        if (fs.existsSync(path.join(this.root, target))) {
          job.writeStderr(`redo-ifcreate: "${target}" already exists\n`);
          return 1;
        }
        addDependency(job.deps, { path: target, mode: 'ifcreate' });
      }
      return 0;
    }
    job.hasSlot = false;
    this.slots.release();
    let outcomes: Outcome[];
    try {
      outcomes = await Promise.all(
        targets.map(async (target) => {
          const chain = [...job.chain, target];
          return this.requireBuilt(target, chain, await this.ensure(target, chain, job.target, command === 'redo'));
        }),
      );
    } finally {
      await this.slots.acquire(JobSlots.RESUMING);
      job.hasSlot = true;
    }
    let status = 0;
    outcomes.forEach((outcome, index) => {
      const target = targets[index] as string;
      if (outcome.status === 'ok') addDependency(job.deps, dependencyRecord(target, outcome));
      else status = 1;
    });
    if (status !== 0) job.hasFailedDependency = true;
    return status;
  }
}

/** What an env dependency compares: a hash of the value (the value itself may be a secret), or missing. */
function envIdentity(value: string | undefined): Identity {
  return value === undefined ? MISSING : `sha256:${sha256Hex(value)}`;
}

/**
 * Removes the temporary files an engine with `pid` left for the target at the absolute
 * `file` (`NAME.redo.PID.tmp`, and what a rule made from that name beside it:
 * `NAME.redo.PID.tmp.1.tmp`, `.NAME.redo.PID.tmp.layers`), for the record at `file`
 * (`NAME.json.PID.N.tmp`), or, for `.redo/ts/.mjs`, compiled rules (`*.mjs.PID.tmp`).
 */
function removeLeftovers(file: string, pid: number, kind: 'output' | 'record' | 'compiled' = 'output'): void {
  const base = path.basename(file);
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(file));
  } catch {
    return;
  }
  for (const name of names) {
    const isLeftover = kind === 'record'
      ? name.startsWith(`${base}.${pid}.`) && name.endsWith('.tmp')
      : kind === 'compiled'
      ? name.endsWith(`${base}.${pid}.tmp`)
      : (name.startsWith('.') ? name.slice(1) : name).startsWith(`${base}.redo.${pid}.tmp`);
    if (isLeftover) fs.rmSync(path.join(path.dirname(file), name), { recursive: true, force: true });
  }
}

function dependencyRecord(target: string, outcome: Outcome): DependencyRecord {
  if (outcome.status !== 'ok') return { path: target, mode: 'ifchange', identity: MISSING };
  return { path: target, mode: 'ifchange', identity: outcome.identity, ...(outcome.stamp === undefined ? {} : { stamp: outcome.stamp }) };
}

function addDependency(deps: DependencyRecord[], dep: DependencyRecord): void {
  const index = deps.findIndex((d) => d.path === dep.path && d.mode === dep.mode);
  if (index === -1) deps.push(dep);
  else deps[index] = dep;
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.sizeBytes === b.sizeBytes && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.sha256Hex === b.sha256Hex;
}

function dependencyFailed(target: string, dependency: string, chain: string[]): RedoError {
  return new RedoError('ERR_DEPENDENCY_FAILED', `redo: "${target}": dependency "${dependency}" failed`, {
    details: [`chain: ${[...chain, dependency].join(' → ')}`],
  });
}

export { describeReason };
