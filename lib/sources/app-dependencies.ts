/** A spec's application dependencies (`npm:`, `pypi:`): fetched and verified before the build, installed as a build step. */

import type { Integrity } from './integrity.js';
import { fetchNpmPackages, prepareNpmInstall, type FetchedNpmPackage } from './npm/packages.js';
import { fetchPypiFiles, preparePypiInstall, type FetchedPypiFile } from './pypi/packages.js';
import type { AppDependencies, Spec } from './spec.js';

/** The verified files of one `npm:` or `pypi:` entry of a spec. */
export type FetchedAppDependencies =
  | { deps: AppDependencies & { ecosystem: 'npm' }; packages: FetchedNpmPackage[] }
  | { deps: AppDependencies & { ecosystem: 'pypi' }; files: FetchedPypiFile[] };

/** One pinned package, as provenance: what `redo-ts pins` and the build log list. */
export interface AppPackagePin {
  kind: 'npm' | 'pypi';
  name: string;
  version: string;
  integrity: Integrity;
  /** The npm tarball URL, or `pypi:FILE` for a wheel. */
  url: string;
}

/** The install step of one entry: run like a build step (same runner, same environment, plus `env`). */
export interface AppInstallStep {
  what: string;
  script: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Fetches and verifies every package of every `npm:`/`pypi:` entry of `spec` (see
 * fetchNpmPackages and fetchPypiFiles for what is fetched how, and what they throw).
 */
export async function fetchAppDependencies(spec: Spec, options: { cacheDir: string; env: NodeJS.ProcessEnv; isOffline: boolean }): Promise<FetchedAppDependencies[]> {
  const out: FetchedAppDependencies[] = [];
  for (const deps of spec.appDependencies) {
    if (deps.ecosystem === 'npm') out.push({ deps: deps as AppDependencies & { ecosystem: 'npm' }, packages: await fetchNpmPackages(spec, deps, options) });
    else out.push({ deps: deps as AppDependencies & { ecosystem: 'pypi' }, files: await fetchPypiFiles(spec, deps, options) });
  }
  return out;
}

/** The pins of fetched dependencies, in lock order. Pure. */
export function pinsOf(fetched: FetchedAppDependencies): AppPackagePin[] {
  if ('packages' in fetched) {
    return fetched.packages.map((item) => ({ kind: 'npm', name: item.locked.name, version: item.locked.version, integrity: item.integrity, url: item.locked.resolved }));
  }
  return fetched.files.map((item) => ({ kind: 'pypi', name: item.requirement.name, version: item.requirement.version, integrity: item.integrity, url: `pypi:${item.fileName}` }));
}

/**
 * Lays out what the install step of `fetched` needs in the build's `scratch` folder
 * and `destDir`, and returns the step (npm ci --offline, or pip install --no-index).
 */
export async function prepareAppInstall(spec: Spec, fetched: FetchedAppDependencies, scratch: string, destDir: string): Promise<AppInstallStep> {
  if ('packages' in fetched) return prepareNpmInstall(spec, fetched.deps, fetched.packages, scratch, destDir);
  return preparePypiInstall(spec, fetched.deps, fetched.files, scratch);
}
