// NAME.oci.tar: the image described by NAME.yaml as an OCI image layout, in a tar
// (`oci-archive:NAME.oci.tar:REF` for skopeo and podman, REF the first tag's version,
// since the SBOM artifacts make several manifests; `tar -xf` it for umoci).
//
// A view: the image is assembled and checked once, by NAME.image.json
// (rules/default.image.json.do.ts), which stores every blob (layers, configs,
// manifests, the SBOM artifacts unless `sbom: false`, the index of a `platforms:`
// image) in the project's image store. This rule archives oci-layout, index.json and
// those blobs, read from the store (lower layers first, index.json last, so a rebuild
// after an edit of an upper layer keeps the previous archive's leading bytes in place),
// with the same tar headers as the layers, so its bytes depend only on the image. An image that fails a check has no
// record, so no NAME.oci.tar either; `redo-ts push` reads the store, not this archive.
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { digestHex, openImageView, writeOciArchiveView } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime is SOURCE_DATE_EPOCH: openImageView depends on it.
  const { record, store, subject } = await openImageView(ctx);
  // The previous NAME.oci.tar, if it is still the one written last time: its unchanged
  // leading members (oci-layout, the lower layers) are kept in place, not copied again.
  const previous = ctx.takePreviousOutput();
  const written = await writeOciArchiveView(record, store, ctx.output, subject, previous);
  // Hashed as it was written: the engine does not read the archive back to stamp it.
  ctx.outputSha256(digestHex(written.diffId));
  ctx.log(`oci: ${record.top.mediaType.includes('index') ? 'index' : 'manifest'} ${record.top.digest} ref ${record.refName}${written.reusedBytes > 0 ? ` (${written.reusedBytes} of ${written.sizeBytes} bytes kept from the previous archive)` : ''}`);
}
