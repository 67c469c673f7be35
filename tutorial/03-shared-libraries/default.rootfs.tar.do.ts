// hello.rootfs.tar: the program and its libraries; bare.rootfs.tar: the program alone.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { entriesOfTar, mtimeFromEnvironment, writeTar } from 'redo-ts';
import type { RuleContext, TarEntry } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  const withLibraries = ctx.base === 'hello';
  if (!withLibraries && ctx.base !== 'bare') throw new Error(`no rootfs named "${ctx.base}" in this chapter`);
  await ctx.ifchange('hello', ...(withLibraries ? ['hello.libs.tar'] : []));
  const program = join(ctx.dir, 'hello');
  const entries: TarEntry[] = [
    {
      path: Buffer.from('bin/hello'),
      type: 'file',
      mode: 0o755,
      uid: 0,
      gid: 0,
      sizeBytes: statSync(program).size,
      content: { kind: 'path', path: program },
    },
    ...(withLibraries ? entriesOfTar(join(ctx.dir, 'hello.libs.tar')) : []),
  ];
  await writeTar(entries, ctx.output, { mtimeSeconds: mtimeFromEnvironment(ctx.env) });
}
