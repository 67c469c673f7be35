// hello.rootfs.tar: busybox for the shell, the program, and /init to run it at boot.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { entriesOfTar, mtimeFromEnvironment, writeTar } from 'redo-ts';
import type { RuleContext, TarEntry } from 'redo-ts';

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

export default async function (ctx: RuleContext): Promise<void> {
  await ctx.ifchange('hello', 'init', 'busybox.fragment.tar');
  const entries: TarEntry[] = [
    ...entriesOfTar(join(ctx.dir, 'busybox.fragment.tar')),
    program(ctx, 'bin/hello', 'hello'),
    program(ctx, 'init', 'init'),
    { path: Buffer.from('bin/sh'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from('busybox') },
  ];
  await writeTar(entries, ctx.output, { mtimeSeconds: mtimeFromEnvironment(ctx.env) });
}
