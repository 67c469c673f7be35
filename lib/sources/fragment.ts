/** Turning a spec into a rootfs fragment: fetch and verify sources, build in a scratch folder, write a deterministic tar. */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, rename, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, posix, relative, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { RedoError, isRedoError } from '../errors.js';
import { entriesOfTar, mtimeFromEnvironment, pathText, writeTar, type TarEntry } from '../image/tar.js';
import type { Sha256Digest } from '../image/digest.js';
import { checkTar } from '../image/tar-check.js';
import { readDebEntries } from './deb.js';
import { copyFetched, fetchSource, type FetchedSource, type FetchOptions } from './fetch.js';
import { compileGlob } from './glob.js';
import type { Integrity } from './integrity.js';
import { loadSpec, type FileRule, type SourceSpec, type Spec } from './spec.js';
import { holdTemporary, withScratchFolder } from './scratch.js';
import { copyFolder, isFolder } from './folder.js';
import { unpackArchive } from './unpack.js';
import { fetchAppDependencies, pinsOf, prepareAppInstall } from './app-dependencies.js';
import { cacheDirFrom } from './store.js';
import { buildDebianPackages, checkDebSourceIdentity, type DebianPackagesResult } from './debian/packages.js';
import { hostToolsOf, type HostTools } from './debian/host-tools.js';
import { assembleBuildEnvironment, type EnvironmentPart } from '../sandbox/environment.js';
import { runInSandbox, type BuildEnvironment } from '../sandbox/sandbox.js';
import { codeKey, keepFragment, keptFragmentKey, machineArchitecture, takeKeptFragment } from './fragment-cache.js';
import { lockPathOf } from './debian/lock.js';

/** One pinned input a build used: what `redo-ts pins` lists. */
export interface PinnedSource {
  kind: 'file' | 'http' | 'deb' | 'npm' | 'pypi';
  /** Source name: the file name, or the Debian package name. */
  name: string;
  /** The Debian version for deb sources; the spec's version otherwise. */
  version: string;
  /** The pin, or for a project file (`integrity: project`) its sha256 now. */
  integrity: Integrity | undefined;
  /** True for project files, whose integrity is not pinned. */
  isProjectFile: boolean;
  url: string;
  /** The spec that lists the source, relative to the project root. */
  spec: string;
  /** Whether it is a source or a patch. */
  role: 'source' | 'patch';
}

/** Options for buildFragment. */
export interface BuildFragmentOptions {
  /** Project root; found from the spec path when omitted. */
  root?: string;
  /** Cache folder; default cacheDirFrom(env). */
  cacheDir?: string;
  /** Never download: a source missing from the cache is an error. */
  isOffline?: boolean;
  /** Environment: PATH for build steps, REDO_TS_CACHE, SOURCE_DATE_EPOCH, apt's settings. */
  env?: NodeJS.ProcessEnv;
  /** Write only the entries of this layer (default: every layer). */
  layer?: string;
  /** mtime of every member; default SOURCE_DATE_EPOCH from env, else 0. */
  mtimeSeconds?: number;
  /** Progress lines of long downloads (see FetchOptions.onProgress); default none. */
  onProgress?: (line: string) => void;
  /** Where build-step and patch output goes (default: discarded, last lines kept for errors). */
  log?: Writable;
  /**
   * Fragment tars of the spec's build-requires, unpacked (in order) into `$SYSROOT` for
   * the build steps, e.g. headers and libraries to compile against. They are not
   * delivered: only `files` and deb sources are.
   */
  sysroot?: readonly string[];
  /**
   * The build environment the steps run in (buildEnvironmentOf gives it for a spec): fragment
   * tars assembled, in order, into the read-only root of a sandbox. Required when the spec
   * has build steps, unless it says `build-environment: host`.
   */
  environment?: readonly EnvironmentPart[];
  /**
   * For a package list of another architecture than the machine's (scriptEnvironmentOf
   * gives it): the build environment whose static busybox runs the postinsts over the
   * image's files. Without it they are not run.
   */
  scriptEnvironment?: readonly EnvironmentPart[];
  /**
   * Keep the fragment in the cache by content, and take it from there when it was kept
   * before (fragment-cache.ts): for a spec whose every input is in its text and its lock
   * (no build steps, patches, app installs, project files, build caches, sysroot or
   * environment; others are built as usual), such as the project's build environment,
   * whose fragment the shared rule asks for this way. The key is the spec's text and
   * path, its lock's text, the machine's Debian architecture, the mtime, the layer and
   * the running redo-ts code; the kept tar is hashed as it is copied out, and a damaged
   * one dropped and built anew. Not with REDO_TS_BUILD_CACHES=off (verify builds anew).
   */
  keepByContent?: boolean;
  /** The spec at `specPath` as the caller loaded it (loadSpec with the same root): not parsed again. */
  spec?: Spec;
}

/** Where a fragment's build steps ran: what its output can be trusted to depend on. */
export type FragmentBuildEnvironment =
  | { kind: 'sandbox'; key: string; declaredIn: string[] }
  | { kind: 'host'; spec: string }
  | { kind: 'none' };

/** What buildFragment wrote. */
export interface FragmentResult {
  spec: string;
  /** Every source and patch the build used, in spec order. */
  sources: PinnedSource[];
  /** Layers named by the spec's delivered entries, sorted; `layer` option filters the tar to one. */
  layers: string[];
  /** Number of members written (parent directories included). */
  entryCount: number;
  diffId: Sha256Digest;
  sizeBytes: number;
  /** For a spec with a `packages` list: the locked packages delivered, effects reproduced, scripts not run. */
  debian?: Omit<DebianPackagesResult, 'entries'>;
  /**
   * `sandbox`: the steps ran in the environment of that key (hermetic); `host`: with the
   * caller's tools (`build-environment: host`: not hermetic); `none`: no build steps.
   */
  buildEnvironment: FragmentBuildEnvironment;
  /**
   * With `keepByContent`, for a spec it applies to: `taken` from the cache (nothing was
   * built), or `built` and kept under `key`; `damaged` says why the copy the cache had
   * was dropped first.
   */
  kept?: { key: string; how: 'taken' | 'built'; damaged?: string };
}

/** An entry headed for a fragment, with its layer and where it came from (for conflict messages). */
interface PlacedEntry {
  entry: TarEntry;
  layer: string;
  origin: string;
}

/**
 * Builds the spec at `specPath` into a deterministic tar at `outPath`:
 * 1. every source and patch is fetched and checked against its pin (all pins are
 *    checked for presence first, so a missing pin fails before any download);
 * 2. in a scratch folder, non-deb sources are copied into the build folder (`$SRCDIR`,
 *    also the working directory) under their names, archives with `unpack` are
 *    unpacked, each .deb is put there as `PACKAGE.deb`, patches are applied in order;
 * 3. each build step runs as `/bin/sh -eu -c STEP` in a sandbox (runInSandbox) whose
 *    root is the `environment` fragments assembled (cached by content), with the build
 *    folder at /build/src (SRCDIR, the working directory), DESTDIR /build/destdir, HOME
 *    /build/home, SYSROOT `/` (build-requires are in the root) or /build/sysroot when
 *    `sysroot` fragments are given, NAME, VERSION, SOURCE_DATE_EPOCH, TZ=UTC,
 *    LC_ALL=C.UTF-8, umask 022, no network. A spec with `build-environment: host` runs
 *    its steps as `sh -eu -c STEP` with the caller's PATH instead (not hermetic: the
 *    result says so);
 * 4. the files under `$DESTDIR` matched by the spec's `files` rules are delivered with
 *    the rules' mode/owner/group/layer (never the builder's owner), and every deb
 *    source's files with the package's own metadata, filtered by include/exclude.
 * The tar is written beside `outPath` and renamed over it, so a failure leaves any old
 * output intact. The scratch folder is removed. Returns the provenance and digest.
 * Throws ERR_INTEGRITY_MISSING / ERR_INTEGRITY_MISMATCH / ERR_SOURCE_UNREACHABLE (from
 * fetching), ERR_SPEC_BUILD_FAILED (a step or patch failed: status and stderr tail),
 * ERR_BUILD_ENVIRONMENT (steps but no environment), ERR_BUILD_TOOL_MISSING,
 * ERR_BUILD_NETWORK, ERR_SANDBOX_UNAVAILABLE (see runInSandbox),
 * ERR_SPEC_FILES_UNMATCHED (a files rule matched nothing), ERR_FRAGMENT_CONFLICT (one
 * path delivered twice: both origins named), ERR_DEB_* (bad package), ERR_SPEC_* (bad spec).
 */
export async function buildFragment(specPath: string, outPath: string, options: BuildFragmentOptions = {}): Promise<FragmentResult> {
  const kept = options.keepByContent === true ? await keptFragmentKeyOf(specPath, options) : undefined;
  let damaged: string | undefined;
  if (kept !== undefined) {
    const lookup = takeKeptFragment(kept.cacheDir, kept.key, outPath);
    if (lookup.kind === 'hit') return { ...(lookup.result as FragmentResult), kept: { key: kept.key, how: 'taken' } };
    if (lookup.kind === 'damaged') damaged = lookup.why;
  }
  let result: FragmentResult;
  try {
    result = await buildFragmentOnce(specPath, outPath, options);
  } catch (cause) {
    // A cache entry found damaged in the pass that used it (a .deb being unpacked, a
    // package copied for npm or pip) was dropped, and the scratch folder holding what was
    // made from it removed: one more build fetches it again. Offline, nothing can.
    if (options.isOffline === true || !isRedoError(cause, 'ERR_CACHE_DAMAGED')) throw cause;
    options.log?.write(`${cause.headline}: the entry was dropped; building again, fetching it anew\n`);
    result = await buildFragmentOnce(specPath, outPath, options);
  }
  if (kept === undefined) return result;
  keepFragment(kept.cacheDir, kept.key, outPath, result.diffId.replace(/^sha256:/, ''), result);
  return { ...result, kept: { key: kept.key, how: 'built', ...(damaged !== undefined ? { damaged } : {}) } };
}

/**
 * The cache and key a fragment of the spec at `specPath` is kept under (keepByContent),
 * or undefined when one of its inputs is not in its text or lock (see keepByContent).
 */
async function keptFragmentKeyOf(specPath: string, options: BuildFragmentOptions): Promise<{ cacheDir: string; key: string } | undefined> {
  const env = options.env ?? process.env;
  if (env.REDO_TS_BUILD_CACHES === 'off' || (options.sysroot ?? []).length > 0 || (options.environment ?? []).length > 0
    || (options.scriptEnvironment ?? []).length > 0) return undefined;
  const cacheDir = options.cacheDir ?? cacheDirFrom(env);
  const spec = options.spec ?? await loadSpec(specPath, options.root !== undefined ? { root: options.root } : {});
  const isPinnedOnly = spec.build.length === 0 && spec.patches.length === 0 && spec.appDependencies.length === 0 && spec.caches.length === 0
    && spec.sources.every((source) => !source.isProjectFile && source.integrity !== undefined);
  if (!isPinnedOnly) return undefined;
  let lockText: string | undefined;
  let architecture: string | undefined;
  if (spec.packages !== undefined) {
    try {
      lockText = await readFile(lockPathOf(spec.path), 'utf8');
    } catch {
      return undefined; // The build says what is missing.
    }
    // A lock for another architecture than the machine's is assembled otherwise (rootfs.ts).
    architecture = await machineArchitecture(env, cacheDir);
  }
  const key = keptFragmentKey({
    codeKey: codeKey(), specPath: spec.relativePath, specText: spec.text, mtimeSeconds: options.mtimeSeconds ?? sourceDateEpoch(env),
    ...(lockText !== undefined ? { lockText } : {}), ...(architecture !== undefined ? { hostArchitecture: architecture } : {}),
    ...(options.layer !== undefined ? { layer: options.layer } : {}),
  });
  return { cacheDir, key };
}

async function buildFragmentOnce(specPath: string, outPath: string, options: BuildFragmentOptions): Promise<FragmentResult> {
  const env = options.env ?? process.env;
  const spec = options.spec ?? await loadSpec(specPath, options.root !== undefined ? { root: options.root } : {});
  const cacheDir = options.cacheDir ?? cacheDirFrom(env);
  const all: Array<{ source: SourceSpec; role: 'source' | 'patch' }> = [
    ...spec.sources.map((source) => ({ source, role: 'source' as const })),
    ...spec.patches.map((patch) => ({ source: patch.source, role: 'patch' as const })),
  ];
  const unpinned = all.filter(({ source }) => source.integrity === undefined && !source.isProjectFile);
  if (unpinned.length > 0) {
    throw new RedoError('ERR_INTEGRITY_MISSING', `redo: "${spec.relativePath}": ${unpinned.length === 1 ? 'a source has' : `${unpinned.length} sources have`} no integrity pin`, {
      details: unpinned.map(({ source }) => `${spec.relativePath}:${source.location.line}: ${source.url}`),
      hint: `run \`redo-ts pin ${spec.relativePath}\` to compute the pins, then review and commit them`,
    });
  }
  const isHost = spec.buildEnvironment === 'host';
  // An app install (npm:, pypi:) is a build step too, and so is a patch: they run in the sandbox.
  const hasSteps = spec.build.length > 0 || spec.appDependencies.length > 0 || spec.patches.length > 0;
  if (hasSteps && !isHost && (options.environment === undefined || options.environment.length === 0)) {
    throw new RedoError('ERR_BUILD_ENVIRONMENT', `redo: "${spec.relativePath}": has build steps${spec.patches.length > 0 ? ' or patches' : ''} but no build environment was given`, {
      details: ['build steps and patches run only in a sandbox over a build environment (docs/specs.md, "The build sandbox")'],
      hint: 'build it through the shared fragment rule (it passes the project\'s build-environment spec and the build-requires), or pass `environment` to buildFragment',
    });
  }
  // Assembled before any download or step, so a missing sandbox tool fails first.
  let sandboxEnvironment: BuildEnvironment | undefined;
  if (hasSteps && !isHost) {
    sandboxEnvironment = await assembleBuildEnvironment(options.environment!, { cacheDir, hostEnv: env, subject: `"${spec.relativePath}"` });
  }
  const fetchOptions: FetchOptions = { cacheDir, root: spec.root, isOffline: options.isOffline === true, specPath: spec.relativePath, env };
  if (options.onProgress !== undefined) fetchOptions.onProgress = options.onProgress;
  // Cached sources are not hashed here: each is copied into the build folder below by
  // copyFetched, which hashes it in that copy (one read of a large file, not two).
  const fetched = new Map<SourceSpec, FetchedSource>();
  for (const { source } of all) fetched.set(source, await fetchSource(source, { ...fetchOptions, shouldDeferCheck: true }));

  // npm and PyPI packages of the spec's lock files, each checked against the lock's own hash.
  const appDependencies = await fetchAppDependencies(spec, { cacheDir, env, isOffline: options.isOffline === true });

  const provenance: PinnedSource[] = all.map(({ source, role }) => ({
    kind: source.kind,
    name: source.name,
    version: source.deb?.version ?? spec.version,
    integrity: fetched.get(source)!.integrity,
    isProjectFile: source.isProjectFile,
    url: source.url,
    spec: spec.relativePath,
    role,
  }));
  for (const item of appDependencies) {
    provenance.push(...pinsOf(item).map((pin) => ({ ...pin, isProjectFile: false, spec: spec.relativePath, role: 'source' as const })));
  }

  // TMPDIR from the rule's environment: the engine's per-build folder, collected if it is killed.
  return withScratchFolder('redo-ts-build-', async (scratch) => {
    const srcDir = join(scratch, 'src');
    const destDir = join(scratch, 'destdir');
    const homeDir = join(scratch, 'home');
    const sysrootDir = join(scratch, 'sysroot');
    await Promise.all([mkdir(srcDir), mkdir(destDir), mkdir(homeDir), mkdir(sysrootDir), mkdir(join(scratch, 'patches')), mkdir(join(scratch, 'deb'))]);
    const mtimeSeconds = options.mtimeSeconds ?? sourceDateEpoch(env);
    const stepEnv: NodeJS.ProcessEnv = {
      PATH: env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: homeDir,
      DESTDIR: destDir,
      SRCDIR: srcDir,
      SYSROOT: sysrootDir,
      NAME: spec.name,
      VERSION: spec.version,
      SOURCE_DATE_EPOCH: String(mtimeSeconds),
      LC_ALL: 'C',
      TZ: 'UTC',
      // Only a marker: it lets redo-ts find and stop the steps of a build it abandons.
      ...(env.REDO_RUN_DIR === undefined ? {} : { REDO_RUN_DIR: env.REDO_RUN_DIR }),
    };
    // Build caches (`caches:`): a folder per variable, kept between builds of this spec
    // unless REDO_TS_BUILD_CACHES=off (verify builds without them).
    for (const variable of spec.caches) stepEnv[variable] = await buildCacheFolder(spec, variable, cacheDir, scratch, env);
    const runner = new StepRunner(spec, srcDir, stepEnv, options.log);
    const guard = new BuildFolderGuard(spec, srcDir);
    const sysrootGuard = new BuildFolderGuard(spec, sysrootDir, '$SYSROOT');
    for (const fragment of options.sysroot ?? []) {
      // An earlier fragment's symlink (say usr/lib -> /usr/lib) must not carry a later
      // fragment's files out of $SYSROOT.
      const what = `unpack of build-requires fragment ${fragment}`;
      await unpackArchive(resolve(fragment), sysrootDir, {
        subject: `"${spec.relativePath}"`, what,
        check: (path, member, isLastFollowed) => sysrootGuard.check(path, what, member, isLastFollowed), onTreeChanged: () => sysrootGuard.forget(),
      });
    }

    for (const source of spec.sources) {
      const bytes = fetched.get(source)!.path;
      if (source.kind === 'deb') {
        guard.check(join(srcDir, `${source.name}.deb`), `copy of source "${source.name}"`);
        const copied = await copyFetched(source, fetched.get(source)!, fetchOptions, join(srcDir, `${source.name}.deb`));
        fetched.set(source, copied);
        // The copy is proved: its control fields must name the package the url pins.
        await checkDebSourceIdentity(join(srcDir, `${source.name}.deb`), source.deb!, `"${spec.relativePath}": source "${source.url}"`, copied.integrity);
        continue;
      }
      guard.check(join(srcDir, source.name), `copy of source "${source.name}"`);
      if (source.isProjectFile && isFolder(bytes)) {
        // A project folder, copied whole (folder.ts); nothing to unpack.
        await copyFolder(bytes, join(srcDir, source.name));
        continue;
      }
      fetched.set(source, await copyFetched(source, fetched.get(source)!, fetchOptions, join(srcDir, source.name)));
      if (source.unpack !== undefined) {
        const into = join(srcDir, source.unpack);
        guard.check(into, `unpack of "${source.name}"`);
        await mkdir(into, { recursive: true });
        // An earlier archive may have planted a symlink that this one's members would
        // be written through: every member's place is checked as it is written.
        const what = `unpack of "${source.name}"`;
        await unpackArchive(join(srcDir, source.name), into, {
          subject: `"${spec.relativePath}"`, what,
          check: (path, member, isLastFollowed) => guard.check(path, what, member, isLastFollowed), onTreeChanged: () => guard.forget(),
        });
      }
    }
    // The sandbox the patches, installs and build steps run in: the build folder, DESTDIR,
    // HOME, the scratch folder (an app install's npm cache, wheels, requirements; the
    // patches) and each build cache at fixed paths, so no host path reaches a step or an output.
    const hasSysroot = (options.sysroot ?? []).length > 0;
    const binds = [
      { hostPath: srcDir, sandboxPath: '/build/src', isWritable: true },
      { hostPath: destDir, sandboxPath: '/build/destdir', isWritable: true },
      { hostPath: homeDir, sandboxPath: '/build/home', isWritable: true },
      ...(hasSysroot ? [{ hostPath: sysrootDir, sandboxPath: '/build/sysroot', isWritable: false }] : []),
      { hostPath: scratch, sandboxPath: '/build/scratch', isWritable: true },
    ];
    const cacheEnv: Record<string, string> = {};
    for (const variable of spec.caches) {
      binds.push({ hostPath: stepEnv[variable]!, sandboxPath: `/build/caches/${variable}`, isWritable: true });
      cacheEnv[variable] = `/build/caches/${variable}`;
    }
    const inSandbox = (text: string): string => text.split(scratch).join('/build/scratch');
    const environmentSpecs = sandboxEnvironment?.declaredIn ?? [];
    const runSandboxed = async (label: string, argv: string[], cwd: string, extraEnv: Record<string, string>): Promise<void> => {
      await runInSandbox(sandboxEnvironment!, { label, argv }, {
        binds, cwd, sourceDateEpoch: mtimeSeconds, hostEnv: env, subject: `"${spec.relativePath}"`,
        env: { DESTDIR: '/build/destdir', SRCDIR: '/build/src', SYSROOT: hasSysroot ? '/build/sysroot' : '/', NAME: spec.name, VERSION: spec.version, ...cacheEnv, ...extraEnv },
        packageListHint: `${environmentSpecs[0] ?? 'the build environment'} (every spec's build environment)${environmentSpecs.length > 1 ? `, or one of this spec's build-requires (${environmentSpecs.slice(1).join(', ')})` : ', or a spec with that package list named in this spec\'s build-requires'}`,
        ...(options.log !== undefined ? { onOutput: (chunk: Buffer) => options.log!.write(chunk) } : {}),
      });
    };
    const runStep = (label: string, script: string, extraEnv: Record<string, string>): Promise<void> =>
      runSandboxed(label, ['/bin/sh', '-eu', '-c', script], '/build/src', extraEnv);

    for (const [index, patch] of spec.patches.entries()) {
      const name = `${String(index).padStart(3, '0')}-${patch.source.name}`;
      const file = join(scratch, 'patches', name);
      fetched.set(patch.source, await copyFetched(patch.source, fetched.get(patch.source)!, fetchOptions, file));
      guard.check(join(srcDir, patch.dir), `patch "${patch.source.name}"`);
      for (const target of await patchedPaths(file, patch.strip)) {
        guard.check(join(srcDir, patch.dir, target), `patch "${patch.source.name}"`, target);
      }
      if (sandboxEnvironment === undefined) {
        // build-environment: host: the caller's patch, as its steps use the caller's tools.
        await runner.run(`patch ${patch.source.name}`, 'patch', ['--batch', '--forward', `-p${patch.strip}`, '-d', join(srcDir, patch.dir), '-i', file]);
        continue;
      }
      // The environment's own patch: GNU patch (Debian package patch) gets --batch so it
      // never asks; busybox's applet asks nothing and has no such option.
      await runSandboxed(`patch ${patch.source.name}`, [
        '/bin/sh', '-eu', '-c', 'case "$(patch --version 2>/dev/null || :)" in *"GNU patch"*) set -- --batch "$@" ;; esac\nexec patch "$@"',
        'patch', '-N', `-p${patch.strip}`, '-i', `/build/scratch/patches/${name}`,
      ], posix.join('/build/src', patch.dir), {});
    }
    if (sandboxEnvironment !== undefined) {
      // Each lock's install (npm ci --offline, pip install --no-index) runs as a build step
      // does, in the sandbox with the environment's npm or python3, before the spec's own
      // steps, so they can use what it installed.
      for (const item of appDependencies) {
        const install = await prepareAppInstall(spec, item, scratch, destDir);
        const installEnv = Object.fromEntries(Object.entries(install.env).map(([key, value]) => [key, inSandbox(String(value))]));
        await runStep(install.what, inSandbox(install.script), installEnv);
      }
      for (const [index, step] of spec.build.entries()) await runStep(`build[${index}]`, step, {});
    } else {
      for (const item of appDependencies) {
        const install = await prepareAppInstall(spec, item, scratch, destDir);
        await new StepRunner(spec, srcDir, { ...stepEnv, ...install.env }, options.log).run(install.what, 'sh', ['-eu', '-c', `umask 022\n${install.script}`]);
      }
      for (const [index, step] of spec.build.entries()) {
        await runner.run(`build[${index}]`, 'sh', ['-eu', '-c', `umask 022\n${step}`]);
      }
    }

    const placed: PlacedEntry[] = [];
    placed.push(...(await deliverBuiltFiles(spec, destDir)));
    for (const source of spec.sources) {
      if (source.kind !== 'deb' || !source.isDelivered) continue;
      const label = `${source.deb!.package}=${source.deb!.version}`;
      // The cached file, proved by the copy into $SRCDIR above (the build's steps may
      // have changed that copy since).
      const entries = await readDebEntries(fetched.get(source)!.path, label, join(scratch, 'deb', `${source.name}.tar`));
      const origin = `spec "${spec.name}" (${spec.relativePath}), deb:${label}`;
      placed.push(...filterDebEntries(entries, source).map((entry) => ({ entry, layer: source.layer ?? spec.layer, origin })));
    }

    let debian: DebianPackagesResult | undefined;
    if (spec.packages !== undefined) {
      await mkdir(join(scratch, 'packages'));
      let hostTools: HostTools | undefined;
      if (options.scriptEnvironment !== undefined && options.scriptEnvironment.length > 0) {
        const scriptEnvironment = await assembleBuildEnvironment(options.scriptEnvironment, { cacheDir, hostEnv: env, subject: `"${spec.relativePath}"` });
        hostTools = await hostToolsOf(scriptEnvironment.rootPath, scriptEnvironment.declaredIn);
      }
      debian = await buildDebianPackages({
        specPath: spec.path, specLabel: spec.relativePath, root: spec.root, list: spec.packages, cacheDir, env,
        isOffline: options.isOffline === true, scratch: join(scratch, 'packages'), mtimeSeconds, ...(hostTools !== undefined ? { hostTools } : {}),
      });
      placed.push(...debian.entries.map(({ entry, origin, layer }) => ({ entry, layer: layer ?? spec.layer, origin: `spec "${spec.name}" (${spec.relativePath}), package ${origin}` })));
      provenance.push(...debian.packages.map((locked) => ({
        kind: 'deb' as const, name: locked.name, version: locked.version, integrity: locked.integrity as Integrity, isProjectFile: false,
        url: `deb:${locked.name}=${locked.version}?arch=${locked.architecture}`, spec: spec.relativePath, role: 'source' as const,
      })));
    }

    const merged = mergePlaced(placed, spec.relativePath);
    const layers = [...new Set(merged.map((item) => item.layer))].sort();
    const chosen = withDebianFolders(options.layer === undefined ? merged : withParentFolders(merged.filter((item) => item.layer === options.layer), merged));
    const written = await writeAtomically(outPath, chosen.map((item) => item.entry), mtimeSeconds, spec.relativePath);
    const buildEnvironment: FragmentBuildEnvironment = sandboxEnvironment !== undefined
      ? { kind: 'sandbox', key: sandboxEnvironment.key, declaredIn: sandboxEnvironment.declaredIn }
      : hasSteps ? { kind: 'host', spec: spec.relativePath } : { kind: 'none' };
    const result: FragmentResult = { spec: spec.relativePath, sources: provenance, layers, ...written, buildEnvironment };
    if (debian !== undefined) result.debian = { packages: debian.packages, scripts: debian.scripts, effects: debian.effects, lockPath: debian.lockPath };
    return result;
  }, env.TMPDIR || undefined);
}

/**
 * The folders Debian's base-files delivers (or its postinst makes) with other than
 * 0755 root:root, as `ls -ld` shows them in every Debian image: an implied parent of a
 * spec's file takes this metadata, so a fragment adding /root/.profile stacks on a
 * Debian layer without a 0700-vs-0755 conflict.
 */
const debianFolders: ReadonlyMap<string, { mode: number; gid: number }> = new Map([
  ['root', { mode: 0o700, gid: 0 }],
  ['tmp', { mode: 0o1777, gid: 0 }],
  ['var/tmp', { mode: 0o1777, gid: 0 }],
  ['var/local', { mode: 0o2775, gid: 50 }], // group staff
  ['var/mail', { mode: 0o2775, gid: 8 }], // group mail
  ['run/lock', { mode: 0o1777, gid: 0 }],
]);

/** `items` plus, for each of Debian's special folders (debianFolders) that is an implied parent, the folder with its Debian metadata. */
function withDebianFolders(items: PlacedEntry[]): PlacedEntry[] {
  const have = new Set(items.map((item) => item.entry.path.toString('latin1')));
  const out = [...items];
  for (const item of items) {
    for (const ancestor of ancestorsOf(`/${item.entry.path.toString('latin1')}`)) {
      const key = ancestor.slice(1);
      const folder = debianFolders.get(key);
      if (folder === undefined || have.has(key)) continue;
      have.add(key);
      out.push({ entry: { path: Buffer.from(key), type: 'directory', mode: folder.mode, uid: 0, gid: folder.gid, sizeBytes: 0 }, layer: item.layer, origin: item.origin });
    }
  }
  return out;
}

/**
 * `chosen` plus the folder entries above them that another layer holds, with that
 * layer's metadata: a layer tar must not invent a parent (0755 root) that, stacked
 * above, would replace a folder's real mode or owner (/root 0700, /var/mail 2775).
 */
function withParentFolders(chosen: PlacedEntry[], all: PlacedEntry[]): PlacedEntry[] {
  const have = new Set(chosen.map((item) => item.entry.path.toString('latin1')));
  const folders = new Map(all.filter((item) => item.entry.type === 'directory').map((item) => [item.entry.path.toString('latin1'), item]));
  const out = [...chosen];
  for (const item of chosen) {
    for (const ancestor of ancestorsOf(`/${item.entry.path.toString('latin1')}`)) {
      const key = ancestor.slice(1);
      const folder = folders.get(key);
      if (have.has(key) || folder === undefined) continue;
      have.add(key);
      out.push(folder);
    }
  }
  return out;
}

/**
 * Merges fragment tars written by buildFragment into one tar at `outPath`, refusing a
 * path that two of them deliver: ERR_FRAGMENT_CONFLICT names both labels (a directory
 * given by several with identical mode/owner/group is not a conflict). `inputs` are
 * `{label, path}`, label typically the spec path. Writes atomically; returns digest,
 * size and member count.
 */
export async function mergeFragments(
  inputs: ReadonlyArray<{ label: string; path: string }>,
  outPath: string,
  options: { mtimeSeconds?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ entryCount: number; diffId: Sha256Digest; sizeBytes: number }> {
  const placed: PlacedEntry[] = [];
  for (const input of inputs) {
    checkTar(input.path, input.label, { isDeviceAllowed: true });
    for (const entry of entriesOfTar(input.path)) placed.push({ entry, layer: '', origin: input.label });
  }
  const merged = mergePlaced(placed, 'the merged fragments');
  const mtimeSeconds = options.mtimeSeconds ?? sourceDateEpoch(options.env ?? process.env);
  return writeAtomically(outPath, merged.map((item) => item.entry), mtimeSeconds, outPath);
}

/**
 * The folder of one build cache of `spec`: `CACHE/build-caches-v1/HEX/VARIABLE` (HEX: the
 * sha256 of the spec's path in the project and the project root), created; or, with
 * REDO_TS_BUILD_CACHES=off in `env`, an empty folder in the build's scratch folder.
 */
async function buildCacheFolder(spec: Spec, variable: string, cacheDir: string, scratch: string, env: NodeJS.ProcessEnv): Promise<string> {
  const folder = env.REDO_TS_BUILD_CACHES === 'off'
    ? join(scratch, 'build-caches', variable)
    : join(cacheDir, 'build-caches-v1', createHash('sha256').update(`${spec.root}\0${spec.relativePath}`).digest('hex'), variable);
  await mkdir(folder, { recursive: true });
  return folder;
}

/** SOURCE_DATE_EPOCH from `env` (0 when unset); ERR_SOURCE_DATE_EPOCH when not a number. */
function sourceDateEpoch(env: NodeJS.ProcessEnv): number {
  return mtimeFromEnvironment(env);
}

async function writeAtomically(outPath: string, entries: TarEntry[], mtimeSeconds: number, label: string) {
  const absolute = resolve(outPath);
  const temporary = join(dirname(absolute), `.${absolute.split('/').pop()}.${process.pid}.tmp`);
  const release = holdTemporary(temporary);
  try {
    const result = await writeTar(entries, temporary, { mtimeSeconds, label: `"${label}"` });
    await rename(temporary, absolute);
    return { entryCount: countMembers(entries), diffId: result.diffId, sizeBytes: result.sizeBytes };
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  } finally {
    release();
  }
}

function countMembers(entries: TarEntry[]): number {
  const paths = new Set<string>();
  for (const entry of entries) {
    let path = entry.path.toString('latin1');
    paths.add(path);
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/')) {
      path = path.slice(0, slash);
      paths.add(path);
    }
  }
  return paths.size;
}

/**
 * Refuses a write that would land outside the build folder, by a name with `..` or through a symlink (one an
 * unpacked archive planted, say): every symlink that exists on the way is followed,
 * as copyFile, mkdir, tar and patch would follow it, and the real path must stay
 * inside the folder's real path. Throws ERR_BUILD_ESCAPE naming the spec, the step,
 * the path and where it leads.
 */
class BuildFolderGuard {
  private readonly realDir: string;
  private readonly realOfDir = new Map<string, string>();

  constructor(
    private readonly spec: Spec,
    private readonly dir: string,
    private readonly name = 'the build folder',
  ) {
    this.realDir = realpathSync(dir);
  }

  /** Drops remembered folder resolutions: a symlink was made or something removed since. */
  forget(): void {
    this.realOfDir.clear();
  }

  /** `isLastFollowed`: whether a symlink at `path` itself would be written through (copyFile, mkdir, patch: yes). */
  check(path: string, step: string, shown?: string, isLastFollowed = true): void {
    const parent = dirname(path);
    let realParent = this.realOfDir.get(parent);
    if (realParent === undefined) {
      realParent = realPathOf(parent);
      this.realOfDir.set(parent, realParent);
    }
    const real = isLastFollowed ? realPathOf(join(realParent, basename(path))) : join(realParent, basename(path));
    const inside = relative(this.realDir, real);
    if (inside === '..' || inside.startsWith('../') || isAbsolute(inside)) {
      // A name with `..` (a patch's target, say) escapes by itself: no symlink to blame.
      const lexical = relative(this.dir, resolve(path));
      const isOwnName = lexical === '..' || lexical.startsWith('../') || isAbsolute(lexical);
      throw new RedoError('ERR_BUILD_ESCAPE', `redo: "${this.spec.relativePath}": ${step} would write outside ${this.name}`, {
        details: [`path: ${shown ?? relative(this.dir, path)}`, `leads to: ${real}${isOwnName ? ' (by its own "..")' : ' (through a symlink)'}`],
        hint: isOwnName
          ? 'the path climbs out of the folder by itself: fix the name (a patch\'s ---/+++ lines, its strip level or `dir`)'
          : 'an earlier source unpacked a symlink there: unpack the archives into separate folders (`unpack: NAME`), or remove the link in the archive',
      });
    }
  }
}

/**
 * Where writing `path` would land: the real path of what exists of it, following a
 * symlink at the end too (even a dangling one, which a write would create the target
 * of). Bounded like the kernel's 40 links.
 */
function realPathOf(path: string, depth = 0): string {
  try {
    return realpathSync(path);
  } catch {
    // Missing, or a dangling symlink.
  }
  let stats;
  try {
    stats = lstatSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realPathOf(parent, depth), basename(path));
  }
  if (stats.isSymbolicLink() && depth < 40) return realPathOf(resolve(dirname(path), readlinkSync(path)), depth + 1);
  return path;
}

/** The paths a unified or context diff writes, with `strip` leading components removed. */
async function patchedPaths(patchFile: string, strip: number): Promise<string[]> {
  const paths = new Set<string>();
  for (const line of (await readFile(patchFile, 'latin1')).split('\n')) {
    const match = /^(?:\+\+\+|---|\*\*\*) ([^\t\n]+)/.exec(line);
    if (match === null) continue;
    const name = match[1]!.trim();
    if (name === '/dev/null') continue;
    const parts = name.split('/').filter((part) => part !== '');
    if (parts.length > strip) paths.add(parts.slice(strip).join('/'));
  }
  return [...paths];
}

/** Runs steps and tools in the build folder, keeping the last stderr lines for errors. */
class StepRunner {
  constructor(
    private readonly spec: Spec,
    private readonly cwd: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: Writable | undefined,
  ) {}

  /** Runs `command` and returns its stdout (for listings); fails as run does. */
  async capture(what: string, command: string, args: string[]): Promise<string> {
    const chunks: Buffer[] = [];
    await this.run(what, command, args, (chunk) => chunks.push(chunk));
    return Buffer.concat(chunks).toString('utf8');
  }

  run(what: string, command: string, args: string[], onStdout?: (chunk: Buffer) => void): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const child = spawn(command, args, { cwd: this.cwd, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      const tail: string[] = [];
      const keep = (chunk: Buffer): void => {
        this.log?.write(chunk);
        tail.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
        tail.splice(0, Math.max(0, tail.length - 5));
      };
      child.stdout.on('data', onStdout ?? keep);
      child.stderr.on('data', keep);
      child.on('error', (cause) => reject(this.failure(what, `could not run ${command}: ${cause.message}`, [], cause)));
      child.on('close', (code, signal) => {
        if (code === 0) resolvePromise();
        else reject(this.failure(what, signal !== null ? `killed by signal ${signal}` : `exited with status ${code}`, tail));
      });
    });
  }

  private failure(what: string, how: string, tail: string[], cause?: unknown): RedoError {
    return new RedoError('ERR_SPEC_BUILD_FAILED', `redo: "${this.spec.relativePath}": ${what} ${how}`, {
      details: tail.length > 0 ? [`output (last ${tail.length} lines):`, ...tail.map((line) => `  ${line}`)] : [],
      hint: 'nothing was written; fix the step and build again',
      cause,
    });
  }
}

/** Walks `root` depth-first in byte order of names; yields image paths (`usr/bin/x`) relative to it. */
async function walk(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (relativeDir: string): Promise<void> => {
    const names = (await readdir(join(root, relativeDir))).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const path = relativeDir === '' ? name : `${relativeDir}/${name}`;
      out.push(path);
      const stats = await lstat(join(root, path));
      if (stats.isDirectory()) await visit(path);
    }
  };
  await visit('');
  return out;
}

/** The entries of `$DESTDIR` the spec's `files` rules deliver, with the rules' metadata. */
async function deliverBuiltFiles(spec: Spec, destDir: string): Promise<PlacedEntry[]> {
  const paths = await walk(destDir);
  const used = new Set<FileRule>();
  const origin = `spec "${spec.name}" (${spec.relativePath})`;
  const firstOfInode = new Map<string, string>();
  const placed: PlacedEntry[] = [];
  for (const path of paths) {
    const imagePath = `/${path}`;
    const ancestors = ancestorsOf(imagePath);
    // Each attribute comes from the last rule that covers the path (matches it or a
    // folder above it) and sets that attribute; mode only from rules matching the path.
    let isCovered = false;
    let mode: number | undefined;
    let uid: number | undefined;
    let gid: number | undefined;
    let layer: string | undefined;
    for (const rule of spec.files) {
      const isDirect = rule.matches(imagePath);
      if (!isDirect && !ancestors.some((ancestor) => rule.matches(ancestor))) continue;
      isCovered = true;
      used.add(rule);
      if (isDirect && rule.mode !== undefined) mode = rule.mode;
      if (rule.uid !== undefined) uid = rule.uid;
      if (rule.gid !== undefined) gid = rule.gid;
      if (rule.layer !== undefined) layer = rule.layer;
    }
    if (!isCovered) continue;
    const absolute = join(destDir, path);
    const stats = await lstat(absolute);
    const entry: TarEntry = { path: Buffer.from(path), type: 'file', mode: 0o644, uid: uid ?? 0, gid: gid ?? 0, sizeBytes: 0 };
    if (stats.isDirectory()) {
      entry.type = 'directory';
      entry.mode = 0o755;
    } else if (stats.isSymbolicLink()) {
      entry.type = 'symlink';
      entry.mode = 0o777;
      entry.linkTarget = Buffer.from(await readlink(absolute));
    } else if (stats.isFile()) {
      entry.mode = stats.mode & 0o100 ? 0o755 : 0o644;
      const inode = `${stats.dev}:${stats.ino}`;
      const first = stats.nlink > 1 ? firstOfInode.get(inode) : undefined;
      if (first !== undefined) {
        entry.type = 'hardlink';
        entry.linkTarget = Buffer.from(first);
      } else {
        if (stats.nlink > 1) firstOfInode.set(inode, path);
        entry.sizeBytes = stats.size;
        entry.content = { kind: 'path', path: absolute };
      }
    } else {
      throw new RedoError('ERR_SPEC_BUILD_FAILED', `redo: "${spec.relativePath}": build produced "${imagePath}", which is not a file, folder or symlink`, {
        hint: 'devices and fifos cannot be delivered from a build; ship them from a deb: source',
      });
    }
    if (mode !== undefined && entry.type !== 'symlink' && entry.type !== 'hardlink') entry.mode = mode;
    placed.push({ entry, layer: layer ?? spec.layer, origin });
  }
  const unused = spec.files.filter((rule) => !used.has(rule));
  if (unused.length > 0) {
    throw new RedoError('ERR_SPEC_FILES_UNMATCHED', `redo: "${spec.relativePath}:${unused[0]!.line}": files: "${unused[0]!.pattern}" matched nothing the build installed`, {
      details: [
        ...unused.slice(1).map((rule) => `${spec.relativePath}:${rule.line}: files: "${rule.pattern}" matched nothing`),
        `installed: ${paths.length === 0 ? 'nothing under $DESTDIR' : paths.slice(0, 8).map((p) => `/${p}`).join(', ') + (paths.length > 8 ? ', …' : '')}`,
      ],
      hint: 'build steps must install into "$DESTDIR" (for example: install -D -m 0755 hello "$DESTDIR/usr/bin/hello")',
    });
  }
  return placed;
}

function ancestorsOf(imagePath: string): string[] {
  const out: string[] = [];
  for (let slash = imagePath.lastIndexOf('/'); slash > 0; slash = imagePath.lastIndexOf('/', slash - 1)) {
    out.push(imagePath.slice(0, slash));
  }
  return out;
}

/**
 * The member paths (latin1 of the raw names) a deb source keeps after its
 * include/exclude globs: what matches, and the folders above every kept non-folder.
 * Pure; what buildFragment delivers and what the inventory attributes to the package.
 */
export function keptDebPaths(entries: ReadonlyArray<{ path: Buffer; type: TarEntry['type'] }>, source: SourceSpec): Set<string> {
  const include = (source.include ?? []).map(compileGlob);
  const exclude = (source.exclude ?? []).map(compileGlob);
  const isWanted = (imagePath: string): boolean =>
    (include.length === 0 || include.some((match) => match(imagePath))) && !exclude.some((match) => match(imagePath));
  const kept = new Set<string>();
  for (const entry of entries) {
    if (!isWanted(`/${pathText(entry.path)}`)) continue;
    const path = entry.path.toString('latin1');
    kept.add(path);
    if (entry.type !== 'directory') for (const ancestor of ancestorsOf(`/${path}`)) kept.add(ancestor.slice(1));
  }
  return kept;
}

/**
 * Applies a deb source's include/exclude globs (keptDebPaths). A hardlink whose target
 * was filtered out becomes a copy of the target's content.
 */
function filterDebEntries(entries: TarEntry[], source: SourceSpec): TarEntry[] {
  const kept = keptDebPaths(entries, source);
  const byPath = new Map(entries.map((entry) => [entry.path.toString('latin1'), entry]));
  const out: TarEntry[] = [];
  for (const entry of entries) {
    if (!kept.has(entry.path.toString('latin1'))) continue;
    if (entry.type === 'hardlink' && !kept.has(entry.linkTarget!.toString('latin1'))) {
      const target = byPath.get(entry.linkTarget!.toString('latin1'))!;
      out.push({ ...entry, type: 'file', linkTarget: undefined, sizeBytes: target.sizeBytes, content: target.content } as TarEntry);
      continue;
    }
    out.push(entry);
  }
  return out;
}

/**
 * Puts placed entries together, refusing a path delivered twice. Identical folders
 * (same mode, owner, group, layer) from several origins are merged.
 */
function mergePlaced(placed: PlacedEntry[], subject: string): PlacedEntry[] {
  const byPath = new Map<string, PlacedEntry>();
  for (const item of placed) {
    const key = item.entry.path.toString('latin1');
    const previous = byPath.get(key);
    if (previous === undefined) {
      byPath.set(key, item);
      continue;
    }
    const a = previous.entry;
    const b = item.entry;
    const isSameFolder = a.type === 'directory' && b.type === 'directory' && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && previous.layer === item.layer;
    if (isSameFolder) continue;
    throw new RedoError('ERR_FRAGMENT_CONFLICT', `redo: "/${pathText(b.path)}": delivered twice into ${subject}`, {
      details: [
        `first:  ${previous.origin} (${describe(a)}${previous.layer ? `, layer ${previous.layer}` : ''})`,
        `second: ${item.origin} (${describe(b)}${item.layer ? `, layer ${item.layer}` : ''})`,
      ],
      hint: 'deliver each path from one spec only: narrow a files rule, or exclude it from a deb: source',
    });
  }
  return [...byPath.values()];
}

function describe(entry: TarEntry): string {
  return `${entry.type} ${entry.mode.toString(8).padStart(4, '0')} ${entry.uid}:${entry.gid}`;
}
