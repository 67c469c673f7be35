// NAME.oci.tar: the image described by NAME.yaml as an OCI image layout, in a tar
// (`oci-archive:NAME.oci.tar` for skopeo and podman; `tar -xf` it for umoci).
//
// The layout is written into a scratch folder, then archived with the same
// deterministic tar writer as the layers, so its bytes depend only on the image.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectEntries, loadImageDescription, writeOciLayout, writeTar } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime (and an image's created time) is SOURCE_DATE_EPOCH: a dependency.
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
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
    await writeTar(collectEntries(layout), ctx.output);
    ctx.log(`oci: manifest ${result.manifestDigest} ref ${description.refName}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
