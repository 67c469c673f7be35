/** What a provenance statement names for an image target: its recorded sources, their pins, the git commit, the builder. */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Material, ProvenanceInput } from '../attest/provenance.js';
import { listTransitiveSources } from '../engine/inspect.js';
import { mtimeFromEnvironment } from '../image/tar.js';
import { listPins } from '../sources/provenance.js';
import { specSuffix } from '../sources/spec.js';
import { packageVersion } from './package-files.js';

/** redo-ts's version from its package.json, or "unknown". */
export function redoVersion(): string {
  return packageVersion();
}

/** `sha256-BASE64` (SRI) → `{ sha256: HEX }`. */
function digestOfIntegrity(integrity: string): Record<string, string> {
  const dash = integrity.indexOf('-');
  return { [integrity.slice(0, dash)]: Buffer.from(integrity.slice(dash + 1), 'base64').toString('hex') };
}

/**
 * The provenance input of the built image target `target` (root-relative) whose
 * manifest is `manifestDigest`: every source file its last build recorded, transitively
 * (rules, descriptions, specs, lock files, project inputs: root-relative path and
 * sha256 of the content now; dependencies outside the project are left out, as their
 * paths are the host's), every pinned remote source of the specs among them (URL and
 * pinned digest), the git commit of the project (and whether tracked files differ from
 * it), SOURCE_DATE_EPOCH and the redo-ts version. Reads `.redo/` and the files; runs `git`.
 */
export async function collectProvenanceInput(root: string, target: string, manifestDigest: string, env: NodeJS.ProcessEnv): Promise<ProvenanceInput> {
  const sources = listTransitiveSources(root, target).filter((p) => !path.isAbsolute(p));
  const materials: Material[] = [];
  for (const source of sources) {
    const file = path.join(root, source);
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
    materials.push({ name: source, digest: { sha256: createHash('sha256').update(fs.readFileSync(file)).digest('hex') } });
  }
  const specs = sources.filter((p) => p.endsWith(specSuffix)).map((p) => path.join(root, p));
  if (specs.length > 0) {
    for (const pin of await listPins(specs, { root })) {
      if (pin.isProjectFile || pin.integrity === undefined) continue;
      materials.push({ name: `${pin.kind}:${pin.name}`, uri: pin.url, digest: digestOfIntegrity(pin.integrity), annotations: { version: pin.version, spec: pin.spec, role: pin.role } });
    }
  }
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  const gitCommit = head.status === 0 ? head.stdout.trim() : undefined;
  const status = gitCommit === undefined ? undefined : spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' });
  return {
    target,
    manifestDigest,
    sourceDateEpoch: mtimeFromEnvironment(env),
    redoVersion: redoVersion(),
    ...(gitCommit === undefined ? {} : { gitCommit, isTreeDirty: (status?.stdout ?? '').trim() !== '' }),
    materials,
  };
}
