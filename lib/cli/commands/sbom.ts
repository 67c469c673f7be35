/** `redo-ts sbom TARGET`: the SPDX 2.3 or CycloneDX 1.6 JSON document of an image, from its pins, specs and packages. */

import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { RedoError } from '../../errors.js';
import { mtimeFromEnvironment } from '../../image/tar.js';
import { cyclonedxDocument } from '../../inventory/cyclonedx.js';
import { spdxDocument } from '../../inventory/spdx.js';
import type { Command } from '../command.js';
import { inventoryOfImageTarget } from '../image-target.js';

const usage = `usage: redo-ts sbom [--format spdx|cyclonedx] [-o FILE] TARGET

Brings the image TARGET (NAME.tar or NAME.oci.tar, described by NAME.yaml) up to date,
then prints its software bill of materials, built from the project's pins, specs and
package metadata rather than from a scan: every Debian package (name, version, purl,
checksum, licence), spec and pinned source, and every file of every layer with its
checksums and what delivered it. The same image gives the same bytes: the document
namespace (SPDX) or serial number (CycloneDX) derives from the image's config digest,
the time from SOURCE_DATE_EPOCH (else 1970). See docs/sbom.md.

  --format spdx        SPDX 2.3 JSON (default)
  --format cyclonedx   CycloneDX 1.6 JSON
  -o FILE              write to FILE instead of stdout`;

const command: Command = {
  summary: 'print the SPDX or CycloneDX SBOM of an image (from pins and packages, not a scan)',
  usage,
  async run(args, io) {
    let format = 'spdx';
    let output: string | undefined;
    const targets: string[] = [];
    for (let i = 0; i < args.length; i += 1) {
      const arg = args[i]!;
      if (arg === '--format' || arg === '-o') {
        const value = args[(i += 1)];
        if (value === undefined) throw new RedoError('ERR_USAGE', `redo: "sbom": ${arg} wants a value`, { hint: usage.split('\n')[0] });
        if (arg === '-o') output = value;
        else format = value;
      } else if (arg.startsWith('--format=')) format = arg.slice('--format='.length);
      else if (arg.startsWith('-')) throw new RedoError('ERR_USAGE', `redo: "sbom": unknown option ${arg}`, { hint: usage.split('\n')[0] });
      else targets.push(arg);
    }
    if (format !== 'spdx' && format !== 'cyclonedx') {
      throw new RedoError('ERR_USAGE', `redo: "sbom": unknown format "${format}"`, { details: ['wanted: spdx or cyclonedx'] });
    }
    if (targets.length !== 1) throw new RedoError('ERR_USAGE', 'redo: "sbom": name one image target', { hint: usage.split('\n')[0] });
    const inventory = await inventoryOfImageTarget(targets[0]!, io);
    if (typeof inventory === 'number') return inventory;
    const options = { createdSeconds: mtimeFromEnvironment(io.env) };
    const text = format === 'spdx' ? spdxDocument(inventory, options) : cyclonedxDocument(inventory, options);
    if (output !== undefined) await writeFile(resolve(io.cwd, output), text);
    else io.stdout.write(text);
    return 0;
  },
};
export default command;
