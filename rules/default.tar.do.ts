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
import { digestHex, openImageView, writeDockerArchiveView } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime is the image's created time (SOURCE_DATE_EPOCH): openImageView depends on it.
  const { record, store, subject } = await openImageView(ctx, 'if a list names it, check the name there; ');
  const written = await writeDockerArchiveView(record, store, ctx.output, subject);
  // Hashed as it was written: the engine does not read the archive back to stamp it.
  ctx.outputSha256(digestHex(written.diffId));
  ctx.log(`image: config ${record.images[0]!.config.digest}`);
}
