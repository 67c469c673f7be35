// hello.rootfs.tar: the program and its libraries; bare.rootfs.tar: the program alone.
//
// hello.rootfs.tar must hold every library its ELF files need: redo-ts's ELF closure
// check reads the program's dynamic section (as the loader would, without running
// anything) and stops the build if a library or the loader is missing.
import { join } from 'node:path';
import { checkElfClosure, entriesOfTar, mtimeFromEnvironment, writeTar } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  const withLibraries = ctx.base === 'hello';
  if (!withLibraries && ctx.base !== 'bare') throw new Error(`no rootfs named "${ctx.base}" in this chapter`);
  const fragments = ['hello.fragment.tar', ...(withLibraries ? ['hello-libs.fragment.tar'] : [])];
  await ctx.ifchange(...fragments);
  if (withLibraries) checkElfClosure(fragments.map((name) => ({ label: name, path: join(ctx.dir, name) })), `"${ctx.target}"`);
  const entries = fragments.flatMap((name) => entriesOfTar(join(ctx.dir, name)));
  await writeTar(entries, ctx.output, { mtimeSeconds: mtimeFromEnvironment(ctx.env) });
}
