/** `redo-ts lock [--update] [--mirror URL --suite SUITE...] [SPEC...]`: resolve package lists into lock files. */

import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Command } from '../command.js';
import { RedoError } from '../../errors.js';
import { findProjectRoot } from '../../engine/paths.js';
import { loadSpec } from '../../sources/spec.js';
import { loadIndexes, lockPackageList, type IndexSourceOptions } from '../../sources/debian/locking.js';
import { readdir } from 'node:fs/promises';
import { formatVersionDifference, versionDifferences } from '../../sources/debian/platforms.js';
import { specSuffix } from '../../sources/spec.js';

const usage = `usage: redo-ts lock [--update] [--mirror URL --suite SUITE...]... [--component C...] [--keyring FILE] [SPEC...]

Resolves the Debian package list of each SPEC (default: every *.spec.yaml of the
project with a \`packages\` list) into NAME.lock.yaml beside it: the whole dependency closure,
each package with its exact version, architecture, source, size, pool path and
sha256 integrity, and which packages pulled it in. Nothing is downloaded but indexes.

Indexes come from the machine's apt configuration (apt-get update is not run; apt's
lists are only read), or from --mirror. Each Release file must be signed by a key of
the keyring (default: Debian's archive keyring), and each index must match it.

  --update          move every package to the newest version that fits, printing
                    old -> new (without it, locked versions are kept while they fit)
  --mirror URL      read MIRROR/dists/SUITE/ instead of apt's lists (needs --suite);
                    repeat for several mirrors (the security archive has its own URL)
  --suite SUITE     a suite to read from the --mirror before it (repeat for several)
  --component C     a component to read (repeatable; default main)
  --keyring FILE    the OpenPGP keyring Release files must be signed with

A build never changes a lock; only this command does.`;

/** Every spec file of the project, sorted: below the root, skipping node_modules and dot folders. */
async function findProjectSpecs(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (folder: string): Promise<void> => {
    const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await visit(path);
      else if (entry.name.endsWith(specSuffix)) out.push(path);
    }
  };
  await visit(root);
  return out.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

const command: Command = {
  summary: 'resolve Debian package lists into lock files (--update moves versions forward)',
  usage,
  async run(args, io) {
    let shouldUpdate = false;
    const mirrors: Array<{ url: string; suites: string[] }> = [];
    const looseSuites: string[] = [];
    const components: string[] = [];
    let keyringPath: string | undefined;
    const paths: string[] = [];
    for (let i = 0; i < args.length; i += 1) {
      const arg = args[i]!;
      const value = (): string => {
        const next = args[i + 1];
        if (next === undefined) throw new RedoError('ERR_USAGE', `redo: "lock": ${arg} needs a value`, { hint: usage.split('\n')[0] });
        i += 1;
        return next;
      };
      if (arg === '--update' || arg === '-u') shouldUpdate = true;
      else if (arg === '--mirror') mirrors.push({ url: value(), suites: [] });
      else if (arg === '--suite') (mirrors.at(-1)?.suites ?? looseSuites).push(value());
      else if (arg === '--component') components.push(value());
      else if (arg === '--keyring') keyringPath = resolve(io.cwd, value());
      else if (arg.startsWith('-')) throw new RedoError('ERR_USAGE', `redo: "lock": unknown option ${arg}`, { hint: usage.split('\n')[0] });
      else paths.push(resolve(io.cwd, arg));
    }
    // A --suite before the first --mirror belongs to it (the old order: --suite S --mirror URL).
    if (mirrors.length > 0) mirrors[0]!.suites.unshift(...looseSuites.splice(0));
    if (looseSuites.length > 0 || mirrors.some((m) => m.suites.length === 0)) {
      throw new RedoError('ERR_USAGE', 'redo: "lock": --mirror and --suite go together', {
        details: mirrors.filter((m) => m.suites.length === 0).map((m) => `no --suite after --mirror ${m.url}`),
        hint: 'redo-ts lock --mirror URL --suite bookworm --suite bookworm-updates --mirror SECURITY-URL --suite bookworm-security',
      });
    }
    const mirror = mirrors[0]?.url;
    const root = findProjectRoot(io.cwd);
    const candidates = paths.length > 0 ? paths : await findProjectSpecs(root);
    const specs = [];
    for (const path of candidates) {
      const spec = await loadSpec(path, { root });
      if (spec.packages !== undefined) specs.push(spec);
      else if (paths.length > 0) throw new RedoError('ERR_USAGE', `redo: "${spec.relativePath}": has no \`packages\` list to lock`, { hint: 'docs/debian.md shows a package list' });
    }
    if (specs.length === 0) {
      throw new RedoError('ERR_USAGE', 'redo: no spec of the project has a `packages` list to lock', { hint: 'name the spec files to lock' });
    }
    // One load of the indexes per architecture serves every spec.
    const universes = new Map<string, Awaited<ReturnType<typeof loadIndexes>>>();
    const families = new Map<string, Parameters<typeof versionDifferences>[0] extends ReadonlyArray<infer T> ? T[] : never>();
    for (const spec of specs) {
      const architecture = spec.packages!.architecture;
      const key = architecture ?? '';
      let universe = universes.get(key);
      if (universe === undefined) {
        const options: IndexSourceOptions = { env: io.env };
        if (architecture !== undefined) options.architecture = architecture;
        if (keyringPath !== undefined) options.keyringPath = keyringPath;
        if (mirror !== undefined) options.mirror = { url: mirror, suites: mirrors[0]!.suites, more: mirrors.slice(1), ...(components.length > 0 ? { components } : {}) };
        universe = await loadIndexes(options);
        universes.set(key, universe);
        for (const skipped of universe.skipped) io.stderr.write(`redo-ts lock: skipped an index whose Release file is not signed by the keyring: ${skipped}\n`);
      }
      const result = await lockPackageList(spec.path, spec.packages!, universe, { shouldUpdate, ...(mirror !== undefined ? { mirror } : {}) });
      const where = relative(root, result.lockPath);
      for (const change of result.changes) {
        io.stdout.write(`${where}: ${change.name} ${change.old ?? '(new)'} -> ${change.new ?? '(removed)'}\n`);
      }
      io.stderr.write(`redo-ts lock: ${where}: ${result.lock.packages.length} packages, ${result.isWritten ? `${result.changes.length} changed` : 'unchanged'}\n`);
      const stem = basename(spec.path).replace(/\.spec\.yaml$/, '');
      const suffix = `-${result.lock.architecture}`;
      if (stem.endsWith(suffix)) {
        const family = join(dirname(relative(root, spec.path)), stem.slice(0, -suffix.length));
        families.set(family, [...(families.get(family) ?? []), { architecture: result.lock.architecture, lock: result.lock }]);
      }
    }
    // Per-architecture specs NAME-ARCH of one NAME are one image's platforms: say where their versions differ.
    for (const [family, locks] of [...families].sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const difference of versionDifferences(locks)) {
        io.stderr.write(`redo-ts lock: ${family}-*: the platforms differ: ${formatVersionDifference(difference)}\n`);
      }
    }
    return 0;
  },
};
export default command;
