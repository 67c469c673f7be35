/** `redo-ts origin TARGET PATH`: the layer, spec and pinned source or package that delivered one file of an image. */

import { RedoError } from '../../errors.js';
import { checksumsOfFile, type Inventory, type InventoryFile } from '../../inventory/inventory.js';
import type { Command } from '../command.js';
import { inventoryOfImageTarget } from '../image-target.js';
import { parseJsonOption } from '../session.js';

const usage = `usage: redo-ts origin [--json] TARGET PATH

Brings the image TARGET up to date, then says where its file PATH (/usr/bin/x) came
from: the layer holding it, the spec that delivered it, and the Debian package and
version (with the .deb's pin) or the pinned sources its build used, or the project
folder it was copied from. A path in several layers is reported once per layer.

  --json   print the answer as JSON`;

function describe(inventory: Inventory, file: InventoryFile): Record<string, unknown> {
  const layer = inventory.layers[file.layer]!;
  const out: Record<string, unknown> = {
    path: file.path,
    type: file.type,
    mode: file.mode.toString(8).padStart(4, '0'),
    owner: `${file.uid}:${file.gid}`,
    ...(file.linkTarget !== undefined ? { linkTarget: file.linkTarget } : {}),
    ...(checksumsOfFile(file) !== undefined ? { sha256: checksumsOfFile(file)!.sha256Hex } : {}),
    layer: `${file.layer} ${layer.target} ${layer.diffId}`,
  };
  const origin = file.origin;
  switch (origin.kind) {
    case 'package': {
      const item = inventory.packages.find((candidate) => candidate.key === origin.package)!;
      out['spec'] = origin.spec;
      out['package'] = `${item.name} ${item.version} ${item.ecosystem ?? item.architecture}`;
      out['pinned'] = `${item.url} ${item.integrity ?? '(no pin)'}`;
      out['purl'] = item.purl;
      out['licence'] = item.licence.expression;
      break;
    }
    case 'spec': {
      const spec = inventory.specs.find((candidate) => candidate.path === origin.spec)!;
      out['spec'] = `${spec.path} (${spec.name} ${spec.version}, built by its steps)`;
      out['sources'] = spec.sources.map((source) => `${source.url} ${source.integrity ?? '(no pin)'}${source.isProjectFile ? ' (project file)' : ''}${source.role === 'patch' ? ' (patch)' : ''}`);
      break;
    }
    case 'folder':
      out['folder'] = origin.folder;
      out['projectFile'] = origin.projectPath;
      break;
    case 'target':
      out['target'] = `${origin.target} (no provenance known: not a spec fragment or layer list)`;
      break;
    default: {
      const never: never = origin;
      return never;
    }
  }
  return out;
}

const command: Command = {
  summary: 'name the layer, spec and pinned source or package of one file in an image',
  usage,
  async run(args, io) {
    const { isJson, positional } = parseJsonOption(args, 'origin', usage);
    if (positional.length !== 2) throw new RedoError('ERR_USAGE', 'redo: "origin": name an image target and a path', { hint: usage.split('\n')[0] });
    const [target, rawPath] = positional as [string, string];
    const path = `/${rawPath.split('/').filter((part) => part !== '' && part !== '.').join('/')}`;
    const inventory = await inventoryOfImageTarget(target, io, { shouldSkipChecksums: true });
    if (typeof inventory === 'number') return inventory;
    let matches = inventory.files.filter((file) => file.path === path);
    // /bin/ls in a merged-/usr image is /usr/bin/ls reached through the /bin link.
    const reached = matches.length === 0 ? throughFolderLinks(inventory.files, path) : path;
    if (reached !== path) matches = inventory.files.filter((file) => file.path === reached);
    if (matches.length === 0) {
      const near = inventory.files.filter((file) => file.path.endsWith(`/${path.split('/').pop()}`)).map((file) => file.path);
      throw new RedoError('ERR_PATH_NOT_IN_IMAGE', `redo: "${inventory.target}": no layer holds "${path}"`, {
        details: near.length > 0 ? [`same name elsewhere: ${[...new Set(near)].slice(0, 5).join(', ')}`] : [],
        hint: `list the image's files with redo-ts sbom ${inventory.target}`,
      });
    }
    const answers = matches.map((file) => (reached === path ? describe(inventory, file) : { ...describe(inventory, file), via: `${path} → ${reached}` }));
    if (isJson) {
      io.stdout.write(`${JSON.stringify(answers, null, 2)}\n`);
      return 0;
    }
    const lines: string[] = [];
    for (const answer of answers) {
      lines.push(`${answer['path']}`);
      for (const [key, value] of Object.entries(answer)) {
        if (key === 'path') continue;
        const values = Array.isArray(value) ? value : [value];
        for (const item of values) lines.push(`  ${`${key}:`.padEnd(12)} ${String(item)}`);
      }
    }
    io.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  },
};
export default command;

/**
 * `path` with every folder on the way that is a symlink in the image replaced by where
 * it points (relative links against their own folder), as the kernel would resolve it
 * inside the image; the last component is not followed. At most 40 links. Pure.
 */
function throughFolderLinks(files: readonly { path: string; type: string; linkTarget?: string }[], path: string): string {
  const links = new Map(files.filter((file) => file.type === 'symlink' && file.linkTarget !== undefined).map((file) => [file.path, file.linkTarget!]));
  let parts = path.split('/').filter((part) => part !== '');
  for (let hops = 0, i = 0; i < parts.length - 1 && hops < 40; ) {
    const prefix = `/${parts.slice(0, i + 1).join('/')}`;
    const target = links.get(prefix);
    if (target === undefined) {
      i += 1;
      continue;
    }
    hops += 1;
    const base = target.startsWith('/') ? [] : parts.slice(0, i);
    const resolved: string[] = [];
    for (const part of [...base, ...target.split('/')]) {
      if (part === '' || part === '.') continue;
      if (part === '..') resolved.pop();
      else resolved.push(part);
    }
    parts = [...resolved, ...parts.slice(i + 1)];
    i = 0;
  }
  return `/${parts.join('/')}`;
}
