/** Provenance: every pinned source a set of specs depends on, following requires and build-requires. */

import { RedoError, isRedoError } from '../errors.js';
import { integrityOfFile, type Integrity } from './integrity.js';
import type { PinnedSource } from './fragment.js';
import { loadSpec, requiredSpecPath, type Spec } from './spec.js';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { findBuildEnvironmentSpec } from './build-environment.js';
import { lockPathOf, readDebianLock } from './debian/lock.js';
import { integrityOfFolder, isFolder, membersOfFolder } from './folder.js';
import { packagesToInstall, readNpmLock } from './npm/lock.js';
import { readRequirements } from './pypi/requirements.js';

/** A spec reached from the starting specs, and how. */
export interface ReachedSpec {
  spec: Spec;
  /** `start` for the given specs; else whether it was reached only through build-requires. */
  via: 'start' | 'run' | 'build';
}

/**
 * Loads `specPaths` and, transitively, every spec they name in `requires` and
 * `build-requires` (`NAME.spec.yaml` beside the naming spec). Returns them in a stable
 * order: breadth-first from the starting specs, dependencies in the order written.
 * A spec reached both ways counts as `run`. With `architecture` (one platform's image),
 * `requires: NAME` is met by a per-architecture `NAME-ARCH.spec.yaml` when there is no
 * `NAME.spec.yaml`, as the image assembly's requires check does. Throws
 * ERR_SPEC_NOT_FOUND naming the spec and field that asks for a missing one, ERR_SPEC_*
 * for a bad spec.
 */
export async function collectSpecs(specPaths: readonly string[], options: { root?: string; architecture?: string } = {}): Promise<ReachedSpec[]> {
  const reached = new Map<string, ReachedSpec>();
  const queue: Array<{ path: string; via: ReachedSpec['via']; askedBy?: { spec: Spec; field: string } }> =
    specPaths.map((path) => ({ path: resolve(path), via: 'start' as const }));
  while (queue.length > 0) {
    const { path, via, askedBy } = queue.shift()!;
    const seen = reached.get(path);
    if (seen !== undefined) {
      if (seen.via === 'build' && via === 'run') seen.via = 'run';
      continue;
    }
    let spec: Spec;
    try {
      spec = await loadSpec(path, options);
    } catch (error) {
      if (askedBy !== undefined && isRedoError(error, 'ERR_SPEC_NOT_FOUND')) {
        throw new RedoError('ERR_SPEC_NOT_FOUND', `redo: "${askedBy.spec.relativePath}": ${askedBy.field} names a spec that does not exist`, {
          details: [`wanted: ${error.headline.replace(/^redo: /, '').replace(/: spec file cannot be read$/, '')}`],
          hint: 'each name in requires/build-requires is a NAME.spec.yaml beside the spec',
          cause: error,
        });
      }
      throw error;
    }
    reached.set(path, { spec, via });
    const runVia = via === 'build' ? 'build' : 'run';
    for (const name of spec.requires) {
      let required = requiredSpecPath(spec, name);
      if (options.architecture !== undefined && !existsSync(required)) {
        const perArchitecture = requiredSpecPath(spec, `${name}-${options.architecture}`);
        if (existsSync(perArchitecture)) required = perArchitecture;
      }
      queue.push({ path: required, via: runVia, askedBy: { spec, field: `requires: ${name}` } });
    }
    for (const name of spec.buildRequires) queue.push({ path: requiredSpecPath(spec, name), via: 'build', askedBy: { spec, field: `build-requires: ${name}` } });
    // The project's build environment is a build input of every spec whose steps run in it.
    const environment = buildEnvironmentSpecOf(spec);
    if (environment !== undefined) queue.push({ path: environment, via: 'build', askedBy: { spec, field: 'build environment' } });
  }
  return [...reached.values()];
}

/**
 * The build-environment spec `spec`'s build steps run in (absolute), or undefined: for a
 * spec without steps, with `build-environment: host`, in a project that declares none,
 * or for the environment spec itself.
 */
export function buildEnvironmentSpecOf(spec: Spec): string | undefined {
  if (spec.build.length === 0 || spec.buildEnvironment === 'host') return undefined;
  const found = findBuildEnvironmentSpec(dirname(spec.path), spec.root);
  return found === spec.path ? undefined : found;
}

/**
 * Every source and patch of `specPaths` and the specs they require (run and build
 * time), the packages of their Debian, npm and PyPI locks (a requirement with several
 * hashes by its first), as provenance records: kind, name, version, integrity, url, spec. Project files
 * (`integrity: project`) get the sha256 of their current content. Sorted by spec path,
 * then in spec order.
 * Reads specs and project files; downloads nothing.
 */
export async function listPins(specPaths: readonly string[], options: { root?: string } = {}): Promise<PinnedSource[]> {
  const reached = await collectSpecs(specPaths, options);
  const specs = reached.map((item) => item.spec).sort((a, b) => (a.relativePath < b.relativePath ? -1 : a.relativePath > b.relativePath ? 1 : 0));
  const out: PinnedSource[] = [];
  for (const spec of specs) {
    const all = [
      ...spec.sources.map((source) => ({ source, role: 'source' as const })),
      ...spec.patches.map((patch) => ({ source: patch.source, role: 'patch' as const })),
    ];
    for (const { source, role } of all) {
      let integrity = source.integrity;
      if (source.isProjectFile) {
        const path = resolve(spec.root, source.url.slice('file:'.length));
        integrity = isFolder(path) ? integrityOfFolder(path) : await integrityOfFile(path).catch(() => undefined);
      }
      out.push({
        kind: source.kind,
        name: source.name,
        version: source.deb?.version ?? spec.version,
        integrity,
        isProjectFile: source.isProjectFile,
        url: source.url,
        spec: spec.relativePath,
        role,
      });
    }
    // npm and PyPI packages: the lock's own integrity, the requirement's hash.
    for (const deps of spec.appDependencies) {
      const absolute = resolve(spec.root, deps.lock);
      if (deps.ecosystem === 'npm') {
        for (const locked of packagesToInstall(await readNpmLock(absolute, deps.lock), deps.isDevIncluded)) {
          out.push({ kind: 'npm', name: locked.name, version: locked.version, integrity: locked.integrity as Integrity, isProjectFile: false, url: locked.resolved, spec: spec.relativePath, role: 'source' });
        }
      } else {
        for (const requirement of await readRequirements(absolute, deps.lock)) {
          out.push({
            kind: 'pypi', name: requirement.name, version: requirement.version, integrity: `sha256-${Buffer.from(requirement.sha256Hex[0]!, 'hex').toString('base64')}` as Integrity,
            isProjectFile: false, url: `pypi:${requirement.name}==${requirement.version}`, spec: spec.relativePath, role: 'source',
          });
        }
      }
    }
    if (spec.packages === undefined) continue;
    // A package list's pins are its lock's packages; a missing lock pins nothing yet.
    const lock = await readDebianLock(lockPathOf(spec.path)).catch((error: unknown) => {
      if (isRedoError(error, 'ERR_DEBIAN_LOCK_MISSING')) return undefined;
      throw error;
    });
    for (const locked of lock?.packages ?? []) {
      out.push({
        kind: 'deb',
        name: locked.name,
        version: locked.version,
        integrity: locked.integrity as Integrity,
        isProjectFile: false,
        url: `deb:${locked.name}=${locked.version}?arch=${locked.architecture}`,
        spec: spec.relativePath,
        role: 'source',
      });
    }
  }
  return out;
}

/**
 * The project files a fragment built from `spec` depends on, relative to the root and
 * sorted: the spec file itself and every `file:` source and patch (pinned or project
 * files), and the lock file of a spec with a package list. A rule building the fragment declares these with redo-ifchange so that an
 * edit rebuilds it. Pure: reads nothing.
 */
export function projectInputsOf(spec: Spec): string[] {
  const inputs = new Set<string>([spec.relativePath]);
  if (spec.packages !== undefined) inputs.add(relative(spec.root, lockPathOf(spec.path)).split('\\').join('/'));
  for (const path of appInputsOf(spec)) inputs.add(path);
  for (const source of [...spec.sources, ...spec.patches.map((patch) => patch.source)]) {
    if (source.kind === 'file') inputs.add(source.url.slice('file:'.length).split('/').filter((part) => part !== '' && part !== '.').join('/'));
  }
  return [...inputs].sort();
}

/**
 * The project files a rule building `spec`'s fragment reads through its project file
 * sources (`integrity: project`) and its `npm:`/`pypi:` lock files (with the package.json
 * beside an npm lock), relative to the root and sorted: each file source itself, and for
 * a folder source the folder (a dependency on a folder compares its listing: a file or
 * subfolder added, removed or renamed anywhere below, a chmod +x, a link pointed
 * elsewhere) and every file and symlink in it (folder.ts: their content), so any change
 * to what the folder copy would copy rebuilds the fragment. Reads the folders' listings.
 */
export function projectFilesOf(spec: Spec): string[] {
  const out = new Set<string>();
  for (const source of [...spec.sources, ...spec.patches.map((patch) => patch.source)]) {
    if (!source.isProjectFile) continue;
    const relativePath = source.url.slice('file:'.length).split('/').filter((part) => part !== '' && part !== '.').join('/');
    const absolute = resolve(spec.root, relativePath);
    if (!isFolder(absolute)) {
      out.add(relativePath);
      continue;
    }
    out.add(relativePath);
    for (const member of membersOfFolder(absolute)) if (member.type !== 'directory') out.add(`${relativePath}/${member.path}`);
  }
  for (const path of appInputsOf(spec)) out.add(path);
  return [...out].sort();
}

/** The lock files of a spec's `npm:`/`pypi:` dependencies, and the package.json beside an npm lock. */
function appInputsOf(spec: Spec): string[] {
  return spec.appDependencies.flatMap((deps) => deps.ecosystem === 'npm' ? [deps.lock, join(dirname(deps.lock), 'package.json')] : [deps.lock]);
}
