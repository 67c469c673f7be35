/** `redo-ts pin IMAGE.yaml`: writes the digest a base image's tag points at into the description's `base:` line. */

import { readFile, writeFile } from 'node:fs/promises';
import { RedoError } from '../errors.js';
import { RegistryClient, manifestMediaTypes } from './client.js';
import { parseReference } from './reference.js';

/** What pinning one description's base did. */
export interface BasePinChange {
  /** The description file, as given. */
  file: string;
  line: number;
  /** The reference as it was before (`HOST/REPO:TAG` or `HOST/REPO:TAG@sha256:…`). */
  old: string;
  /** The reference as written now. */
  reference: string;
  action: 'added' | 'updated' | 'unchanged';
}

const baseLine = /^(base:[ \t]*)(["']?)([^"'\s#]+)\2([ \t]*(?:#.*)?)$/m;

/**
 * Pins the `base:` of the image description at `file` (shown as `shown`): a base with a
 * tag and no digest gets `@sha256:…` of the manifest (or index) the tag points at now;
 * with `shouldUpdate`, a pinned base is resolved again by its tag and its digest replaced
 * when it moved. Only the `base:` line changes. Returns undefined when the description
 * has no top-level `base:` line. Throws ERR_REGISTRY_REFERENCE for a base with a digest
 * but no tag when updating (nothing to resolve), and the client's errors.
 */
export async function pinImageBase(file: string, shown: string, options: { env: NodeJS.ProcessEnv; shouldUpdate: boolean }): Promise<BasePinChange | undefined> {
  const text = await readFile(file, 'utf8');
  const match = baseLine.exec(text);
  if (match === null) return undefined;
  const line = text.slice(0, match.index).split('\n').length;
  const old = match[3]!;
  const reference = parseReference(old);
  if (reference.digest !== undefined && !options.shouldUpdate) return { file: shown, line, old, reference: old, action: 'unchanged' };
  const hadTag = /:[^/@]+(@|$)/.test(old.slice(old.indexOf('/')));
  if (!hadTag) {
    if (reference.digest !== undefined) return { file: shown, line, old, reference: old, action: 'unchanged' };
    throw new RedoError('ERR_REGISTRY_REFERENCE', `redo: "${shown}:${line}": base "${old}" has neither tag nor digest`, { hint: 'write HOST/REPOSITORY:TAG, then pin it' });
  }
  const tag = reference.tag ?? 'latest';
  const client = new RegistryClient(reference.host, { env: options.env, label: `${reference.host}/${reference.repository}:${tag}` });
  let digest: string | undefined;
  try {
    digest = await client.resolveTag(reference.repository, tag, manifestMediaTypes);
  } finally {
    client.close();
  }
  if (digest === undefined) {
    throw new RedoError('ERR_REGISTRY_REFERENCE', `redo: "${shown}:${line}": the registry has no tag "${tag}" in ${reference.host}/${reference.repository}`, {
      hint: 'push the base image first, or fix the tag',
    });
  }
  const pinned = `${reference.host}/${reference.repository}:${tag}@${digest}`;
  if (pinned === old) return { file: shown, line, old, reference: pinned, action: 'unchanged' };
  const updated = text.slice(0, match.index) + `${match[1]}${match[2]}${pinned}${match[2]}${match[4]}` + text.slice(match.index + match[0].length);
  await writeFile(file, updated);
  return { file: shown, line, old, reference: pinned, action: reference.digest === undefined ? 'added' : 'updated' };
}
