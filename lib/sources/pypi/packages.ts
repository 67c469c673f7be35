/** PyPI packages of a spec: the exact files a hashed requirements file pins, fetched with the machine's pip into the content cache, installed by pip offline. */

import { spawn } from 'node:child_process';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RedoError } from '../../errors.js';
import { checkFile, integrityOfFile, type Integrity } from '../integrity.js';
import { withScratchFolder } from '../scratch.js';
import type { AppDependencies, Spec } from '../spec.js';
import { copyOutOfStore, damagedEntryError, insertIntoStore, lookUpInStore, originInStore } from '../store.js';
import { readRequirements, type PypiRequirement } from './requirements.js';
import { writeFile } from 'node:fs/promises';

/** Options for the PyPI steps of a build. */
export interface PypiOptions {
  cacheDir: string;
  /** The caller's environment: the machine's pip configuration (PIP_*, pip.conf) for fetching. */
  env: NodeJS.ProcessEnv;
  isOffline: boolean;
}

/** A requirement with its verified file (wheel) in the content cache. */
export interface FetchedPypiFile {
  requirement: PypiRequirement;
  /** The cached file: shared, read-only. */
  path: string;
  /** The file's name as the index served it (pip reads the wheel's tags from it). */
  fileName: string;
  integrity: Integrity;
  /** The cache holding `path`: preparePypiInstall hashes the file as it copies it, and drops it there when it does not match. */
  cacheDir: string;
}

/** `sha256-BASE64` for a hex sha256. */
function sriOfHex(hex: string): Integrity {
  return `sha256-${Buffer.from(hex, 'hex').toString('base64')}` as Integrity;
}

/**
 * The verified file of every requirement of `deps.lock`, in file order. Each is looked
 * up in the content cache by each of its hashes; the missing ones are fetched in one
 * `python3 -m pip download --no-deps --require-hashes --only-binary=:all:` with the
 * machine's pip configuration (index, proxy, certificates), or `--index-url` from the
 * spec's `index`. pip checks each file against the hashes; each is checked again here
 * before it enters the cache. A requirement whose marker excludes this Python is left out.
 * Throws ERR_PYPI_UNHASHED (a line without hashes), ERR_INTEGRITY_MISMATCH naming the
 * requirement, ERR_SOURCE_UNREACHABLE (pip's last lines). Writes the cache and a scratch
 * folder it removes.
 */
export async function fetchPypiFiles(spec: Spec, deps: AppDependencies, options: PypiOptions): Promise<FetchedPypiFile[]> {
  const requirements = await readRequirements(resolve(spec.root, deps.lock), deps.lock);
  const found = new Map<PypiRequirement, FetchedPypiFile>();
  const missing: PypiRequirement[] = [];
  for (const requirement of requirements) {
    let hit: FetchedPypiFile | undefined;
    for (const hex of requirement.sha256Hex) {
      const integrity = sriOfHex(hex);
      // Not hashed here: preparePypiInstall hashes it in the copy it makes for pip.
      const cached = await lookUpInStore(options.cacheDir, integrity);
      const fileName = cached.kind === 'hit' ? await originInStore(options.cacheDir, integrity) : undefined;
      if (cached.kind === 'hit' && fileName !== undefined) {
        hit = { requirement, path: cached.path, fileName, integrity, cacheDir: options.cacheDir };
        break;
      }
    }
    if (hit !== undefined) found.set(requirement, hit);
    else missing.push(requirement);
  }
  if (missing.length > 0) {
    if (options.isOffline) {
      throw new RedoError('ERR_SOURCE_UNREACHABLE', `redo: "${spec.relativePath}": PyPI package ${missing[0]!.name}==${missing[0]!.version} cannot be fetched`, {
        details: ['why: offline mode, and the cache has no copy', ...(missing.length > 1 ? [`and ${missing.length - 1} more of ${deps.lock}`] : [])],
        hint: 'build once where the index is reachable to fill the cache',
      });
    }
    await withScratchFolder('redo-ts-pypi-', async (scratch) => {
      const list = missing.map((item) => `${item.name}${item.extras}==${item.version} ${item.sha256Hex.map((hex) => `--hash=sha256:${hex}`).join(' ')}${item.marker === '' ? '' : ` ${item.marker}`}`);
      await writeFile(join(scratch, 'requirements.txt'), `${list.join('\n')}\n`);
      await mkdir(join(scratch, 'files'));
      const args = ['-m', 'pip', 'download', '--no-deps', '--require-hashes', '--only-binary=:all:', '--progress-bar', 'off', '--disable-pip-version-check', '--dest', join(scratch, 'files'), '-r', join(scratch, 'requirements.txt')];
      if (deps.index !== undefined) args.push('--index-url', deps.index);
      const { status, output } = await capture('python3', args, scratch, options.env);
      if (status !== 0) {
        const lines = output.split('\n').filter((line) => line.trim() !== '');
        if (/DO NOT MATCH THE HASHES/.test(output)) {
          const culprit = missing.find((item) => lines.some((line) => line.includes(`${item.name}==${item.version}`) || line.toLowerCase().includes(`${item.normalName}==${item.version}`)));
          throw new RedoError('ERR_INTEGRITY_MISMATCH', `redo: "${spec.relativePath}": PyPI package ${culprit !== undefined ? `${culprit.name}==${culprit.version} (${deps.lock}:${culprit.line})` : `of ${deps.lock}`}: integrity mismatch`, {
            details: [...lines.slice(-4).map((line) => `pip: ${line.trim()}`), 'it was not cached, and nothing was built'],
            hint: 'the index serves other bytes than the requirements pin: check the index; re-pin (pip-compile --generate-hashes) only if the package was meant to change',
          });
        }
        throw new RedoError('ERR_SOURCE_UNREACHABLE', `redo: "${spec.relativePath}": the PyPI packages of ${deps.lock} cannot be fetched`, {
          details: [`why: pip download ${status === null ? 'could not run' : `exited with status ${status}`}`, ...lines.slice(-4).map((line) => `pip: ${line.trim()}`)],
          hint: `check the machine's pip configuration (\`python3 -m pip config list\`) or the spec's pypi.index, and that the index has these files (wheels: sdists are not built)`,
        });
      }
      const byHash = new Map<string, string>();
      for (const name of (await readdir(join(scratch, 'files'))).sort()) {
        const integrity = await integrityOfFile(join(scratch, 'files', name), 'sha256');
        byHash.set(integrity, name);
      }
      for (const requirement of missing) {
        const hex = requirement.sha256Hex.find((candidate) => byHash.has(sriOfHex(candidate)));
        if (hex === undefined) {
          // pip skips a requirement whose marker does not apply to this Python.
          if (requirement.marker !== '') continue;
          throw new RedoError('ERR_SOURCE_UNREACHABLE', `redo: "${spec.relativePath}": PyPI package ${requirement.name}==${requirement.version} cannot be fetched`, {
            details: [`why: pip download brought no file with one of its hashes (${deps.lock}:${requirement.line})`],
            hint: 'check that the index has a wheel with one of these hashes for this platform',
          });
        }
        const integrity = sriOfHex(hex);
        const fileName = byHash.get(integrity)!;
        const path = await insertIntoStore(options.cacheDir, integrity, join(scratch, 'files', fileName), fileName);
        found.set(requirement, { requirement, path, fileName, integrity, cacheDir: options.cacheDir });
      }
    });
  }
  return requirements.filter((requirement) => found.has(requirement)).map((requirement) => found.get(requirement)!);
}

/** The pip install step: its label, command and extra environment. */
export interface PypiInstallStep {
  what: string;
  script: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Prepares the pip install of `deps`: the verified files under their own names in
 * `SCRATCH/pypi/files` and the project's requirements file beside them. Returns the
 * step: `python3 -m pip install --no-index --require-hashes --no-deps --no-compile
 * --find-links FILES --target "$DESTDIR/PATH" -r REQUIREMENTS`, run like a build step,
 * with pip's configuration files and environment ignored (PIP_CONFIG_FILE=/dev/null);
 * console scripts in `PATH/bin` get `#!/usr/bin/env python3` instead of the build
 * Python's path.
 */
export async function preparePypiInstall(spec: Spec, deps: AppDependencies, fetched: FetchedPypiFile[], scratch: string): Promise<PypiInstallStep> {
  const files = join(scratch, 'pypi', 'files');
  await mkdir(files, { recursive: true });
  for (const item of fetched) {
    // Hashed as copied (one read): a damaged entry is dropped and the copy removed;
    // buildFragment then builds again, fetching it anew (offline, the error stands).
    const copied = await copyOutOfStore(item.cacheDir, item.integrity, item.path, join(files, item.fileName));
    if (copied.kind !== 'hit') {
      throw damagedEntryError(`redo: "${spec.relativePath}": PyPI package ${item.requirement.name}==${item.requirement.version} (${deps.lock})`, item.integrity,
        copied.kind === 'damaged' ? copied : { path: item.path, found: 'missing' as Integrity }, 'build once where the index is reachable to fetch it again, or check what writes into the cache folder');
    }
  }
  const requirements = join(scratch, 'pypi', 'requirements.txt');
  await copyFile(resolve(spec.root, deps.lock), requirements);
  return {
    what: `pip install (${deps.lock})`,
    // Console scripts get the build Python's own path as their #! line: a path of this
    // machine. They are rewritten to `#!/usr/bin/env python3`, the same everywhere.
    script: [
      `python3 -m pip install --no-index --require-hashes --no-deps --no-compile --disable-pip-version-check --no-warn-script-location --progress-bar off --find-links "${files}" --target "$DESTDIR${deps.path}" -r "${requirements}"`,
      `if [ -d "$DESTDIR${deps.path}/bin" ]; then for script in "$DESTDIR${deps.path}"/bin/*; do if [ -f "$script" ] && head -n 1 "$script" | grep -q '^#!.*python'; then sed -i '1s|^#!.*$|#!/usr/bin/env python3|' "$script"; fi; done; fi`,
    ].join('\n'),
    env: { PIP_CONFIG_FILE: '/dev/null', PIP_NO_INPUT: '1', PIP_NO_CACHE_DIR: '1', PYTHONDONTWRITEBYTECODE: '1' },
  };
}

function capture(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; output: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', (error) => resolvePromise({ status: null, output: error.message }));
    child.on('close', (code) => resolvePromise({ status: code, output: Buffer.concat(chunks).toString('utf8') }));
  });
}
