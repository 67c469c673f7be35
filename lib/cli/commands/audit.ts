/** `redo-ts audit TARGET`: crud and secrets in an image, each with its file, layer and origin. */

import { RedoError } from '../../errors.js';
import { loadImageDescription } from '../../image/description.js';
import { auditInventory, formatFindings } from '../../inventory/audit.js';
import { join } from 'node:path';
import type { Command } from '../command.js';
import { inventoryOfImageTarget } from '../image-target.js';
import { parseJsonOption, projectRoot } from '../session.js';

const usage = `usage: redo-ts audit [--json] TARGET

Brings the image TARGET (NAME.tar or NAME.oci.tar) up to date, then checks every
member of every layer for: shell-history, private-key (PEM or OpenSSH header),
vcs-folder (.git, .svn, .hg, .bzr), build-tool (cc, gcc, cc1, ld, as, make, ...),
package-cache (apt lists and caches, pip, npm), world-writable (without the sticky
bit), setuid, setgid, unknown-owner (uid or gid missing from the image's /etc/passwd
or /etc/group) and symlink-escape (a symlink climbing out of the rootfs). Each
finding names the file, the layer and the spec, package or folder that delivered it.
NAME.yaml may accept findings with \`auditAllow: [KIND, KIND:/path/glob]\`.
Exit status 1 when there are findings not allowed, else 0.

  --json   print the findings as JSON`;

const command: Command = {
  summary: 'check an image for shell history, keys, .git, compilers, caches, bad modes and owners',
  usage,
  async run(args, io) {
    const { isJson, positional: targets } = parseJsonOption(args, 'audit', usage);
    if (targets.length !== 1) throw new RedoError('ERR_USAGE', 'redo: "audit": name one image target', { hint: usage.split('\n')[0] });
    const inventory = await inventoryOfImageTarget(targets[0]!, io, { shouldSkipChecksums: true });
    if (typeof inventory === 'number') return inventory;
    const root = projectRoot(io);
    const description = await loadImageDescription(join(root, inventory.description), root);
    const result = auditInventory(inventory, description.auditAllow);
    if (isJson) {
      io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      const files = inventory.files.length;
      const head = `audit: "${inventory.target}": ${result.findings.length === 0 ? 'no findings' : `${result.findings.length} finding${result.findings.length === 1 ? '' : 's'}`} in ${files} members of ${inventory.layers.length} layer${inventory.layers.length === 1 ? '' : 's'}${result.allowed.length > 0 ? ` (${result.allowed.length} allowed by ${inventory.description})` : ''}`;
      io.stdout.write(`${[head, ...formatFindings(result.findings).map((line) => `  ${line}`)].join('\n')}\n`);
    }
    return result.findings.length === 0 ? 0 : 1;
  },
};
export default command;
