/** Shared by the commands that read an image (sbom, audit, origin): resolve the target, bring it up to date, take its inventory. */

import { toTargetPath } from '../engine/paths.js';
import { collectInventory, requireDescription, type Inventory } from '../inventory/inventory.js';
import type { CommandIO } from './command.js';
import { projectRoot, runBuild } from './session.js';

/**
 * Brings the image target `target` (NAME.tar or NAME.oci.tar, named from io.cwd) up to
 * date as `redo-ts TARGET` would, then returns its inventory; or the build's non-zero
 * exit status when the build failed. Throws ERR_NOT_AN_IMAGE for a target without an
 * image description.
 */
export async function inventoryOfImageTarget(
  target: string,
  io: CommandIO,
  options: { shouldSkipChecksums?: boolean } = {},
): Promise<Inventory | number> {
  const root = projectRoot(io);
  const targetPath = toTargetPath(root, io.cwd, target);
  const description = requireDescription(root, targetPath);
  const status = await runBuild(
    { jobs: 1, isForced: false, isKeepGoing: false, isXtrace: false, isVerbose: false, isWhy: false, isHelp: false, isVersion: false, isShuffle: false, targets: [target] },
    io,
  );
  if (status !== 0) return status;
  return collectInventory(targetPath, description, { root, env: io.env, ...(options.shouldSkipChecksums === true ? { shouldSkipChecksums: true } : {}) });
}
