// NAME.tar: a `docker load`-able image archive of the image described by NAME.yaml.
//
// A view: the image is assembled and checked once, by NAME.image.json
// (rules/default.image.json.do.ts: tar check, overlap, requires, audit, ELF closure),
// and its blobs are in the project's image store; this rule only lays out the first
// platform's config and layers, read from the store, with manifest.json and the
// description's tags (the docker archive format has no platforms: NAME.oci.tar holds
// them all). An image that fails a check has no record, so no NAME.tar either.
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BlobStore, RedoError, ensureImageStored, readAssembledImage, writeDockerArchiveView } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime is the image's created time (SOURCE_DATE_EPOCH): a dependency.
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
  const descriptionName = `${ctx.base}.yaml`;
  if (!existsSync(join(ctx.dir, descriptionName))) {
    await ctx.ifcreate(descriptionName);
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${relative(ctx.root, ctx.targetPath)}": no such file, and no image description "${relative(ctx.root, join(ctx.dir, descriptionName))}" to build it from`, {
      hint: `if a list names it, check the name there; to build an image, write ${descriptionName} (see docs/image.md), or name a rule ${ctx.target}.do`,
    });
  }
  const recordName = `${ctx.base}.image.json`;
  await ctx.ifchange(recordName);
  const record = readAssembledImage(join(ctx.dir, recordName), relative(ctx.root, join(ctx.dir, recordName)));
  const store = BlobStore.ofProject(ctx.root);
  const subject = `"${relative(ctx.root, ctx.targetPath)}"`;
  // A record from the remote build cache (or a removed store): blobs come back from it and the layers.
  await ensureImageStored(record, store, ctx.dir, subject);
  await writeDockerArchiveView(record, store, ctx.output, subject);
  ctx.log(`image: config ${record.images[0]!.config.digest}`);
}
