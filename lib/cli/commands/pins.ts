/** `redo-ts pins TARGET...`: provenance, every pinned source a target was built from, transitively. */

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from '../command.js';
import { RedoError } from '../../errors.js';
import { listTransitiveSources } from '../../engine/inspect.js';
import { findProjectRoot, toTargetPath } from '../../engine/paths.js';
import { StateStore } from '../../engine/state.js';
import { listPins } from '../../sources/provenance.js';
import { specSuffix } from '../../sources/spec.js';
import type { PinnedSource } from '../../sources/fragment.js';

const usage = `usage: redo-ts pins [--json] TARGET...

Lists every pinned source (kind, name, version, integrity, spec) that TARGET depends
on, transitively: through the dependencies recorded when it was built, and through
the requires and build-requires of every spec among them. TARGET may also be a spec
file (targets/NAME${specSuffix}) or a spec name.

  --json   print a JSON array instead of a table`;

/**
 * The spec files `target` depends on: the target itself if it is a spec file or a spec
 * name, else the `*.spec.yaml` files among the sources its last build recorded,
 * transitively (the engine's listTransitiveSources). Paths are absolute, sorted.
 * Throws ERR_USAGE when the target is neither a spec nor built yet.
 */
function specsOfTarget(root: string, cwd: string, target: string): string[] {
  const asPath = resolve(cwd, target);
  if (target.endsWith(specSuffix) && existsSync(asPath)) return [asPath];
  const byName = join(root, 'targets', `${target}${specSuffix}`);
  if (!target.includes('/') && existsSync(byName)) return [byName];
  const targetPath = toTargetPath(root, cwd, target);
  if (new StateStore(root).load(targetPath) === undefined) {
    throw new RedoError('ERR_USAGE', `redo: "${targetPath}": not a spec and not built yet`, {
      hint: `build it first (redo-ts ${targetPath}) so its dependencies are known, or name a spec file`,
    });
  }
  return listTransitiveSources(root, targetPath)
    .filter((path) => path.endsWith(specSuffix))
    .map((path) => join(root, path));
}

function formatTable(pins: PinnedSource[]): string {
  const rows = [['kind', 'name', 'version', 'integrity', 'spec']];
  for (const pin of pins) {
    const integrity = pin.integrity === undefined ? '(not pinned: run redo-ts pin)' : pin.isProjectFile ? `${pin.integrity} (project file)` : pin.integrity;
    rows.push([pin.role === 'patch' ? `${pin.kind}/patch` : pin.kind, pin.name, pin.version, integrity, pin.spec]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n');
}

const command: Command = {
  summary: 'list every pinned source (kind, name, version, integrity) a target depends on',
  usage,
  async run(args, io) {
    let isJson = false;
    const targets: string[] = [];
    for (const arg of args) {
      if (arg === '--json') isJson = true;
      else if (arg === '--help' || arg === '-h') {
        io.stdout.write(`${usage}\n`);
        return 0;
      } else if (arg.startsWith('-')) throw new RedoError('ERR_USAGE', `redo: "pins": unknown option ${arg}`, { hint: usage.split('\n')[0] });
      else targets.push(arg);
    }
    if (targets.length === 0) throw new RedoError('ERR_USAGE', 'redo: "pins": name a target or spec', { hint: usage.split('\n')[0] });
    const root = findProjectRoot(io.cwd);
    const specs = [...new Set(targets.flatMap((target) => specsOfTarget(root, io.cwd, target)))];
    const pins = specs.length === 0 ? [] : await listPins(specs, { root });
    if (isJson) io.stdout.write(`${JSON.stringify(pins, null, 2)}\n`);
    else io.stdout.write(`${formatTable(pins)}\n`);
    return 0;
  },
};
export default command;
