/** `redo-ts pin [--update] [SPEC...]`: write missing (or, with --update, changed) integrity pins into spec files. */

import { readdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Command } from '../command.js';
import { RedoError } from '../../errors.js';
import { findProjectRoot } from '../../engine/paths.js';
import { pinImageBase } from '../../registry/pin-base.js';
import { pinSpecs } from '../../sources/pin.js';
import { specSuffix } from '../../sources/spec.js';

const usage = `usage: redo-ts pin [--update] [SPEC... | IMAGE.yaml...]

Computes the integrity of every source and patch that has none and writes it into
its spec, after the source's url, keeping the rest of the file as it was.
With no SPEC, every targets/**/*${specSuffix} of the project is pinned.

An image description (any other .yaml) named here gets its base pinned: a
\`base: HOST/REPO:TAG\` line becomes \`base: HOST/REPO:TAG@sha256:…\`, the digest
the tag points at now (asked of the registry, with the push command's credentials).

  --update   also re-download pinned sources and replace pins that changed,
             and resolve pinned bases' tags again, printing old → new
             (review the change before committing it)

A build never changes a pin; only this command does.`;

/** Every spec file under `dir`, sorted by path bytes. */
export async function findSpecFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (folder: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await visit(path);
      else if (entry.name.endsWith(specSuffix)) out.push(path);
    }
  };
  await visit(dir);
  return out.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

const command: Command = {
  summary: 'write missing integrity pins into target specs (--update refreshes changed ones)',
  usage,
  async run(args, io) {
    let shouldUpdate = false;
    const paths: string[] = [];
    for (const arg of args) {
      if (arg === '--update' || arg === '-u') shouldUpdate = true;
      else if (arg === '--help' || arg === '-h') {
        io.stdout.write(`${usage}\n`);
        return 0;
      } else if (arg.startsWith('-')) {
        throw new RedoError('ERR_USAGE', `redo: "pin": unknown option ${arg}`, { hint: usage.split('\n')[0] });
      } else paths.push(resolve(io.cwd, arg));
    }
    const root = findProjectRoot(io.cwd);
    const descriptions = paths.filter((p) => p.endsWith('.yaml') && !p.endsWith(specSuffix));
    if (descriptions.length > 0) {
      for (const description of descriptions) {
        const shown = relative(root, description);
        const change = await pinImageBase(description, shown, { env: io.env, shouldUpdate });
        if (change === undefined) {
          throw new RedoError('ERR_USAGE', `redo: "${shown}": has no base: line to pin`, { hint: 'pin names spec files, or image descriptions with a base' });
        }
        const where = `${change.file}:${change.line}: base`;
        io.stdout.write(change.action === 'unchanged' ? `${where}: unchanged ${change.reference}\n` : `${where}: ${change.old} → ${change.reference}\n`);
      }
      if (descriptions.length === paths.length) return 0;
    }
    const specs = paths.length > 0 ? paths.filter((p) => !descriptions.includes(p)) : await findSpecFiles(join(root, 'targets'));
    if (specs.length === 0) {
      throw new RedoError('ERR_USAGE', `redo: "targets": no *${specSuffix} files to pin`, { hint: 'name the spec files to pin' });
    }
    const onProgress = (line: string): void => void io.stderr.write(`${line}\n`);
    const changes = await pinSpecs(specs, { shouldUpdate, env: io.env, onProgress, ...(paths.length === 0 ? { root } : {}) });
    let added = 0;
    let updated = 0;
    for (const change of changes) {
      const where = `${change.spec}:${change.line}: ${change.url}`;
      switch (change.action) {
        case 'added':
          added += 1;
          io.stdout.write(`${where}: pinned ${change.integrity}\n`);
          break;
        case 'updated':
          updated += 1;
          io.stdout.write(`${where}: ${change.old} → ${change.integrity}\n`);
          break;
        case 'unchanged':
          io.stdout.write(`${where}: unchanged\n`);
          break;
        default: {
          const impossible: never = change.action;
          throw new Error(`unknown pin action ${String(impossible)}`);
        }
      }
    }
    io.stderr.write(`redo-ts pin: ${added} added, ${updated} updated, ${specs.length} spec${specs.length === 1 ? '' : 's'} checked\n`);
    return 0;
  },
};
export default command;
