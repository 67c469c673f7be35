// NAME.initrd: a deterministic cpio (newc) initramfs holding the rootfs NAME.rootfs.tar.
//
// Every member of the rootfs tar goes into the archive with the uid, gid and mode the
// tar records, in path order, with mtime SOURCE_DATE_EPOCH (or 0) and inode numbers
// counted from 1, so the same rootfs always gives the same bytes. The archive is not
// compressed: the kernel unpacks a plain newc archive directly and the boot skips a
// decompression step. The folders /dev, /proc and /sys and the console device
// /dev/console (character 5:1) are added when the rootfs lacks them: the kernel opens
// /dev/console for the first process before any file system is mounted, and a device
// node costs nothing to describe in an archive, even though creating one on disk
// needs root. The rootfs must bring its own /init (see rules/default.runkvm.do).
import { join } from 'node:path';
import { checkTar, entriesOfTar, mtimeFromEnvironment, writeCpio, type TarEntry } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

function directory(path: string): TarEntry {
  return { path: Buffer.from(path), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 };
}

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime (and an image's created time) is SOURCE_DATE_EPOCH: a dependency.
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
  const rootfs = `${ctx.base}.rootfs.tar`;
  await ctx.ifchange(rootfs);
  checkTar(join(ctx.dir, rootfs), rootfs, { isDeviceAllowed: true });
  const entries = entriesOfTar(join(ctx.dir, rootfs));
  const present = new Set(entries.map((entry) => entry.path.toString('latin1')));
  const extras: TarEntry[] = [directory('dev'), directory('proc'), directory('sys')];
  extras.push({
    path: Buffer.from('dev/console'),
    type: 'character-device',
    mode: 0o600,
    uid: 0,
    gid: 0,
    sizeBytes: 0,
    deviceMajor: 5,
    deviceMinor: 1,
  });
  for (const extra of extras) {
    if (!present.has(extra.path.toString('latin1'))) entries.push(extra);
  }
  const result = await writeCpio(entries, ctx.output, {
    mtimeSeconds: mtimeFromEnvironment(ctx.env),
    label: `"${ctx.target}"`,
  });
  ctx.log(`initrd: ${result.memberCount} members, ${result.sizeBytes} bytes, ${result.digest}`);
}
