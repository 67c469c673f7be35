/** `redo-ts store gc`: removes from the image store (.redo/store) what no image record reaches and no build used lately. */

import { join } from 'node:path';
import type { Command } from '../command.js';
import { RedoError } from '../../errors.js';
import { BlobStore } from '../../image/blob-store.js';
import { collectStoreGarbage } from '../../image/store-gc.js';
import { listOutputSha256s } from '../../engine/inspect.js';
import { projectRoot } from '../session.js';

const usage = `usage: redo-ts store gc [--dry-run] [--grace SECONDS]

Collects the garbage of the project's image store (.redo/store): keeps every blob an
image record (each NAME.image.json of the project) reaches, with its layer facts,
and everything written or reused in the last SECONDS (default 3600, so a build
running at the same time loses nothing); removes the other blobs, their facts, the
path records that named them, the states files of archives no target is any more
(what lets an archive be rewritten in place) and abandoned temporary files, and
prints what it freed. --dry-run prints the same without removing anything. A removed
blob that a view needs again is stored again from its record and layer target.`;

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

const command: Command = {
  summary: 'remove image-store blobs no image record reaches (store gc)',
  usage,
  async run(args, io) {
    const [action, ...rest] = args;
    let isDryRun = false;
    let graceSeconds = 3600;
    for (let i = 0; i < rest.length; i++) {
      const arg = rest[i]!;
      if (arg === '--dry-run') isDryRun = true;
      else if (arg === '--grace' && /^\d+$/.test(rest[i + 1] ?? '')) graceSeconds = Number(rest[++i]);
      else throw new RedoError('ERR_USAGE', `redo: "store gc": unknown argument "${arg}"`, { hint: usage.split('\n')[0] });
    }
    if (action !== 'gc') {
      throw new RedoError('ERR_USAGE', `redo: "store": ${action === undefined ? 'missing action' : `unknown action "${action}"`}`, { hint: usage.split('\n')[0] });
    }
    const root = projectRoot(io);
    const store = BlobStore.ofProject(root);
    // Read before the collection: an unreadable engine state stops it (ERR_STATE_*), nothing removed.
    const report = collectStoreGarbage(store, root, { graceSeconds, isDryRun, currentOutputs: listOutputSha256s(root) });
    const verb = isDryRun ? 'would remove' : 'removed';
    io.stdout.write(
      `${verb} ${report.removedBlobs} blob${report.removedBlobs === 1 ? '' : 's'} (${formatBytes(report.removedBytes)}), ${report.removedFacts} fact file${report.removedFacts === 1 ? '' : 's'}, ` +
        `${report.removedPathRecords} path record${report.removedPathRecords === 1 ? '' : 's'}, ${report.removedTemporary} temporary file${report.removedTemporary === 1 ? '' : 's'}, ` +
        `${report.removedArchiveStates} archive states file${report.removedArchiveStates === 1 ? '' : 's'}\n` +
        `kept ${report.keptBlobs} blob${report.keptBlobs === 1 ? '' : 's'} (${formatBytes(report.keptBytes)}) reached from ${report.records.length} image record${report.records.length === 1 ? '' : 's'} or used in the last ${graceSeconds} s\n`,
    );
    io.stderr.write(`redo-ts store: ${join(store.dir)}\n`);
    return 0;
  },
};
export default command;
