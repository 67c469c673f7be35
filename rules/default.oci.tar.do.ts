// NAME.oci.tar: the image described by NAME.yaml as an OCI image layout, in a tar
// (`oci-archive:NAME.oci.tar` for skopeo and podman; `tar -xf` it for umoci).
//
// The layout is written into a scratch folder, then archived with the same
// deterministic tar writer as the layers, so its bytes depend only on the image.
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { collectEntries, imageForPlatform, loadImageDescription, resolveBaseInputs, writeOciImageIndex, writeOciLayout, writeTar } from 'redo-ts';
import type { ImageInput, RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  const descriptionName = `${ctx.base}.yaml`;
  await ctx.ifchange(descriptionName);
  const description = await loadImageDescription(join(ctx.dir, descriptionName), ctx.root);
  // `platforms:` gives one image per platform ("${arch}" in layer paths replaced), stored
  // under an OCI image index; otherwise the layout holds the one image directly.
  const images = (description.platforms ?? [undefined]).map((platform) =>
    platform === undefined ? { layers: description.layers, config: description.config } : imageForPlatform(description, platform),
  );
  await ctx.ifchange(...new Set(images.flatMap((image) => image.layers)));
  const inputs: ImageInput[] = [];
  for (const image of images) {
    // A pinned base (`base: HOST/REPO@sha256:…`) is fetched once into the source cache and
    // checked by digest; its layers go below ours, byte for byte, so a push can skip them.
    const base = await resolveBaseInputs({ ...description, config: image.config }, relative(ctx.root, description.path), ctx.env);
    inputs.push({
      layers: image.layers.map((layer) => join(ctx.dir, layer)),
      config: base.config,
      gzip: description.gzip,
      ...(base.baseLayers === undefined ? {} : { baseLayers: base.baseLayers }),
      ...(base.annotations === undefined ? {} : { annotations: base.annotations }),
    });
  }
  const scratch = await mkdtemp(join(tmpdir(), 'redo-ts-oci-'));
  try {
    const layout = join(scratch, 'layout');
    if (description.platforms === undefined) {
      const result = await writeOciLayout({ ...inputs[0]!, refName: description.refName }, layout);
      ctx.log(`oci: manifest ${result.manifestDigest} ref ${description.refName}`);
    } else {
      const result = await writeOciImageIndex({ images: inputs, refName: description.refName }, layout);
      for (const { platform, result: image } of result.manifests) ctx.log(`oci: ${platform} manifest ${image.manifestDigest}`);
      ctx.log(`oci: index ${result.indexDigest} ref ${description.refName}`);
    }
    await writeTar(collectEntries(layout), ctx.output);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
