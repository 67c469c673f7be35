/** The processes that run sh rules for one engine: the request FIFO, the sh spawner, and the environment rules get. */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeRuleEnvironment } from '../env.js';
import { environmentChanges, parseExportedEnvironment, type CallerContext } from './caller.js';
import type { BuildJournal } from './journal.js';
import { startTicksOf } from './lock.js';
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
}

/**
 * Starts the request FIFO and the sh spawner when the first rule runs (their modules,
 * with node:net and node:child_process, are imported only then), makes the rules'
 * scratch folder and environment, and reads what clients pass on from their callers.
 * `close()` stops them and removes the run and scratch folders.
 */
export class RuleProcesses {
  /** The running request server, once started. */
  server: RequestServer | undefined;
  private spawner: RuleSpawner | undefined;
  private ruleEnv: NodeJS.ProcessEnv | undefined;
  /** Per-engine TMPDIR of rules (removed at close; a killed engine's is collected by the next). */
  private scratchDir: string | undefined;

  constructor(private readonly options: RuleProcessOptions) {}

  /** server.ts's splitArguments, once the server module is loaded. */
  get splitArguments(): ((payload: Buffer) => string[]) | undefined {
    return this.serverModule?.splitArguments;
  }

  /** Stops the spawner and the request FIFO and removes the scratch folder. */
  close(): void {
    this.spawner?.close();
    this.spawner = undefined;
    this.server?.close();
    this.server = undefined;
    if (this.scratchDir !== undefined) fs.rmSync(this.scratchDir, { recursive: true, force: true });
    this.scratchDir = undefined;
  }

  /** server.ts and spawner.ts (with node:net and node:child_process), loaded when the first rule runs. */
  private processModules: Promise<ProcessModules> | undefined;
  private serverModule: typeof import('./server.js') | undefined;

  /**
   * Starts the request FIFO and the sh spawner on the first rule run. Their modules are
   * imported only then, so a build that runs no rule (a no-op) never loads them.
   */
  async start(): Promise<{ server: RequestServer; spawner: { spawner: RuleSpawner; env: NodeJS.ProcessEnv } }> {
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
      this.server = RequestServer.open(this.options.stateDir, this.options.onRequest);
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
          runDir: this.server.runDir,
          parentToken: '',
          libexecDir: this.options.libexecDir,
          nodePath: this.options.nodePath,
        }),
        // Rules' scratch files go to a folder of this engine, collected if it is killed.
        TMPDIR: this.scratchDir,
      };
      this.spawner = new RuleSpawner(this.server.runDir, this.options.libexecDir, this.ruleEnv);
      const spawnerPid = this.spawner.pid;
      if (spawnerPid !== undefined) {
        try {
          this.options.journal.noteRun({ runDir: this.server.runDir, spawner: { pid: spawnerPid, startTicks: startTicksOf(spawnerPid) } });
        } catch (error) {
          throw writeFailed(path.relative(this.options.root, this.options.stateDir), 'cannot note the run in the build journal', error);
        }
      }
    }
    return { server: this.server, spawner: { spawner: this.spawner, env: this.ruleEnv } };
  }

  /**
   * The caller context a sh client left in `v.<pid>` of the run directory (its
   * `export -p` and `umask`), removed once read; undefined when there is none.
   */
  readCaller(callId: string): CallerContext | undefined {
    if (this.server === undefined) return undefined;
    const file = path.join(this.server.runDir, `v.${callId}`);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
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
    return { env: parsed.env, umask: parsed.umask, clientPid: Number(callId) };
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
