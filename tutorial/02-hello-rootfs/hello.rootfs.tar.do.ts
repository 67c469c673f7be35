// hello.rootfs.tar: the whole root file system, listed file by file.
//
// Nothing is copied from a folder on disk with whatever owner and mode it happens to
// have: every entry is written here, with its mode and owner (root, 0), and the tar
// writer sorts them and fixes every timestamp, so the same inputs give the same bytes.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { entriesOfTar, mtimeFromEnvironment, writeTar } from 'redo-ts';
import type { RuleContext, TarEntry } from 'redo-ts';

/** A program taken from a file the build produced. */
function program(ctx: RuleContext, path: string, file: string): TarEntry {
  const source = join(ctx.dir, file);
  return {
    path: Buffer.from(path),
    type: 'file',
    mode: 0o755,
    uid: 0,
    gid: 0,
    sizeBytes: statSync(source).size,
    content: { kind: 'path', path: source },
  };
}

/** A symbolic link, as busybox's tools are: /bin/ls is busybox called by another name. */
function link(path: string, target: string): TarEntry {
  return { path: Buffer.from(path), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from(target) };
}

export default async function (ctx: RuleContext): Promise<void> {
  await ctx.ifchange('hello', 'greet', 'busybox.fragment.tar');
  const entries: TarEntry[] = [
    ...entriesOfTar(join(ctx.dir, 'busybox.fragment.tar')),
    program(ctx, 'bin/hello', 'hello'),
    program(ctx, 'bin/greet', 'greet'),
    ...['sh', 'ls', 'readlink', 'tr'].map((tool) => link(`bin/${tool}`, 'busybox')),
  ];
  await writeTar(entries, ctx.output, { mtimeSeconds: mtimeFromEnvironment(ctx.env) });
}
