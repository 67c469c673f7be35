/** `redo-ts contains PACKAGE[=VERSION]`: which built images hold a package, in which layers and versions. */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { listTargets } from '../../engine/inspect.js';
import { RedoError, isRedoError } from '../../errors.js';
import { collectInventory, descriptionOfTarget } from '../../inventory/inventory.js';
import type { Command } from '../command.js';
import { parseJsonOption, projectRoot } from '../session.js';

const usage = `usage: redo-ts contains [--json] PACKAGE[=VERSION]

Lists the image targets this project has built (NAME.tar with NAME.yaml, as they are
on disk; nothing is rebuilt) that hold the package PACKAGE (Debian, or npm and PyPI
from a spec's lock files; at VERSION when given): the image, the layer(s) its files are in, the version and the spec naming it.
A package a spec uses only to build (deliver: false) is listed with layer "-".
Exit status 0 when some image holds it, 1 when none does.

  --json   print the rows as JSON`;

interface Row {
  image: string;
  layer: string;
  package: string;
  version: string;
  spec: string;
}

const command: Command = {
  summary: 'list the built images and layers that hold a Debian, npm or PyPI package (PACKAGE[=VERSION])',
  usage,
  async run(args, io) {
    const { isJson, positional: wanted } = parseJsonOption(args, 'contains', usage);
    if (wanted.length !== 1) throw new RedoError('ERR_USAGE', 'redo: "contains": name one package, PACKAGE or PACKAGE=VERSION', { hint: usage.split('\n')[0] });
    const [name, version] = wanted[0]!.split('=', 2) as [string, string | undefined];
    const root = projectRoot(io);
    const built = listTargets(root);
    // One row source per image: NAME.tar, or NAME.oci.tar when only the layout was built.
    const images = built.filter((target) => {
      const description = descriptionOfTarget(target);
      if (description === undefined || !existsSync(join(root, description))) return false;
      return !target.endsWith('.oci.tar') || !built.includes(target.replace(/\.oci\.tar$/, '.tar'));
    });
    const rows: Row[] = [];
    const skipped: string[] = [];
    for (const image of images) {
      let inventory;
      try {
        inventory = await collectInventory(image, join(root, descriptionOfTarget(image)!), { root, env: io.env, shouldSkipChecksums: true });
      } catch (error) {
        if (isRedoError(error, 'ERR_NOT_AN_IMAGE') || isRedoError(error, 'ERR_IMAGE_DESCRIPTION')) {
          skipped.push(`${image}: ${error.headline.replace(/^redo: /, '')}`);
          continue;
        }
        throw error;
      }
      for (const item of inventory.packages) {
        if (item.name !== name || (version !== undefined && item.version !== version)) continue;
        const layers = [...new Set(inventory.files.filter((file) => file.origin.kind === 'package' && file.origin.package === item.key).map((file) => file.layer))].sort((a, b) => a - b);
        const layerNames = layers.length > 0 ? layers.map((index) => inventory.layers[index]!.target) : ['-'];
        for (const layer of layerNames) rows.push({ image, layer, package: item.name, version: item.version, spec: item.specs.join(' ') });
      }
    }
    if (isJson) io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else if (rows.length === 0) io.stdout.write(`no built image contains ${wanted[0]} (${images.length} image${images.length === 1 ? '' : 's'} searched)\n`);
    else {
      const table = [['image', 'layer', 'package', 'version', 'spec'], ...rows.map((row) => [row.image, row.layer, row.package, row.version, row.spec])];
      const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
      io.stdout.write(`${table.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n')}\n`);
    }
    for (const line of skipped) io.stderr.write(`redo: skipped ${line}\n`);
    return rows.length > 0 ? 0 : 1;
  },
};
export default command;
