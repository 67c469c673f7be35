// NAME.oci.tar: the image described by NAME.yaml as an OCI image layout, in a tar
// (`oci-archive:NAME.oci.tar` for skopeo and podman; `tar -xf` it for umoci).
//
// The layout is written into a scratch folder, then archived with the same
// deterministic tar writer as the layers, so its bytes depend only on the image.
// Unless the description says `sbom: false`, the image's SPDX and CycloneDX SBOMs
// (see docs/sbom.md) go into the layout as artifacts whose `subject` is the image
// manifest, named REF.sbom.spdx and REF.sbom.cyclonedx in index.json. The layers (and so
// the specs of their fragments) and the specs those only require are dependencies.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  addOciArtifact,
  collectEntries,
  collectInventory,
  cyclonedxDocument,
  loadImageDescription,
  mtimeFromEnvironment,
  ociBlobSize,
  spdxDocument,
  writeOciLayout,
  writeTar,
} from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  const descriptionName = `${ctx.base}.yaml`;
  await ctx.ifchange(descriptionName);
  const description = await loadImageDescription(join(ctx.dir, descriptionName), ctx.root);
  await ctx.ifchange(...description.layers);
  const scratch = await mkdtemp(join(tmpdir(), 'redo-ts-oci-'));
  try {
    const layout = join(scratch, 'layout');
    const result = await writeOciLayout(
      {
        layers: description.layers.map((layer) => join(ctx.dir, layer)),
        config: description.config,
        refName: description.refName,
        gzip: description.gzip,
      },
      layout,
    );
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
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
