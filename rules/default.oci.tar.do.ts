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
import { collectEntries, loadImageDescription, resolveBaseInputs, writeOciLayout, writeTar } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  const descriptionName = `${ctx.base}.yaml`;
  await ctx.ifchange(descriptionName);
  const description = await loadImageDescription(join(ctx.dir, descriptionName), ctx.root);
  await ctx.ifchange(...description.layers);
  // A pinned base (`base: HOST/REPO@sha256:…`) is fetched once into the source cache and
  // checked by digest; its layers go below ours, byte for byte, so a push can skip them.
  const base = await resolveBaseInputs(description, relative(ctx.root, description.path), ctx.env);
  const scratch = await mkdtemp(join(tmpdir(), 'redo-ts-oci-'));
  try {
    const layout = join(scratch, 'layout');
    const result = await writeOciLayout(
      {
        layers: description.layers.map((layer) => join(ctx.dir, layer)),
        config: base.config,
        refName: description.refName,
        gzip: description.gzip,
        ...(base.baseLayers === undefined ? {} : { baseLayers: base.baseLayers }),
        ...(base.annotations === undefined ? {} : { annotations: base.annotations }),
      },
      layout,
    );
    await writeTar(collectEntries(layout), ctx.output);
    ctx.log(`oci: manifest ${result.manifestDigest} ref ${description.refName}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
