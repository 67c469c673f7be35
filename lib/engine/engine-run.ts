/** What the parts of one engine run share: its options, its stores, the memo tables of this run, and the one call back into scheduling. */

import type { CallerContext } from './caller.js';
import type { EngineOptions } from './engine-options.js';
import type { FolderListings } from './folder-listing.js';
import type { Job } from './job.js';
import type { BuildJournal } from './journal.js';
import type { TargetLocks } from './lock.js';
import type { NoOpRecorder } from './no-op-memo.js';
import type { Outcome } from './outcome.js';
import type { RuleProcesses } from './rule-processes.js';
import type { JobSlots } from './scheduler.js';
import type { FileStamp } from './stamp.js';
import type { StateStore } from './state.js';
import type { WaitGraph } from './wait-graph.js';

/**
 * One build run as its parts see it (implemented by Engine, build.ts): the scheduling
 * (target-update.ts), the out-of-date decision (target-check.ts), rule runs
 * (rebuild.ts), the rule protocol (client-requests.ts), the target cache
 * (cache-use.ts), sources (sources.ts) and reports (report.ts) each take it as their
 * first argument. Internal to the engine.
 */
export interface EngineRun {
  /** Absolute project root. */
  readonly root: string;
  readonly options: EngineOptions;
  readonly state: StateStore;
  readonly locks: TargetLocks;
  readonly journal: BuildJournal;
  /** The engine's own budget of job slots (-j). */
  readonly slots: JobSlots;
  /** The run folder and rule environment (made with the first rule), the request FIFO and the sh spawner (started with the first sh rule or child process). */
  readonly processes: RuleProcesses;
  /** Each target's outcome in this run (a target is brought up to date at most once). */
  readonly outcomes: Map<string, Promise<Outcome>>;
  /** Waits-for edges between targets, for cycle detection across concurrent requests. */
  readonly waits: WaitGraph;
  /** Running rules by token. */
  readonly jobs: Map<string, Job>;
  /** Stamps of sources, each taken at most once per run. */
  readonly sourceStamps: Map<string, FileStamp | undefined>;
  /** The facts of this engine's decisions, for `.redo/no-op.json` (no-op-memo.ts). */
  readonly noOp: NoOpRecorder;
  /** Existence answers from folder listings, used until the first rule starts. */
  readonly listings: FolderListings;
  /**
   * Whether a rule candidate outside the project (above its root, the installed rules/)
   * is a file, answered from listings of those folders kept for the run (lookup.ts).
   */
  readonly isRuleFileOutside: (absolute: string) => boolean;
  /** Sources already warned about (ERR_SOURCE_HAS_RULE). */
  readonly warnedSources: Set<string>;
  /** Targets whose rule this engine ran (their records may still be being saved). */
  readonly builtTargets: Set<string>;
  /** Targets whose (latest) outcome in this run is a failure. */
  readonly failedTargets: Set<string>;
  /** Targets this engine built that have an output file in place. */
  readonly builtOutputs: Set<string>;
  /** Rules started so far (also the source of job tokens); 0 while no rule has run. */
  jobCounter: number;
  /** True once no new rule may start (a failure without -k, an interrupt). */
  isStopping: boolean;
  hasFailure: boolean;
  isInterrupted: boolean;
  hasWarned: boolean;
  /** True once a record was saved (the run is then no no-op). */
  hasSaved: boolean;
  /**
   * Ensures `target` is up to date (once per run), recording that `requester` waits for
   * it (target-update.ts).
   */
  ensure(target: string, chain: string[], requester: string | undefined, isForced: boolean, caller?: CallerContext): Promise<Outcome>;
  /** Remembers background work (a record save) that flush() waits for; its failure fails `target`. */
  track(work: Promise<void>, target: string): void;
  /** Waits until every record save started so far is on disk. */
  flush(): Promise<void>;
}
