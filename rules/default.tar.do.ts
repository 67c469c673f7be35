// NAME.tar: a `docker load`-able image archive of the image described by NAME.yaml.
//
// A view: the image is assembled and checked once, by NAME.image.json
// (rules/default.image.json.do.ts: tar check, overlap, requires, audit, ELF closure),
// and its blobs are in the project's image store; this rule only lays out the first
// platform's config and layers, read from the store, with manifest.json and the
// description's tags (the docker archive format has no platforms: NAME.oci.tar holds
// them all). An image that fails a check has no record, so no NAME.tar either.
// Members go lower layers first, so a rebuild after an edit of an upper layer keeps the
// previous archive's leading bytes in place and writes only the rest (docs/image.md).
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { digestHex, openImageView, writeDockerArchiveView } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime is the image's created time (SOURCE_DATE_EPOCH): openImageView depends on it.
  const { record, store, subject } = await openImageView(ctx, 'if a list names it, check the name there; ');
  // The previous NAME.tar, if it is still the one written last time: its unchanged
  // leading members (the lower layers) are kept in place, not copied again. Taken only
  // now that the image is assembled, so a failed check does not remove it.
  const previous = ctx.takePreviousOutput();
  const written = await writeDockerArchiveView(record, store, ctx.output, subject, previous);
  // Hashed as it was written: the engine does not read the archive back to stamp it.
  ctx.outputSha256(digestHex(written.diffId));
  ctx.log(`image: config ${record.images[0]!.config.digest}${written.reusedBytes > 0 ? ` (${written.reusedBytes} of ${written.sizeBytes} bytes kept from the previous archive)` : ''}`);
}
