// NAME.layer.tar: one image layer, listed in the text file NAME.layer beside it.
//
// Each line of NAME.layer names one input, relative to the list's folder:
//   - a tar target (usually a rootfs fragment, `busybox.fragment.tar`): built first,
//     then its members are taken as they are;
//   - a folder, written with a trailing `/` (`rootfs/`): every path below it, with
//     modes and owners from the metadata table NAME.meta when it exists (format in
//     docs/image.md), never from the builder's filesystem.
// `#` starts a comment. The inputs are merged into one deterministic tar; a path that
// two inputs deliver differently is an error naming both.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { RedoError, collectEntries, mergeTars, readMetadataFile, writeTar } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime (and an image's created time) is SOURCE_DATE_EPOCH: a dependency.
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
  const listName = `${ctx.base}.layer`;
  if (!existsSync(join(ctx.dir, listName))) {
    await ctx.ifcreate(listName);
    throw new RedoError('ERR_LAYER_LIST', `redo: "${relative(ctx.root, ctx.targetPath)}": no layer list "${relative(ctx.root, join(ctx.dir, listName))}"`, {
      hint: `write ${listName} with one fragment tar or folder/ per line`,
    });
  }
  await ctx.ifchange(listName);
  const inputs = readFileSync(join(ctx.dir, listName), 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
  if (inputs.length === 0) {
    throw new RedoError('ERR_LAYER_LIST', `redo: "${relative(ctx.root, ctx.targetPath)}": the layer list "${relative(ctx.root, join(ctx.dir, listName))}" names no input`, {
      hint: 'add one fragment tar or folder/ per line',
    });
  }
  const metaName = `${ctx.base}.meta`;
  const hasMeta = existsSync(join(ctx.dir, metaName));
  if (hasMeta) await ctx.ifchange(metaName);
  else await ctx.ifcreate(metaName);

  const scratch = await mkdtemp(join(tmpdir(), 'redo-ts-layer-'));
  try {
    const tars: string[] = [];
    for (const [index, input] of inputs.entries()) {
      if (!input.endsWith('/')) {
        await ctx.ifchange(input);
        tars.push(join(ctx.dir, input));
        continue;
      }
      const folder = join(ctx.dir, input);
      const entries = collectEntries(folder, {
        label: relative(ctx.root, folder),
        ...(hasMeta ? { metadata: readMetadataFile(join(ctx.dir, metaName), metaName) } : {}),
      });
      // Every file of the folder is a source of this layer: an edit rebuilds it.
      const files = entries.filter((entry) => entry.type === 'file').map((entry) => join(input, entry.path.toString()));
      if (files.length > 0) await ctx.ifchange(...files);
      const folderTar = join(scratch, `${index}.tar`);
      await writeTar(entries, folderTar, { label: input });
      tars.push(folderTar);
    }
    const result = await mergeTars(tars, ctx.output);
    ctx.log(`layer: ${inputs.length} inputs, ${result.sizeBytes} bytes, ${result.diffId}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
