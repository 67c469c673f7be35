// stats.txt: how long the greeting is, written by a TypeScript rule.
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  await appendFile(join(ctx.dir, 'runs.log'), `${ctx.target}\n`);
  await ctx.ifchange('greeting.txt');
  const greeting = (await readFile(join(ctx.dir, 'greeting.txt'), 'utf8')).trim();
  await writeFile(ctx.output, `greeting: ${greeting.length} characters\n`);
}
