// NAME.layer.tar: one image layer, listed in the text file NAME.layer beside it.
//
// Each line of NAME.layer names one input, relative to the list's folder:
//   - a tar target (usually a rootfs fragment, `busybox.fragment.tar`): built first,
//     then its members are taken as they are;
//   - a folder, written with a trailing `/` (`rootfs/`): every path below it, with
//     modes and owners from the metadata table NAME.meta when it exists (format in
//     docs/image.md), never from the builder's filesystem.
// `#` starts a comment. Every input must lie inside the project (checked on real
// paths, before anything is read) and every tar passes the one tar check. The inputs
// are merged into one deterministic tar; a path that two inputs deliver differently is
// an error naming both, as the list names them.
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { BlobStore, RedoError, collectEntries, digestHex, mergeTars, readMetadataFile, withScratchFolder, writeTar } from 'redo-ts';
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
  const listShown = relative(ctx.root, join(ctx.dir, listName));
  const inputs = readFileSync(join(ctx.dir, listName), 'utf8')
    .split('\n')
    .map((text, index) => ({ input: text.replace(/#.*/, '').trim(), line: index + 1 }))
    .filter((item) => item.input !== '');
  // The one boundary check, on real paths, before anything is read or built: every
  // input lies inside the project, whatever it holds (files, only symlinks, nothing).
  const realRoot = realpathSync(ctx.root);
  for (const { input, line } of inputs) {
    const real = realPathOf(resolve(ctx.dir, input));
    const inside = relative(realRoot, real);
    if (inside === '' || inside === '..' || inside.startsWith('../') || isAbsolute(inside)) {
      throw new RedoError('ERR_LAYER_LIST', `redo: "${listShown}:${line}": input "${input}" is outside the project`, {
        details: [`resolved to: ${real}`],
        hint: 'a layer takes only folders and tars inside the project (a symlink out of it counts as outside): copy what it needs into the project',
      });
    }
  }
  if (inputs.length === 0) {
    throw new RedoError('ERR_LAYER_LIST', `redo: "${relative(ctx.root, ctx.targetPath)}": the layer list "${relative(ctx.root, join(ctx.dir, listName))}" names no input`, {
      hint: 'add one fragment tar or folder/ per line',
    });
  }
  const metaName = `${ctx.base}.meta`;
  const hasMeta = existsSync(join(ctx.dir, metaName));
  if (hasMeta) await ctx.ifchange(metaName);
  else await ctx.ifcreate(metaName);

  await withScratchFolder('redo-ts-layer-', async (scratch) => {
    const tars: Array<{ label: string; path: string }> = [];
    for (const [index, { input }] of inputs.entries()) {
      if (!input.endsWith('/')) {
        await ctx.ifchange(input);
        tars.push({ label: input, path: join(ctx.dir, input) });
        continue;
      }
      const folder = join(ctx.dir, input);
      const entries = collectEntries(folder, {
        label: relative(ctx.root, folder),
        ...(hasMeta ? { metadata: readMetadataFile(join(ctx.dir, metaName), metaName) } : {}),
      });
      // The folder itself (its listing: a file added, removed or renamed) and every file
      // of it are sources of this layer: any of those rebuilds it.
      await ctx.ifchange(input.replace(/\/+$/, '') || '.');
      const files = entries.filter((entry) => entry.type === 'file').map((entry) => join(input, entry.path.toString()));
      if (files.length > 0) await ctx.ifchange(...files);
      const folderTar = join(scratch, `${index}.tar`);
      await writeTar(entries, folderTar, { label: input });
      tars.push({ label: input, path: folderTar });
    }
    const result = await mergeTars(tars, ctx.output, { label: `"${relative(ctx.root, ctx.targetPath)}"` });
    ctx.log(`layer: ${inputs.length} inputs, ${result.sizeBytes} bytes, ${result.diffId}`);
    // Hashed as it was written: an image that takes this layer stores it without reading it to hash it.
    BlobStore.ofProject(ctx.root).rememberWritten(ctx.output, ctx.targetPath, result.diffId);
    ctx.outputSha256(digestHex(result.diffId));
  });
}

/** The real path of `path`, resolving what exists of it (a tar input may not be built yet). */
function realPathOf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realPathOf(parent), relative(parent, path));
  }
}
