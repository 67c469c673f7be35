/** The contract every `lib/cli/commands/*.ts` module implements. */

import type { Writable } from 'node:stream';

/** Where a command reads and writes: injected so tests and nested calls can redirect it. */
export interface CommandIO {
  /** Absolute directory the command was started in. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: Writable;
  stderr: Writable;
  /** True when stderr is a terminal (live status line allowed). */
  isTTY: boolean;
}

/**
 * A command module's default export. Receives argv after the command name, returns
 * the exit status (0 success, 1 build failure, 2 usage). User-caused failures are
 * thrown as RedoError and rendered by `cli/main.ts`; commands never call process.exit.
 */
export interface Command {
  /** One line for `redo-ts --help`. */
  summary: string;
  /** Full usage text for `redo-ts COMMAND --help`. */
  usage: string;
  run(args: string[], io: CommandIO): Promise<number>;
}
