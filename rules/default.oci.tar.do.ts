// NAME.oci.tar: the image described by NAME.yaml as an OCI image layout, in a tar
// (`oci-archive:NAME.oci.tar` for skopeo and podman; `tar -xf` it for umoci).
//
// The layout is written into a scratch folder, then archived with the same
// deterministic tar writer as the layers, so its bytes depend only on the image.
import { join } from 'node:path';
import { collectEntries, loadImageDescription, withScratchFolder, writeOciLayout, writeTar } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  const descriptionName = `${ctx.base}.yaml`;
  await ctx.ifchange(descriptionName);
  const description = await loadImageDescription(join(ctx.dir, descriptionName), ctx.root);
  await ctx.ifchange(...description.layers);
  await withScratchFolder('redo-ts-oci-', async (scratch) => {
    const layout = join(scratch, 'layout');
    const result = await writeOciLayout(
      {
        layers: description.layers.map((layer) => join(ctx.dir, layer)),
        layerLabels: description.layers,
        isOverlapAllowed: description.allowOverlap,
        config: description.config,
        refName: description.refName,
        gzip: description.gzip,
      },
      layout,
    );
    await writeTar(collectEntries(layout), ctx.output);
    ctx.log(`oci: manifest ${result.manifestDigest} ref ${description.refName}`);
  });
}
