// hello.libs.tar: a fragment holding exactly the files listed in hello.libs.
//
// Each one goes in at the path the loader looks for, as a regular file (a symlink on
// the host, like /lib64/ld-linux-x86-64.so.2, is followed and its target's content
// stored), owned by root with mode 0755. Nothing else from the host's /lib comes along.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mtimeFromEnvironment, writeTar } from 'redo-ts';
import type { RuleContext, TarEntry } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  await ctx.ifchange('hello.libs');
  const lines = readFileSync(join(ctx.dir, 'hello.libs'), 'utf8').split('\n').filter((line) => line !== '');
  const entries: TarEntry[] = lines.map((line) => {
    const hostPath = line.split(' ')[0]!;
    return {
      path: Buffer.from(hostPath.slice(1)),
      type: 'file',
      mode: 0o755,
      uid: 0,
      gid: 0,
      sizeBytes: statSync(hostPath).size,
      content: { kind: 'path', path: hostPath },
    };
  });
  await writeTar(entries, ctx.output, { mtimeSeconds: mtimeFromEnvironment(ctx.env) });
}
