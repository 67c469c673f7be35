// NAME.oci.tar: the image described by NAME.yaml as an OCI image layout, in a tar
// (`oci-archive:NAME.oci.tar:REF` for skopeo and podman, REF the first tag's version,
// since the SBOM artifacts make several manifests; `tar -xf` it for umoci).
//
// The layout is written into a scratch folder, then archived with the same
// deterministic tar writer as the layers, so its bytes depend only on the image.
// Unless the description says `sbom: false`, the image's SPDX and CycloneDX SBOMs
// (see docs/sbom.md) go into the layout as artifacts whose `subject` is the image
// manifest, named REF.sbom.spdx and REF.sbom.cyclonedx in index.json. The layers (and so
// the specs of their fragments) and the specs those only require are dependencies.
// With `platforms:` the layout holds an OCI image index, one image per platform; the
// SBOM artifacts are then left out (docs/sbom.md).
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  RedoError,
  addOciArtifact,
  collectEntries,
  collectInventory,
  cyclonedxDocument,
  imageForPlatform,
  checkPlatformVersions,
  loadImageDescription,
  mtimeFromEnvironment,
  ociBlobSize,
  resolveBaseInputs,
  spdxDocument,
  withScratchFolder,
  writeOciImageIndex,
  writeOciLayout,
  writeTar,
} from 'redo-ts';
import type { ImageInput, RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime (and an image's created time) is SOURCE_DATE_EPOCH: a dependency.
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
  const descriptionName = `${ctx.base}.yaml`;
  if (!existsSync(join(ctx.dir, descriptionName))) {
    await ctx.ifcreate(descriptionName);
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${relative(ctx.root, ctx.targetPath)}": no such file, and no image description "${relative(ctx.root, join(ctx.dir, descriptionName))}" to build it from`, {
      hint: `to build an image, write ${descriptionName} (see docs/image.md), or name a rule ${ctx.target}.do`,
    });
  }
  await ctx.ifchange(descriptionName);
  const description = await loadImageDescription(join(ctx.dir, descriptionName), ctx.root);
  // `platforms:` gives one image per platform ("${arch}" in layer paths replaced), stored
  // under an OCI image index; otherwise the layout holds the one image directly.
  const images = (description.platforms ?? [undefined]).map((platform) =>
    platform === undefined ? { layers: description.layers, config: description.config } : imageForPlatform(description, platform),
  );
  await ctx.ifchange(...new Set(images.flatMap((image) => image.layers)));
  // The platforms' Debian packages must be the same versions, unless the description allows a name.
  if (description.platforms !== undefined) {
    await checkPlatformVersions(description.platforms.map((platform, i) => ({ architecture: platform.architecture, layers: images[i]!.layers })), ctx.dir, ctx.root,
      description.allowVersionDifferences, `"${relative(ctx.root, ctx.targetPath)}"`);
  }
  const inputs: ImageInput[] = [];
  for (const image of images) {
    // A pinned base (`base: HOST/REPO@sha256:…`) is fetched once into the source cache and
    // checked by digest; its layers go below ours, byte for byte, so a push can skip them.
    const base = await resolveBaseInputs({ ...description, config: image.config }, relative(ctx.root, description.path), ctx.env);
    inputs.push({
      layers: image.layers.map((layer) => join(ctx.dir, layer)),
      layerLabels: image.layers,
      isOverlapAllowed: description.allowOverlap,
      config: base.config,
      gzip: description.gzip,
      ...(base.baseLayers === undefined ? {} : { baseLayers: base.baseLayers }),
      ...(base.annotations === undefined ? {} : { annotations: base.annotations }),
    });
  }
  await withScratchFolder('redo-ts-oci-', async (scratch) => {
    const layout = join(scratch, 'layout');
    if (description.platforms !== undefined) {
      const result = await writeOciImageIndex({ images: inputs, refName: description.refName }, layout);
      for (const { platform, result: image } of result.manifests) ctx.log(`oci: ${platform} manifest ${image.manifestDigest}`);
      ctx.log(`oci: index ${result.indexDigest} ref ${description.refName}`);
      await writeTar(collectEntries(layout), ctx.output);
      return;
    }
    const result = await writeOciLayout({ ...inputs[0]!, refName: description.refName }, layout);
    if (description.hasSbom) {
      const inventory = await collectInventory(relative(ctx.root, ctx.targetPath), join(ctx.dir, descriptionName), { root: ctx.root, env: ctx.env });
      // A spec that delivered files is already a dependency of its fragment; depending on
      // it here too would rebuild the layout after an edit that leaves the fragment's
      // bytes unchanged, defeating early cutoff. Specs only required are read here alone.
      const delivering = new Set(inventory.files.flatMap((file) => ('spec' in file.origin ? [file.origin.spec] : [])));
      const readOnlyHere = inventory.specs.filter((spec) => !delivering.has(spec.path));
      if (readOnlyHere.length > 0) await ctx.ifchange(...readOnlyHere.map((spec) => relative(ctx.dir, join(ctx.root, spec.path))));
      const options = { createdSeconds: mtimeFromEnvironment(ctx.env) };
      const subject = { digest: result.manifestDigest, sizeBytes: ociBlobSize(layout, result.manifestDigest) };
      addOciArtifact(layout, { subject, refName: `${description.refName}.sbom.spdx`, artifactType: 'application/spdx+json', blob: Buffer.from(spdxDocument(inventory, options)), blobMediaType: 'application/spdx+json' });
      addOciArtifact(layout, { subject, refName: `${description.refName}.sbom.cyclonedx`, artifactType: 'application/vnd.cyclonedx+json', blob: Buffer.from(cyclonedxDocument(inventory, options)), blobMediaType: 'application/vnd.cyclonedx+json' });
    }
    await writeTar(collectEntries(layout), ctx.output);
    ctx.log(`oci: manifest ${result.manifestDigest} ref ${description.refName}`);
  }, ctx.env.TMPDIR || undefined);
}
