/** The processes that run rules for one engine, started when first needed: the request FIFO, the sh spawner, and the environment rules get. */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeRuleEnvironment } from '../env.js';
import { RedoError } from '../errors.js';
import { environmentChanges, parseExportedEnvironment, type CallerContext } from './caller.js';
import type { BuildJournal } from './journal.js';
import { removeFile, startTicksOf } from './lock.js';
import type { RequestHandler, RequestServer } from './server.js';
import type { RuleSpawner } from './spawner.js';
import { writeFailed } from './state.js';

/** What RuleProcesses needs from its engine. */
export interface RuleProcessOptions {
  /** Absolute project root. */
  root: string;
  /** Absolute `.redo/` folder. */
  stateDir: string;
  /** Base environment for rules. */
  env: NodeJS.ProcessEnv;
  /** Absolute folder of the sh client scripts. */
  libexecDir: string;
  /** Absolute path of the node binary. */
  nodePath: string;
  /** Where the run folder and spawner are noted, for the next engine if this one is killed. */
  journal: BuildJournal;
  /** Serves one client call (the engine's protocol handler). */
  onRequest: RequestHandler;
}

/** The modules that run rules' processes, loaded on the first rule run. */
interface ProcessModules {
  server: typeof import('./server.js');
  spawner: typeof import('./spawner.js');
  childWatch: typeof import('./child-watch.js');
}

/**
 * The run folder of one engine as rules see it (REDO_RUN_DIR, their capture files) and
 * the reply FIFOs of its running jobs, made once the request FIFO exists.
 */
export interface RunFolder {
  readonly runDir: string;
  /** `runDir` with symlinks resolved, as /proc shows the files in it. */
  readonly realRunDir: string;
  /** Gives job `token` its reply FIFO (now, or when the request FIFO is made). */
  openJob(token: string): void;
  /** Returns job `token`'s reply FIFO once its rule has finished. */
  closeJob(token: string): void;
}

/** The parts of a rule run that start sh rules (RuleSpawner.run). */
export type RuleStarter = Pick<RuleSpawner, 'run'>;

/**
 * Makes the run folder, the rules' scratch folder and environment when the first rule
 * runs (server.ts and spawner.ts, with node:net and node:child_process, are imported
 * only then), and starts the sh spawner only when something needs it: a sh rule, or
 * any child process this process starts (a TypeScript rule's `spawnSync`, zx, the
 * library's tools), so a build of TypeScript rules that start no child starts no
 * process at all. The spawner is started before that child, synchronously
 * (child-watch.ts), so that a killed engine's children are still ended by it; the
 * request FIFO comes with the first sh rule or child that can call back. Reads what
 * clients pass on from their callers. `close()` stops them and removes the run and
 * scratch folders.
 */
export class RuleProcesses {
  /** The run folder and jobs' reply FIFOs, once the first rule ran. */
  server: RunFolder | undefined;
  private requestServer: RequestServer | undefined;
  private spawner: RuleSpawner | undefined;
  private ruleEnv: NodeJS.ProcessEnv | undefined;
  /** Per-engine TMPDIR of rules (removed at close; a killed engine's is collected by the next). */
  private scratchDir: string | undefined;
  /** Jobs whose rules run (their reply FIFOs are made with the request FIFO). */
  private readonly openJobs = new Set<string>();
  /** Ends the child-process watch (child-watch.ts). */
  private unwatch: (() => void) | undefined;

  constructor(private readonly options: RuleProcessOptions) {}

  /** server.ts's splitArguments, once the server module is loaded. */
  get splitArguments(): ((payload: Buffer) => string[]) | undefined {
    return this.serverModule?.splitArguments;
  }

  /** Stops the spawner and the request FIFO and removes the run and scratch folders. */
  close(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.spawner?.close();
    this.spawner = undefined;
    this.requestServer?.close();
    this.requestServer = undefined;
    if (this.server !== undefined) fs.rmSync(this.server.runDir, { recursive: true, force: true });
    this.server = undefined;
    this.openJobs.clear();
    if (this.scratchDir !== undefined) fs.rmSync(this.scratchDir, { recursive: true, force: true });
    this.scratchDir = undefined;
  }

  /** server.ts, spawner.ts and child-watch.ts, loaded when the first rule runs. */
  private processModules: Promise<ProcessModules> | undefined;
  private serverModule: typeof import('./server.js') | undefined;
  private spawnerModule: typeof import('./spawner.js') | undefined;
  private childWatch: typeof import('./child-watch.js') | undefined;

  /**
   * Makes the run folder and the rules' environment on the first rule run; the returned
   * spawner starts the sh spawner and the request FIFO when its first sh rule runs.
   * Their modules are imported only then, so a build that runs no rule (a no-op) never
   * loads them.
   */
  async start(): Promise<{ server: RunFolder; spawner: { spawner: RuleStarter; env: NodeJS.ProcessEnv } }> {
    if (this.server === undefined || this.ruleEnv === undefined) {
      this.processModules ??= Promise.all([import('./server.js'), import('./spawner.js'), import('./child-watch.js')])
        .then(([server, spawner, childWatch]) => ({ server, spawner, childWatch }));
      const { server: serverModule, spawner: spawnerModule, childWatch } = await this.processModules;
      this.serverModule = serverModule;
      this.spawnerModule = spawnerModule;
      this.childWatch = childWatch;
      // Another rule may have made them while this one waited for the modules.
      if (this.server === undefined || this.ruleEnv === undefined) {
        const runDir = serverModule.makeRunDirectory(this.options.stateDir);
        this.server = this.runFolder(runDir);
        try {
          this.scratchDir = serverModule.makeScratchDirectory(this.options.env.TMPDIR || os.tmpdir());
        } catch {
          // TMPDIR names no writable folder: the project's state folder will do.
          fs.mkdirSync(path.join(this.options.stateDir, 'tmp'), { recursive: true });
          this.scratchDir = serverModule.makeScratchDirectory(path.join(this.options.stateDir, 'tmp'));
        }
        this.ruleEnv = {
          ...makeRuleEnvironment(this.options.env, {
            root: this.options.root,
            runDir,
            parentToken: '',
            libexecDir: this.options.libexecDir,
            nodePath: this.options.nodePath,
          }),
          // Rules' scratch files go to a folder of this engine, collected if it is killed.
          TMPDIR: this.scratchDir,
        };
        // From now on, whatever starts a child in this process starts the spawner first.
        // A child can call back (redo-ifchange) only with REDO_PARENT, as ctx.env and zx's $ give it.
        this.unwatch = childWatch.watchChildren({ beforeChild: (env) => this.startSpawner((env ?? process.env).REDO_PARENT !== undefined).runDir });
      }
    }
    return { server: this.server, spawner: { spawner: { run: (request) => this.startSpawner(true).spawner.run(request) }, env: this.ruleEnv } };
  }

  /**
   * Starts the sh spawner, once, and notes the run in the build journal; with `withFifo`
   * (a sh rule, or a child that can call back) makes the request FIFO and the reply
   * FIFOs of running jobs too, once. Synchronous: it runs before a child process starts.
   * Call after start().
   */
  private startSpawner(withFifo: boolean): { runDir: string; spawner: RuleSpawner } {
    const { server: folder, serverModule, spawnerModule, childWatch, ruleEnv } = this;
    if (folder === undefined || serverModule === undefined || spawnerModule === undefined || childWatch === undefined || ruleEnv === undefined) {
      // close() came first: the build was stopped (an interrupt) before this rule started.
      throw new RedoError('ERR_DEPENDENCY_FAILED', 'redo: a rule was not started: the build was stopping');
    }
    if (this.spawner === undefined || (withFifo && this.requestServer === undefined)) {
      childWatch.unwatched(() => this.startOnce(folder, serverModule, spawnerModule, ruleEnv, withFifo));
    }
    return { runDir: folder.runDir, spawner: this.spawner as RuleSpawner };
  }

  private startOnce(folder: RunFolder, serverModule: typeof import('./server.js'), spawnerModule: typeof import('./spawner.js'), ruleEnv: NodeJS.ProcessEnv, withFifo: boolean): void {
    if (this.spawner === undefined) {
      // The spawner first: if this engine is killed from here on, it ends what the run started.
      this.spawner = new spawnerModule.RuleSpawner(folder.runDir, this.options.libexecDir, ruleEnv);
      const spawnerPid = this.spawner.pid;
      if (spawnerPid !== undefined) {
        try {
          this.options.journal.noteRun({ runDir: folder.runDir, spawner: { pid: spawnerPid, startTicks: startTicksOf(spawnerPid) } });
        } catch (error) {
          throw writeFailed(path.relative(this.options.root, this.options.stateDir), 'cannot note the run in the build journal', error);
        }
      }
    }
    if (withFifo && this.requestServer === undefined) {
      this.requestServer = serverModule.RequestServer.open(this.options.stateDir, this.options.onRequest, folder.runDir);
      for (const token of this.openJobs) this.requestServer.openJob(token);
    }
  }

  /** The run folder `runDir`, whose jobs get reply FIFOs once the request FIFO exists. */
  private runFolder(runDir: string): RunFolder {
    return {
      runDir,
      realRunDir: fs.realpathSync(runDir),
      openJob: (token) => {
        this.openJobs.add(token);
        this.requestServer?.openJob(token);
      },
      closeJob: (token) => {
        this.openJobs.delete(token);
        this.requestServer?.closeJob(token);
      },
    };
  }

  /**
   * The caller context a sh client left in `v.<pid>` of the run directory (its
   * `export -p` and `umask`), read when its `env` or `umask` is first asked for (only a
   * rule started for the call needs them: most calls name sources or built targets) and
   * removed then; `done()` removes it if nothing asked. Without the file, `env` and
   * `umask` are those of `fallback` (the calling rule's own). Undefined outside a build.
   */
  readCaller(callId: string, fallback: Pick<CallerContext, 'env' | 'umask'>): { caller: CallerContext; done(): void } | undefined {
    if (this.server === undefined) return undefined;
    const file = path.join(this.server.runDir, `v.${callId}`);
    let parsed: ReturnType<typeof parseExportedEnvironment> | null | undefined;
    const load = (): ReturnType<typeof parseExportedEnvironment> | null => {
      if (parsed === undefined) parsed = this.parseCallerFile(file);
      return parsed;
    };
    const caller: CallerContext = {
      get env() {
        return (load() ?? fallback).env;
      },
      get umask() {
        return (load() ?? fallback).umask;
      },
      clientPid: Number(callId),
    };
    return {
      caller,
      done: () => {
        try {
          if (parsed === undefined) removeFile(file);
        } catch {
          // Not removable: the run folder goes at the end anyway.
        }
        parsed = null;
      },
    };
  }

  /** Reads, removes and parses a caller's `v.<pid>` file; null when there is none. */
  private parseCallerFile(file: string): ReturnType<typeof parseExportedEnvironment> | null {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return null;
    }
    // Removed at once: an unlink on the run folder (tmpfs) costs less than the thread pool's
    // hand-over and callback would.
    try {
      fs.unlinkSync(file);
    } catch {
      // Gone already; the run folder goes at the end anyway.
    }
    // Most calls of a build send the same text but for REDO_PARENT (not inherited
    // anyway): parse each distinct rest once.
    text = text.replace(/^(?:export|declare -x) REDO_PARENT=\S*\n/m, '');
    let parsed = this.parsedCallers.get(text);
    if (parsed === undefined) {
      parsed = parseExportedEnvironment(text);
      if (this.parsedCallers.size >= 64) this.parsedCallers.clear();
      this.parsedCallers.set(text, parsed);
    }
    return parsed;
  }

  private readonly parsedCallers = new Map<string, ReturnType<typeof parseExportedEnvironment>>();
  /** environmentChanges() per inherited environment object (shared by calls with equal text). */
  private readonly changesOf = new WeakMap<Record<string, string>, ReturnType<typeof environmentChanges>>();

  /** What a rule must set and unset to see `env` instead of `base` (none without `env`), computed once per object. */
  changesFor(base: NodeJS.ProcessEnv, env: Record<string, string> | undefined): ReturnType<typeof environmentChanges> {
    if (env === undefined) return { set: {}, unset: [] };
    let changes = this.changesOf.get(env);
    if (changes === undefined) {
      changes = environmentChanges(base, env);
      this.changesOf.set(env, changes);
    }
    return changes;
  }
}
