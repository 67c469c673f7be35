/** `redo-ts verify TARGET`: rebuild TARGET in a scratch copy of the project and compare the bytes. */

import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { listTargets, listTransitiveSources } from '../../engine/inspect.js';
import { hostBuiltSpecs } from '../../sources/build-environment.js';
import { specSuffix } from '../../sources/spec.js';
import { toTargetPath } from '../../engine/paths.js';
import { RedoError } from '../../errors.js';
import { compareArchives, describeDifference } from '../../image/archive-diff.js';
import { digestFile } from '../../image/digest.js';
import type { Command, CommandIO } from '../command.js';
import { binFile } from '../package-files.js';
import { projectRoot } from '../session.js';
import { runVerifyAttest, verifyAttestUsage } from '../verify-attest.js';

const usage = `Usage: redo-ts verify [--keep] TARGET

Builds TARGET if needed, then rebuilds it from a copy of the project's sources in a
scratch folder under the system temp folder (another path, fresh file times, another
umask, time zone and locale; SOURCE_DATE_EPOCH unchanged) and compares the bytes.
Prints "identical: TARGET sha256:..." and exits 0, or names the first differing
archive member and header field or content offset (inside image layers too) and
exits 1.

Sources copied: \`git ls-files --cached --others --exclude-standard\` in a git work
tree, else every file; never .redo/, node_modules/ (linked instead) or built targets.
In redo-ts's own project, dist/ is linked too (its rules import the compiled package).

  --keep   keep the scratch copy and print where it is

${verifyAttestUsage}`;

/** The redo-ts entry point of this installation (bin/redo-ts.js beside dist/). */
function redoTsBin(): string {
  return binFile;
}

/** Project files to copy, root-relative, sorted: git's view when in a work tree, else a walk. */
function listSources(root: string): string[] {
  const git = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'buffer' });
  let files: string[];
  if (git.status === 0) {
    files = git.stdout.toString('utf8').split('\0').filter((f) => f !== '');
  } else {
    files = [];
    const walk = (relative: string): void => {
      for (const name of readdirSync(path.join(root, relative)).sort()) {
        const child = relative === '' ? name : `${relative}/${name}`;
        if (child === '.redo' || child === '.git' || name === 'node_modules') continue;
        const stats = lstatSync(path.join(root, child));
        if (stats.isDirectory()) walk(child);
        else files.push(child);
      }
    };
    walk('');
  }
  const built = listTargets(root);
  const isBuilt = (file: string): boolean => built.some((target) => file === target || file.startsWith(`${target}/`));
  return files
    .filter((f) => !f.startsWith('.redo/') && !f.split('/').includes('node_modules') && !isBuilt(f))
    .filter((f) => existsSync(path.join(root, f)) || isSymlink(path.join(root, f)))
    .sort();
}

function isSymlink(file: string): boolean {
  try {
    return lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The nearest node_modules at or above `root`, which rules resolve their imports from. */
function findNodeModules(root: string): string | undefined {
  for (let dir = root; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules');
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

function isRedoTsPackage(root: string): boolean {
  try {
    return (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name?: unknown }).name === 'redo-ts';
  } catch {
    return false;
  }
}

/** Another umask, time zone and locale than ours, so the rebuild differs in each. */
function otherSurroundings(env: NodeJS.ProcessEnv): { umask: string; tz: string; locale: string } {
  const current = process.umask();
  return {
    umask: current === 0o077 ? '002' : '077',
    tz: env['TZ'] === 'Pacific/Kiritimati' ? 'America/St_Johns' : 'Pacific/Kiritimati',
    locale: env['LC_ALL'] === 'C' ? 'C.UTF-8' : 'C',
  };
}

function runBuild(cwd: string, target: string, env: NodeJS.ProcessEnv, umask: string | null): { status: number; stderr: string } {
  const script = umask === null ? 'exec "$0" "$1" "$2"' : `umask ${umask} && exec "$0" "$1" "$2"`;
  const result = spawnSync('sh', ['-c', script, process.execPath, redoTsBin(), target], { cwd, env, encoding: 'utf8' });
  return { status: result.status ?? 1, stderr: `${result.stderr ?? ''}${result.error ? String(result.error) : ''}` };
}

function digestText(file: string): string {
  if (lstatSync(file).isDirectory()) {
    const index = path.join(file, 'index.json');
    return existsSync(index) ? `${digestFile(index).digest} (index.json)` : '(folder)';
  }
  return digestFile(file).digest;
}

function rebuildFailed(target: string, where: string, result: { status: number; stderr: string }): RedoError {
  // The build's own report (headline, chain, hint) says what is wrong: show it whole,
  // indented under ours, cut to its first 40 lines.
  const lines = result.stderr.replace(/\n+$/, '').split('\n');
  const shown = lines.length > 40 ? [...lines.slice(0, 40), `… (${lines.length - 40} more lines)`] : lines;
  return new RedoError('ERR_VERIFY_REBUILD', `redo: "${target}": could not build it ${where}`, {
    details: [`exit status: ${result.status}`, 'its report:', ...shown.map((line) => `  ${line}`)],
  });
}

const command: Command = {
  summary: 'rebuild a target in a scratch copy (other path, time, umask) and compare bytes',
  usage,
  async run(args: string[], io: CommandIO): Promise<number> {
    if (args.includes('--attest')) return runVerifyAttest(args, io);
    const isKeep = args.includes('--keep');
    const rest = args.filter((a) => a !== '--keep');
    if (rest.includes('-h') || rest.includes('--help')) {
      io.stdout.write(`${usage}\n`);
      return 0;
    }
    if (rest.length !== 1 || rest[0]!.startsWith('-')) {
      throw new RedoError('ERR_USAGE', 'redo: "verify": wants exactly one TARGET', { details: [usage.split('\n')[0]!] });
    }
    const root = projectRoot(io);
    const target = toTargetPath(root, io.cwd, rest[0]!);
    const cleanEnv: NodeJS.ProcessEnv = {};
    // A top-level build, not a nested one: drop the variables a running build sets,
    // keep the user's settings (the download cache location).
    for (const [key, value] of Object.entries(io.env)) if (!key.startsWith('REDO_') || key === 'REDO_TS_CACHE') cleanEnv[key] = value;

    // 1. The original, built (or found up to date) where it is.
    const original = runBuild(root, target, { ...cleanEnv, REDO_TS_ROOT: root }, null);
    if (original.status !== 0) throw rebuildFailed(target, 'in the project', original);

    // 2. A scratch copy of the sources, at another path, with fresh file times.
    const scratchParent = mkdtempSync(path.join(tmpdir(), 'redo-ts-verify-'));
    const scratch = path.join(scratchParent, `rebuild-of-${path.basename(root)}`);
    try {
      mkdirSync(scratch);
      const now = new Date();
      for (const file of listSources(root)) {
        const to = path.join(scratch, file);
        mkdirSync(path.dirname(to), { recursive: true });
        cpSync(path.join(root, file), to, { verbatimSymlinks: true, preserveTimestamps: false });
        if (!isSymlink(to)) utimesSync(to, now, now);
      }
      const nodeModules = findNodeModules(root);
      if (nodeModules !== undefined && !existsSync(path.join(scratch, 'node_modules'))) symlinkSync(nodeModules, path.join(scratch, 'node_modules'));
      // Verifying redo-ts's own project: its rules import 'redo-ts', i.e. its compiled dist/.
      if (isRedoTsPackage(root) && existsSync(path.join(root, 'dist')) && !existsSync(path.join(scratch, 'dist'))) {
        symlinkSync(path.join(root, 'dist'), path.join(scratch, 'dist'));
      }

      // 3. Rebuild there, with another umask, time zone and locale.
      const other = otherSurroundings(io.env);
      // Without build caches (`caches:` of specs): a cache must never be what makes two builds agree.
      const rebuilt = runBuild(scratch, target, { ...cleanEnv, REDO_TS_ROOT: scratch, TZ: other.tz, LC_ALL: other.locale, LANG: other.locale, REDO_TS_BUILD_CACHES: 'off' }, other.umask);
      if (rebuilt.status !== 0) throw rebuildFailed(target, `in the scratch copy ${scratch}`, rebuilt);

      // 4. Compare. Both builds ran on this machine: a spec built with its tools
      // (build-environment: host) can still differ on another, and the verdict says so.
      const difference = await compareArchives(path.join(root, target), path.join(scratch, target));
      const specs = listTransitiveSources(root, target).filter((file) => file.endsWith(specSuffix)).map((file) => path.join(root, file));
      const notHermetic = (await hostBuiltSpecs(specs, root)).map((spec) => `  not hermetic: ${spec} builds with this machine's tools (build-environment: host); another machine may build other bytes\n`).join('');
      if (difference === null) {
        io.stdout.write(`identical: ${target} ${digestText(path.join(root, target))}\n${notHermetic}`);
        return 0;
      }
      io.stdout.write(`different: ${target}\n  first difference: ${describeDifference(difference)}\n${notHermetic}`);
      if (isKeep) io.stdout.write(`  scratch copy kept: ${scratch}\n`);
      return 1;
    } finally {
      if (!isKeep) rmSync(scratchParent, { recursive: true, force: true });
      else io.stderr.write(`redo-ts verify: scratch copy at ${scratch}\n`);
    }
  },
};
export default command;
