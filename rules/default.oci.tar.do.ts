// NAME.oci.tar: the image described by NAME.yaml as an OCI image layout, in a tar
// (`oci-archive:NAME.oci.tar:REF` for skopeo and podman, REF the first tag's version,
// since the SBOM artifacts make several manifests; `tar -xf` it for umoci).
//
// A view: the image is assembled and checked once, by NAME.image.json
// (rules/default.image.json.do.ts), which stores every blob (layers, configs,
// manifests, the SBOM artifacts unless `sbom: false`, the index of a `platforms:`
// image) in the project's image store. This rule archives oci-layout, index.json and
// those blobs, read from the store, with the same deterministic tar writer as the
// layers, so its bytes depend only on the image. An image that fails a check has no
// record, so no NAME.oci.tar either; `redo-ts push` reads the store, not this archive.
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BlobStore, RedoError, ensureImageStored, readAssembledImage, writeOciArchiveView } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime is SOURCE_DATE_EPOCH: a dependency.
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
  const descriptionName = `${ctx.base}.yaml`;
  if (!existsSync(join(ctx.dir, descriptionName))) {
    await ctx.ifcreate(descriptionName);
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${relative(ctx.root, ctx.targetPath)}": no such file, and no image description "${relative(ctx.root, join(ctx.dir, descriptionName))}" to build it from`, {
      hint: `to build an image, write ${descriptionName} (see docs/image.md), or name a rule ${ctx.target}.do`,
    });
  }
  const recordName = `${ctx.base}.image.json`;
  await ctx.ifchange(recordName);
  const record = readAssembledImage(join(ctx.dir, recordName), relative(ctx.root, join(ctx.dir, recordName)));
  const store = BlobStore.ofProject(ctx.root);
  const subject = `"${relative(ctx.root, ctx.targetPath)}"`;
  // A record from the remote build cache (or a removed store): blobs come back from it and the layers.
  await ensureImageStored(record, store, ctx.dir, subject);
  await writeOciArchiveView(record, store, ctx.output, subject);
  ctx.log(`oci: ${record.top.mediaType.includes('index') ? 'index' : 'manifest'} ${record.top.digest} ref ${record.refName}`);
}
