/** Which fragments make a spec's build environment: the project's `build-environment` spec, then the spec's build-requires. */

import { existsSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { RedoError } from '../errors.js';
import { loadSpec, specSuffix, type Spec } from './spec.js';

/** The name of the spec that declares a project's default build environment. */
export const buildEnvironmentSpecName = 'build-environment';

/** One fragment a spec's build environment is made of. */
export interface BuildEnvironmentFragment {
  /** Absolute path of the fragment tar (`…/build-environment.fragment.tar`). */
  tarPath: string;
  /** The spec that declares it, relative to the project root. */
  label: string;
}

/**
 * The fragments `spec`'s build steps run on, in order: the project's default build
 * environment (`build-environment.spec.yaml` in the spec's folder, or the nearest one
 * in a folder above it up to the project root), then each of the spec's build-requires
 * (`NAME.fragment.tar` beside the spec). Empty for a spec without build steps or patches, or with
 * `build-environment: host`. Throws ERR_BUILD_ENVIRONMENT when no default environment
 * is declared, or when the environment spec itself has build steps (they would have to
 * run in what they make). Reads only file existence.
 */
export function buildEnvironmentOf(spec: Spec): BuildEnvironmentFragment[] {
  // An app install (npm:, pypi:) is a build step too, and a patch runs in the sandbox.
  if ((spec.build.length === 0 && spec.appDependencies.length === 0 && spec.patches.length === 0) || spec.buildEnvironment === 'host') return [];
  const label = (path: string): string => relative(spec.root, path).split(sep).join('/');
  const envSpec = findBuildEnvironmentSpec(dirname(spec.path), spec.root);
  if (envSpec === undefined) {
    throw new RedoError('ERR_BUILD_ENVIRONMENT', `redo: "${spec.relativePath}": has build steps but the project declares no build environment`, {
      details: [
        `looked for: ${buildEnvironmentSpecName}${specSuffix} in ${label(dirname(spec.path)) || '.'} and the folders above it, up to the project root`,
        'build steps run in a sandbox whose tools come from that spec\'s locked packages, never from the host',
      ],
      hint: `write ${label(join(dirname(spec.path), `${buildEnvironmentSpecName}${specSuffix}`))} (redo-ts init writes one: packages: [busybox-static]) and run redo-ts lock; or add \`build-environment: host\` to the spec to use the host's tools (the image is then not hermetic)`,
    });
  }
  if (envSpec === spec.path) {
    throw new RedoError('ERR_BUILD_ENVIRONMENT', `redo: "${spec.relativePath}": the build environment's own spec cannot have build steps`, {
      details: ['its build steps would have to run in the environment they make'],
      hint: 'list packages (packages:) or deb: sources only, or move the steps to another spec that has it as its environment',
    });
  }
  const parts: BuildEnvironmentFragment[] = [{ tarPath: envSpec.replace(/\.spec\.yaml$/, '.fragment.tar'), label: label(envSpec) }];
  for (const name of spec.buildRequires) {
    const path = join(dirname(spec.path), `${name}${specSuffix}`);
    parts.push({ tarPath: join(dirname(spec.path), `${name}.fragment.tar`), label: label(path) });
  }
  return parts;
}

/**
 * The fragments whose static busybox runs the postinsts of `spec`'s package list when
 * its architecture is not the machine's (`hostArchitecture`, dpkg's): the project's
 * build-environment spec (nearest, as buildEnvironmentOf finds it). Empty for a spec
 * without packages, of the machine's architecture, for the build-environment spec
 * itself, or when the project declares none (its postinsts are then not run).
 * `hostArchitecture` is called only when the list names an architecture.
 */
export async function scriptEnvironmentOf(spec: Spec, hostArchitecture: () => Promise<string>): Promise<BuildEnvironmentFragment[]> {
  const architecture = spec.packages?.architecture;
  // The machine's architecture (a dpkg run) is asked only of a list that names one.
  if (architecture === undefined || architecture === await hostArchitecture()) return [];
  const envSpec = findBuildEnvironmentSpec(dirname(spec.path), spec.root);
  if (envSpec === undefined || envSpec === spec.path) return [];
  return [{ tarPath: envSpec.replace(/\.spec\.yaml$/, '.fragment.tar'), label: relative(spec.root, envSpec).split(sep).join('/') }];
}

/** The nearest `build-environment.spec.yaml` from `folder` up to `root` (both included), or undefined. */
export function findBuildEnvironmentSpec(folder: string, root: string): string | undefined {
  for (let dir = folder; ; dir = dirname(dir)) {
    const candidate = join(dir, `${buildEnvironmentSpecName}${specSuffix}`);
    if (existsSync(candidate)) return candidate;
    const rel = relative(root, dir);
    if (rel === '' || rel.startsWith('..') || dirname(dir) === dir) return undefined;
  }
}

/**
 * The specs among `specPaths` (absolute) whose build steps run with the builder's own
 * tools (`build-environment: host`), relative to `root`, sorted: an image built from
 * any of them is not hermetic. Throws what loadSpec throws.
 */
export async function hostBuiltSpecs(specPaths: readonly string[], root: string): Promise<string[]> {
  const out: string[] = [];
  for (const path of specPaths) {
    const spec = await loadSpec(path, { root });
    if ((spec.build.length > 0 || spec.appDependencies.length > 0) && spec.buildEnvironment === 'host') out.push(spec.relativePath);
  }
  return out.sort();
}
