/** Command-line entry point: argv to command; the only place that sets the exit code. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command, CommandIO } from './command.js';
import { packageVersion } from './package-files.js';
import { renderError } from './report.js';

/**
 * Subcommands and the module implementing each, loaded on demand (so a broken one spares
 * the rest, and a build never loads push, SBOM or signing code). Each import is written out
 * so the bundler (scripts/bundle.mjs) sees it and makes the module a chunk of its own.
 */
const commandModules: Record<string, () => Promise<{ default: Command }>> = {
  redo: () => import('./commands/redo.js'),
  ifchange: () => import('./commands/ifchange.js'),
  ifcreate: () => import('./commands/ifcreate.js'),
  always: () => import('./commands/always.js'),
  stamp: () => import('./commands/stamp.js'),
  whichdo: () => import('./commands/whichdo.js'),
  ood: () => import('./commands/ood.js'),
  targets: () => import('./commands/targets.js'),
  sources: () => import('./commands/sources.js'),
  log: () => import('./commands/log.js'),
  explain: () => import('./commands/explain.js'),
  verify: () => import('./commands/verify.js'),
  pin: () => import('./commands/pin.js'),
  pins: () => import('./commands/pins.js'),
  sbom: () => import('./commands/sbom.js'),
  push: () => import('./commands/push.js'),
  lock: () => import('./commands/lock.js'),
  'ifchange-env': () => import('./commands/ifchange-env.js'),
  audit: () => import('./commands/audit.js'),
  contains: () => import('./commands/contains.js'),
  origin: () => import('./commands/origin.js'),
  cache: () => import('./commands/cache.js'),
  init: () => import('./commands/init.js'),
  key: () => import('./commands/key.js'),
  attestations: () => import('./commands/attestations.js'),
  store: () => import('./commands/store.js'),
};

/** The exit status table, shown in --help and the README. */
export const EXIT_STATUS_HELP = `Exit status:
  0   success
  1   build failure (a rule failed, no rule, cycle, dependency failed)
  2   usage error (bad option, target outside the project, command outside a rule)
  3   a rule wrote $1 directly (write $3 or stdout instead)
  4   a rule wrote both $3 and stdout
  5   two rules (NAME.do and NAME.do.ts) match at one lookup step
  6   .redo/ state is corrupt or too new (the message says what to delete)
  70  internal error in redo-ts (please report)`;

function version(): string {
  return packageVersion();
}

async function loadCommand(name: string): Promise<Command> {
  const load = commandModules[name];
  if (load === undefined) throw new Error(`no module for command ${name}`);
  return (await load()).default;
}

async function help(io: CommandIO): Promise<void> {
  const lines = [
    `redo-ts ${version()}: a redo build system with content-hashed targets`,
    '',
    'Usage: redo-ts [options] [TARGET...]      build TARGETs (default: all) if out of date',
    '       redo-ts COMMAND [args...]',
    '',
    'Options:',
    '  -f, --force        rebuild the named targets even if up to date (like redo)',
    '  -j N, --jobs N     run up to N rules at once (one budget shared by nested calls)',
    '  -k, --keep-going   keep building other targets after a failure',
    '  -x                 run sh rules with sh -x',
    '  -v                 run sh rules with sh -v',
    '  --shuffle          start independent targets in random order (finds undeclared deps)',
    '  --strict           fail on an out-of-date target whose rule is gone (else a warning)',
    '  --why, --explain   say why each TARGET is or would be rebuilt; build nothing',
    '  --remote-cache REF share built targets through a registry repository',
    '                     (HOST[:PORT]/REPO; also REDO_TS_REMOTE_CACHE); see docs/registry.md',
    '  --remote-cache-readonly  look up the remote cache, never upload to it',
    '  -h, --help         this text',
    '  --version          print the version',
    '',
    'Commands:',
  ];
  const nameWidth = Math.max(...Object.keys(commandModules).map((name) => name.length));
  for (const name of Object.keys(commandModules)) {
    let summary: string;
    try {
      summary = (await loadCommand(name)).summary;
    } catch {
      summary = '(unavailable in this build)';
    }
    lines.push(`  ${name.padEnd(nameWidth)} ${summary}`);
  }
  lines.push(
    '',
    'Inside sh rules, redo, redo-ifchange, redo-ifcreate, redo-always, redo-stamp,',
    'redo-whichdo, redo-ood, redo-targets, redo-sources and redo-log are on PATH.',
    'redo-ifchange-env VAR... records environment variables a target depends on.',
    'The package also installs them as commands (redo, redo-ifchange, ... redo-log), so',
    'redo projects build unchanged; `npx redo-ts init` starts a new image project.',
    'Shared rules (fragment, layer, image, initrd) come from the installed package,',
    "after the project's own rules/.",
    'Project root: $REDO_TS_ROOT, else the nearest folder with .redo/, rules/,',
    'package.json or .git, else the current folder.',
    '',
    EXIT_STATUS_HELP,
    '',
  );
  io.stdout.write(lines.join('\n'));
}

/**
 * After a failed build of `name`: when it is a bare word that names no file and looks
 * like a subcommand (`help`, or one or two letters off one, `sbon`), a line saying which
 * command was probably meant; undefined otherwise. A target of that name with a rule
 * still builds: this is said only after it failed.
 */
async function commandHint(name: string | undefined, io: CommandIO): Promise<string | undefined> {
  if (name === undefined || !/^[a-z][a-z-]*$/.test(name) || fs.existsSync(path.resolve(io.cwd, name))) return undefined;
  // Only for a name nothing could build: a rule that failed is its own story.
  const { projectRoot, sharedRulesDir } = await import('./session.js');
  const { findRule } = await import('../engine/lookup.js');
  const { toTargetPath } = await import('../engine/paths.js');
  const root = projectRoot(io);
  try {
    if (findRule(root, toTargetPath(root, io.cwd, name), sharedRulesDir()).found !== undefined) return undefined;
  } catch {
    return undefined;
  }
  if (name === 'help') return 'hint: "help" is not a redo-ts command; run `redo-ts --help` for the commands and options';
  const close = Object.keys(commandModules).filter((command) => editDistance(name, command) <= (command.length <= 5 ? 1 : 2));
  if (close.length === 0) return undefined;
  return `hint: "${name}" is not a redo-ts command either; did you mean ${close.map((c) => `\`redo-ts ${c}\``).join(' or ')}?`;
}

/** Levenshtein distance between two short words. Pure. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Runs the command line `argv` (without node and script) and returns the exit status. */
export async function main(argv: string[], io: CommandIO): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first !== undefined && commandModules[first] !== undefined) {
      const command = await loadCommand(first);
      if (rest.includes('--help') || rest.includes('-h')) {
        io.stdout.write(`${command.usage}\n`);
        return 0;
      }
      return await command.run(rest, io);
    }
    const { parseBuildOptions, runBuild } = await import('./session.js');
    const options = parseBuildOptions(argv);
    if (options.isHelp) {
      await help(io);
      return 0;
    }
    if (options.isVersion) {
      io.stdout.write(`redo-ts ${version()}\n`);
      return 0;
    }
    if (options.isWhy) return await (await loadCommand('explain')).run(options.targets, io);
    const status = await runBuild(options, io);
    if (status !== 0) {
      const hint = await commandHint(options.targets[0], io);
      if (hint !== undefined) io.stderr.write(`${hint}\n`);
    }
    return status;
  } catch (error) {
    io.stderr.write(`${renderError(error, version())}\n`);
    const code = (error as { exitCode?: unknown }).exitCode;
    return typeof code === 'number' ? code : 70;
  }
}

const io: CommandIO = {
  cwd: process.cwd(),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  isTTY: process.stderr.isTTY === true,
};
process.exitCode = await main(process.argv.slice(2), io);
